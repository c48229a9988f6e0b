"""The shopper event contract, version 1.

An envelope (``event_id``, ``type``, ``shopper_id``, ``session_id``, ``occurred_at``,
``schema_version``, ``payload``) with one payload model per type. Unknown fields are
rejected everywhere, so nothing outside the contract is ever stored; fields that carry a
person's identity or socio-demographic data are refused with that reason (privacy by
design). The retailer is never in the body: it comes from the credentials.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})

IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
MAX_EMAIL_LENGTH = 254  # RFC 5321's longest forward path, less its angle brackets
MAX_DEPTH = 16  # nesting of objects and arrays in one event (a valid event has 3)


def looks_like_email(text: str) -> bool:
    """``local@domain.tld`` with no space and one ``@``, in time linear in ``text`` (a
    backtracking pattern took 1.7 s on 16,000 dots between two ``@``)."""
    if len(text) > MAX_EMAIL_LENGTH or any(c.isspace() for c in text):
        return False
    local, at, domain = text.partition("@")
    if not (local and at) or "@" in domain:
        return False
    return "." in domain[1:-1]  # a dot with something before and after it


# Field names refused anywhere in an event, whatever their nesting (lower-cased, with
# separators removed before comparison): identity and socio-demographic data.
FORBIDDEN_FIELDS = frozenset(
    {
        "name",
        "firstname",
        "lastname",
        "fullname",
        "surname",
        "givenname",
        "familyname",
        "email",
        "emailaddress",
        "mail",
        "phone",
        "phonenumber",
        "mobile",
        "telephone",
        "address",
        "streetaddress",
        "street",
        "postcode",
        "postalcode",
        "zipcode",
        "zip",
        "city",
        "birthdate",
        "dateofbirth",
        "dob",
        "birthday",
        "age",
        "agerange",
        "gender",
        "sex",
        "ethnicity",
        "ethnicorigin",
        "race",
        "religion",
        "nationality",
        "maritalstatus",
        "income",
        "incomerange",
        "householdsize",
        "children",
        "kidcount",
        "homeowner",
        "ipaddress",
        "ip",
        "ssn",
        "passport",
    }
)


def _plain_decimal(value: Decimal) -> str:
    """One rendering per amount (``1.50``, ``1.5`` and ``1.500`` are all ``"1.5"``), so that an
    event's canonical JSON does not depend on how the tracker wrote its numbers."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=4),
    PlainSerializer(_plain_decimal, return_type=str, when_used="json"),
]
Identifier = Annotated[str, Field(pattern=IDENTIFIER)]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
Label = Annotated[str, Field(min_length=1, max_length=256)]


class EventType(StrEnum):
    PAGE_VIEWED = "page_viewed"
    LINK_CLICKED = "link_clicked"
    SEARCH_PERFORMED = "search_performed"
    PRODUCT_ADDED_TO_BASKET = "product_added_to_basket"
    PRODUCT_REMOVED_FROM_BASKET = "product_removed_from_basket"
    CART_VALIDATED = "cart_validated"
    ORDER_STATUS_CHANGED = "order_status_changed"
    EXPERIENCE_DISPLAYED = "experience_displayed"
    EXPERIENCE_CLICKED = "experience_clicked"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- payloads ----------------------------------------------------------------------------


class PageViewed(_Strict):
    url: Url
    page_type: Literal[
        "home",
        "category",
        "product",
        "search",
        "basket",
        "checkout",
        "order_confirmation",
        "account",
        "promotion",
        "other",
    ]
    product_id: Identifier | None = None
    category: Label | None = None


class LinkClicked(_Strict):
    url: Url
    target_url: Url
    label: Label | None = None


class SearchPerformed(_Strict):
    query: Annotated[str, Field(min_length=1, max_length=256)]
    result_count: Annotated[int, Field(ge=0)]


class BasketChange(_Strict):
    product_id: Identifier
    quantity: Annotated[int, Field(gt=0, le=10_000)]
    unit_price: Money
    brand: Label | None = None
    category: Label | None = None


class ProductAddedToBasket(BasketChange):
    pass


class ProductRemovedFromBasket(BasketChange):
    pass


class OrderLine(_Strict):
    product_id: Identifier
    quantity: Annotated[int, Field(gt=0, le=10_000)]
    unit_price: Money
    discount: Money = Decimal(0)
    brand: Label | None = None
    category: Label | None = None


class CartValidated(_Strict):
    order_id: Identifier
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=500)]
    total: Money

    @field_validator("lines")
    @classmethod
    def _distinct_products(cls, lines: list[OrderLine]) -> list[OrderLine]:
        products = [line.product_id for line in lines]
        if len(products) != len(set(products)):
            raise ValueError("each product appears on one line only")
        return lines


class OrderStatusChanged(_Strict):
    order_id: Identifier
    status: Literal["shipped", "delivered", "cancelled", "returned", "refunded"]


class ExperienceDisplayed(_Strict):
    experience_id: Identifier
    campaign_id: Identifier | None = None


class ExperienceClicked(_Strict):
    experience_id: Identifier
    campaign_id: Identifier | None = None


PAYLOADS: dict[EventType, type[_Strict]] = {
    EventType.PAGE_VIEWED: PageViewed,
    EventType.LINK_CLICKED: LinkClicked,
    EventType.SEARCH_PERFORMED: SearchPerformed,
    EventType.PRODUCT_ADDED_TO_BASKET: ProductAddedToBasket,
    EventType.PRODUCT_REMOVED_FROM_BASKET: ProductRemovedFromBasket,
    EventType.CART_VALIDATED: CartValidated,
    EventType.ORDER_STATUS_CHANGED: OrderStatusChanged,
    EventType.EXPERIENCE_DISPLAYED: ExperienceDisplayed,
    EventType.EXPERIENCE_CLICKED: ExperienceClicked,
}

Payload = (
    PageViewed
    | LinkClicked
    | SearchPerformed
    | ProductAddedToBasket
    | ProductRemovedFromBasket
    | CartValidated
    | OrderStatusChanged
    | ExperienceDisplayed
    | ExperienceClicked
)


# --- envelope ----------------------------------------------------------------------------


# A UUID in its hyphenated form, kept as lower-case text: the id is only ever compared and
# stored, and a string costs a fraction of a ``uuid.UUID`` to validate and serialize.
EventId = Annotated[
    str,
    StringConstraints(pattern=UUID_PATTERN, to_lower=True),
    Field(json_schema_extra={"format": "uuid"}),
]


class _Envelope(_Strict):
    event_id: EventId
    # The pattern refuses e-mail addresses (no "@"); ``validate_event`` says so by name.
    shopper_id: Annotated[str, Field(pattern=IDENTIFIER)]
    session_id: Annotated[str, Field(pattern=IDENTIFIER)] | None = None
    occurred_at: AwareDatetime
    schema_version: Literal[1]


class PageViewedEvent(_Envelope):
    type: Literal[EventType.PAGE_VIEWED]
    payload: PageViewed


class LinkClickedEvent(_Envelope):
    type: Literal[EventType.LINK_CLICKED]
    payload: LinkClicked


class SearchPerformedEvent(_Envelope):
    type: Literal[EventType.SEARCH_PERFORMED]
    payload: SearchPerformed


class ProductAddedToBasketEvent(_Envelope):
    type: Literal[EventType.PRODUCT_ADDED_TO_BASKET]
    payload: ProductAddedToBasket


class ProductRemovedFromBasketEvent(_Envelope):
    type: Literal[EventType.PRODUCT_REMOVED_FROM_BASKET]
    payload: ProductRemovedFromBasket


class CartValidatedEvent(_Envelope):
    type: Literal[EventType.CART_VALIDATED]
    payload: CartValidated


class OrderStatusChangedEvent(_Envelope):
    type: Literal[EventType.ORDER_STATUS_CHANGED]
    payload: OrderStatusChanged


class ExperienceDisplayedEvent(_Envelope):
    type: Literal[EventType.EXPERIENCE_DISPLAYED]
    payload: ExperienceDisplayed


class ExperienceClickedEvent(_Envelope):
    type: Literal[EventType.EXPERIENCE_CLICKED]
    payload: ExperienceClicked


ShopperEvent = Annotated[
    PageViewedEvent
    | LinkClickedEvent
    | SearchPerformedEvent
    | ProductAddedToBasketEvent
    | ProductRemovedFromBasketEvent
    | CartValidatedEvent
    | OrderStatusChangedEvent
    | ExperienceDisplayedEvent
    | ExperienceClickedEvent,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[ShopperEvent] = TypeAdapter(ShopperEvent)
_EVENT_SERIALIZER = EVENT_ADAPTER.serializer

MAX_EVENTS_PER_REQUEST = 500


class _Request(_Strict):
    events: Annotated[list[ShopperEvent], Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)]


_REQUEST_VALIDATOR = TypeAdapter(_Request).validator


def validate_request_json(body: bytes) -> list[ShopperEvent] | None:
    """Every event of a ``{"events": [...]}`` body in one pass of the compiled validator.

    ``None`` when anything in the body is refused: the caller then validates event by
    event (``validate_event``) to give each its reasons. A fully valid body can carry no
    identity field: every model forbids unknown fields and no contract field is one
    (``tests/unit/test_events.py`` checks it).
    """
    try:
        request: _Request = _REQUEST_VALIDATOR.validate_json(body)
    except ValidationError:
        return None
    return request.events


def canonical_json(event: ShopperEvent) -> bytes:
    """The event as cartwise stores and publishes it: compact JSON, contract field order,
    no nulls, one rendering per amount. Equal events give equal bytes."""
    return _EVENT_SERIALIZER.to_json(event, exclude_none=True)


# --- validation with reasons -------------------------------------------------------------


class Rejection(BaseModel):
    """Why an event was refused: machine-readable code, field path and message."""

    model_config = ConfigDict(frozen=True)

    code: str
    field: str
    message: str


@functools.lru_cache(maxsize=4096)
def is_personal_field(key: str) -> bool:
    return re.sub(r"[^a-z]", "", key.lower()) in FORBIDDEN_FIELDS


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` deep in ``value`` (iterative:
    no recursion for a hostile depth to exhaust)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children)
    return False


def _forbidden_paths(value: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else str(key)
            if is_personal_field(str(key)):
                found.append(child_path)
            found.extend(_forbidden_paths(child, child_path))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_forbidden_paths(child, f"{path}[{index}]"))
    return found


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in {e.value for e in EventType}:
            continue  # the discriminator tag pydantic inserts in union locations
        else:
            parts.append(f".{item}" if parts else str(item))
    return "".join(parts)


def validate_event(raw: Any) -> ShopperEvent | list[Rejection]:
    """Parse one raw event; return the typed event or every reason it was refused.

    The compiled validator runs first: an event it accepts cannot carry an identity field
    (unknown fields are refused everywhere and no contract field is one). Only a refused
    event is searched for the reasons that matter most: personal data, then an
    unsupported schema version, then the validator's own.
    """
    if not isinstance(raw, dict):
        return [Rejection(code="not_an_object", field="", message="an event is a JSON object")]
    if "retailer_id" in raw:
        # The retailer comes from the credentials only: a body's claim is ignored.
        raw = {key: value for key, value in raw.items() if key != "retailer_id"}
    try:
        return EVENT_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    if nests_deeper_than(raw, MAX_DEPTH):
        return [
            Rejection(
                code="too_deep",
                field="",
                message=f"objects and arrays nest at most {MAX_DEPTH} deep in an event",
            )
        ]
    forbidden = _forbidden_paths(raw)
    if forbidden:
        return [
            Rejection(
                code="personal_data_refused",
                field=path,
                message="identity and socio-demographic data are never accepted",
            )
            for path in forbidden
        ]
    shopper_id = raw.get("shopper_id")
    if isinstance(shopper_id, str) and looks_like_email(shopper_id.strip()):
        return [
            Rejection(
                code="personal_data_refused",
                field="shopper_id",
                message="must be the retailer's customer identifier, not an e-mail",
            )
        ]
    version = raw.get("schema_version")
    if isinstance(version, int) and version not in SUPPORTED_SCHEMA_VERSIONS:
        return [
            Rejection(
                code="unsupported_schema_version",
                field="schema_version",
                message=f"supported versions: {sorted(SUPPORTED_SCHEMA_VERSIONS)}",
            )
        ]
    return [
        Rejection(code=error["type"], field=_location(error["loc"]), message=error["msg"])
        for error in errors
    ]


def event_json_schema() -> dict[str, Any]:
    """The published JSON Schema of one shopper event (all types, discriminated)."""
    schema = EVENT_ADAPTER.json_schema(mode="validation")
    schema["$id"] = f"https://cartwise.dev/schemas/shopper-event/v{SCHEMA_VERSION}.json"
    schema["title"] = "ShopperEvent"
    return schema
