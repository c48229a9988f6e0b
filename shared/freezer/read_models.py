"""Cold read models: BigQuery tables the freezer fills from shopper events.

Pure: the declaration of every read model (columns, partitioning, clustering) and the
transformation of one event into rows. The freezer and the history backfill both use
``rows_for``; the write path (landing, then a compaction MERGE on ``row_id``) makes
redelivery harmless. Also declared here: the landing tables and the late window.

Every row carries ``row_id`` (deterministic: ``{retailer}/{event id}``, plus ``:line`` for
order lines: one retailer's event ids never collide with another's), ``event_id``,
``retailer_id``, ``shopper_id``, ``session_id``, ``occurred_at`` and ``ingested_at``.
Tables are partitioned by day of ``occurred_at`` and clustered by retailer and shopper.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.contract.events import (
    CartValidatedEvent,
    EventType,
    ExperienceClickedEvent,
    ExperienceDisplayedEvent,
    LinkClickedEvent,
    OrderStatusChangedEvent,
    PageViewedEvent,
    ProductAddedToBasketEvent,
    ProductRemovedFromBasketEvent,
    SearchPerformedEvent,
    ShopperEvent,
)
from shared.platform.resource_model import BigQueryTable, Column

DATASET = "cartwise"

Row = dict[str, Any]

COMMON = (
    Column(
        name="row_id",
        type="STRING",
        mode="REQUIRED",
        description="Deterministic row identity: retailer_id/event_id, or "
        "retailer_id/event_id:line",
    ),
    Column(name="event_id", type="STRING", mode="REQUIRED", description="The event's UUID"),
    Column(name="retailer_id", type="STRING", mode="REQUIRED", description="From the API key"),
    Column(
        name="shopper_id",
        type="STRING",
        mode="REQUIRED",
        description="The retailer's customer identifier",
    ),
    Column(name="session_id", type="STRING"),
    Column(
        name="occurred_at",
        type="TIMESTAMP",
        mode="REQUIRED",
        description="When the shopper acted (partitioning column)",
    ),
    Column(
        name="ingested_at",
        type="TIMESTAMP",
        mode="REQUIRED",
        description="When the Shopper Event API accepted the event",
    ),
)

PRODUCT = (
    Column(name="product_id", type="STRING", mode="REQUIRED"),
    Column(name="brand", type="STRING"),
    Column(name="category", type="STRING"),
)


def _table(name: str, description: str, *columns: Column) -> BigQueryTable:
    return BigQueryTable(
        dataset=DATASET,
        name=name,
        description=description,
        columns=COMMON + columns,
        partition_field="occurred_at",
        clustering=("retailer_id", "shopper_id"),
    )


PAGE_VIEWS = _table(
    "page_views",
    "One row per page viewed",
    Column(name="url", type="STRING", mode="REQUIRED"),
    Column(name="page_type", type="STRING", mode="REQUIRED"),
    Column(name="product_id", type="STRING"),
    Column(name="category", type="STRING"),
)
LINK_CLICKS = _table(
    "link_clicks",
    "One row per link clicked",
    Column(name="url", type="STRING", mode="REQUIRED"),
    Column(name="target_url", type="STRING", mode="REQUIRED"),
    Column(name="label", type="STRING"),
)
SEARCHES = _table(
    "searches",
    "One row per search",
    Column(name="query", type="STRING", mode="REQUIRED"),
    Column(name="result_count", type="INT64", mode="REQUIRED"),
)
BASKET_CHANGES = _table(
    "basket_changes",
    "One row per basket add (+quantity) or remove (-quantity)",
    *PRODUCT,
    Column(name="change", type="STRING", mode="REQUIRED", description="added or removed"),
    Column(name="quantity", type="INT64", mode="REQUIRED", description="Signed: removes < 0"),
    Column(name="unit_price", type="NUMERIC", mode="REQUIRED"),
    Column(name="amount", type="NUMERIC", mode="REQUIRED", description="quantity * unit_price"),
)
ORDERS = _table(
    "orders",
    "One row per validated cart",
    Column(name="order_id", type="STRING", mode="REQUIRED"),
    Column(name="total", type="NUMERIC", mode="REQUIRED", description="As sent by the retailer"),
    Column(name="line_count", type="INT64", mode="REQUIRED"),
    Column(name="item_count", type="INT64", mode="REQUIRED", description="Sum of quantities"),
    Column(
        name="gross_amount",
        type="NUMERIC",
        mode="REQUIRED",
        description="Sum of quantity * unit_price",
    ),
    Column(name="discount_amount", type="NUMERIC", mode="REQUIRED"),
)
SOLD_PRODUCTS = _table(
    "sold_products",
    "One row per order line",
    Column(name="order_id", type="STRING", mode="REQUIRED"),
    Column(name="line_number", type="INT64", mode="REQUIRED", description="0-based"),
    *PRODUCT,
    Column(name="quantity", type="INT64", mode="REQUIRED"),
    Column(name="unit_price", type="NUMERIC", mode="REQUIRED"),
    Column(name="discount", type="NUMERIC", mode="REQUIRED"),
    Column(
        name="amount",
        type="NUMERIC",
        mode="REQUIRED",
        description="quantity * unit_price - discount",
    ),
)
ORDER_STATUS_CHANGES = _table(
    "order_status_changes",
    "One row per order status change",
    Column(name="order_id", type="STRING", mode="REQUIRED"),
    Column(name="status", type="STRING", mode="REQUIRED"),
)
EXPERIENCE_IMPRESSIONS = _table(
    "experience_impressions",
    "One row per experience displayed",
    Column(name="experience_id", type="STRING", mode="REQUIRED"),
    Column(name="campaign_id", type="STRING"),
)
EXPERIENCE_CLICKS = _table(
    "experience_clicks",
    "One row per experience clicked",
    Column(name="experience_id", type="STRING", mode="REQUIRED"),
    Column(name="campaign_id", type="STRING"),
)

READ_MODELS: tuple[BigQueryTable, ...] = (
    PAGE_VIEWS,
    LINK_CLICKS,
    SEARCHES,
    BASKET_CHANGES,
    ORDERS,
    SOLD_PRODUCTS,
    ORDER_STATUS_CHANGES,
    EXPERIENCE_IMPRESSIONS,
    EXPERIENCE_CLICKS,
)

DEAD_LETTERS = BigQueryTable(
    dataset=DATASET,
    name="dead_letters",
    description="Messages that can never be frozen, with the reason (counted, re-drivable)",
    columns=(
        Column(name="row_id", type="STRING", mode="REQUIRED", description="source:message_id"),
        Column(name="message_id", type="STRING", mode="REQUIRED"),
        Column(name="source", type="STRING", mode="REQUIRED", description="Which processor"),
        Column(name="reason", type="STRING", mode="REQUIRED"),
        Column(name="data_base64", type="STRING", mode="REQUIRED"),
        Column(name="dead_lettered_at", type="TIMESTAMP", mode="REQUIRED"),
    ),
    partition_field="dead_lettered_at",
    clustering=("source",),
)

# --- Late and early events (docs/FREEZER.md, "Late and far-future events") -------------

# Accepted: ``occurred_at`` within [ingested_at - LATE_WINDOW, ingested_at + EARLY_WINDOW].
# Beyond, the event is parked (dead-lettered with its reason): a compaction's MERGE looks
# at the read-model partitions between its slice's earliest and latest ``occurred_at``,
# so one event dated years back would make it read every partition in between. Ingest
# already refuses events more than 5 minutes ahead of its clock; a republished message
# keeps its first ``ingested_at``, so a redriven message is judged as it was first.
# The late window is the freezer's setting (``FreezerSettings.late_window_days``): 3 days
# in the cloud; the local stack widens it for its simulations, which replay the data set's
# weeks at their own (shifted) dates through the real API (docs/FREEZER.md).
LATE_WINDOW = timedelta(days=3)
EARLY_WINDOW = timedelta(hours=1)


def outside_window(
    occurred_at: datetime, ingested_at: datetime, late_window: timedelta = LATE_WINDOW
) -> str | None:
    """Why an event is parked, or None when its ``occurred_at`` is within the window."""
    if occurred_at < ingested_at - late_window:
        return (
            f"parked: occurred_at {occurred_at.isoformat()} is more than "
            f"{late_window.days} days before ingested_at {ingested_at.isoformat()} (late window)"
        )
    if occurred_at > ingested_at + EARLY_WINDOW:
        return (
            f"parked: occurred_at {occurred_at.isoformat()} is more than "
            f"{int(EARLY_WINDOW.total_seconds() // 60)} minutes after ingested_at "
            f"{ingested_at.isoformat()} (far future)"
        )
    return None


# --- Landing: what the freezer appends, what the compaction reads (docs/FREEZER.md) --------

LANDING_DATASET = "cartwise_landing"
# Landing rows only wait for the compaction (seconds); a week lets an operator re-run
# compactions of the last days (shared.freezer.compaction) before the partitions expire.
LANDING_RETENTION_DAYS = 7
LANDED_AT = Column(
    name="landed_at",
    type="TIMESTAMP",
    mode="REQUIRED",
    description="When the freezer appended the row (the compaction's slices)",
)


def landing_of(table: BigQueryTable) -> BigQueryTable:
    """The append-only landing table of a read model: its columns and ``landed_at``,
    partitioned by hour of ``landed_at`` and clustered by it, so that a compaction's slice
    (a minute or so of ``landed_at``) reads its own blocks only."""
    return BigQueryTable(
        dataset=LANDING_DATASET,
        name=f"landing_{table.name}",
        description=f"Landing of {table.dataset}.{table.name}: appended at least once, "
        "compacted exactly once",
        columns=(*table.columns, LANDED_AT),
        partition_field=LANDED_AT.name,
        partition_type="HOUR",
        clustering=(LANDED_AT.name, "row_id"),
        partition_expiration_days=LANDING_RETENTION_DAYS,
    )


LANDINGS: dict[str, BigQueryTable] = {t.name: landing_of(t) for t in READ_MODELS}

# Firestore ``(default)``: the compaction's lease and watermarks (one document).
COMPACTIONS_COLLECTION = "compactions"

# Which read models each event type feeds (one event can feed several).
FEEDS: dict[EventType, tuple[BigQueryTable, ...]] = {
    EventType.PAGE_VIEWED: (PAGE_VIEWS,),
    EventType.LINK_CLICKED: (LINK_CLICKS,),
    EventType.SEARCH_PERFORMED: (SEARCHES,),
    EventType.PRODUCT_ADDED_TO_BASKET: (BASKET_CHANGES,),
    EventType.PRODUCT_REMOVED_FROM_BASKET: (BASKET_CHANGES,),
    EventType.CART_VALIDATED: (ORDERS, SOLD_PRODUCTS),
    EventType.ORDER_STATUS_CHANGED: (ORDER_STATUS_CHANGES,),
    EventType.EXPERIENCE_DISPLAYED: (EXPERIENCE_IMPRESSIONS,),
    EventType.EXPERIENCE_CLICKED: (EXPERIENCE_CLICKS,),
}


def _ts(moment: datetime) -> str:
    return moment.isoformat()


def _money(value: Decimal) -> str:
    return format(value, "f")


def row_id(retailer_id: str, event_id: str, line: int | None = None) -> str:
    """A read-model row's identity: the retailer's event (and order line). The retailer is
    part of it: an event id is only unique within one retailer's stream (issue 20)."""
    return f"{retailer_id}/{event_id}" + ("" if line is None else f":{line}")


def _common(retailer_id: str, event: ShopperEvent, ingested_at: datetime) -> Row:
    return {
        "row_id": row_id(retailer_id, str(event.event_id)),
        "event_id": str(event.event_id),
        "retailer_id": retailer_id,
        "shopper_id": event.shopper_id,
        "session_id": event.session_id,
        "occurred_at": _ts(event.occurred_at),
        "ingested_at": _ts(ingested_at),
    }


def rows_for(retailer_id: str, event: ShopperEvent, ingested_at: datetime) -> dict[str, list[Row]]:
    """The rows one event adds to each read model, keyed by table name (JSON-ready)."""
    base = _common(retailer_id, event, ingested_at)
    match event:
        case PageViewedEvent(payload=p):
            return {
                PAGE_VIEWS.name: [
                    {
                        **base,
                        "url": p.url,
                        "page_type": p.page_type,
                        "product_id": p.product_id,
                        "category": p.category,
                    }
                ]
            }
        case LinkClickedEvent(payload=p):
            return {
                LINK_CLICKS.name: [
                    {**base, "url": p.url, "target_url": p.target_url, "label": p.label}
                ]
            }
        case SearchPerformedEvent(payload=p):
            return {SEARCHES.name: [{**base, "query": p.query, "result_count": p.result_count}]}
        case ProductAddedToBasketEvent(payload=p) | ProductRemovedFromBasketEvent(payload=p):
            sign = 1 if event.type is EventType.PRODUCT_ADDED_TO_BASKET else -1
            return {
                BASKET_CHANGES.name: [
                    {
                        **base,
                        "product_id": p.product_id,
                        "brand": p.brand,
                        "category": p.category,
                        "change": "added" if sign > 0 else "removed",
                        "quantity": sign * p.quantity,
                        "unit_price": _money(p.unit_price),
                        "amount": _money(sign * p.quantity * p.unit_price),
                    }
                ]
            }
        case CartValidatedEvent(payload=p):
            gross = sum((line.quantity * line.unit_price for line in p.lines), Decimal(0))
            discount = sum((line.discount for line in p.lines), Decimal(0))
            order = {
                **base,
                "order_id": p.order_id,
                "total": _money(p.total),
                "line_count": len(p.lines),
                "item_count": sum(line.quantity for line in p.lines),
                "gross_amount": _money(gross),
                "discount_amount": _money(discount),
            }
            lines = [
                {
                    **base,
                    "row_id": row_id(retailer_id, str(event.event_id), number),
                    "order_id": p.order_id,
                    "line_number": number,
                    "product_id": line.product_id,
                    "brand": line.brand,
                    "category": line.category,
                    "quantity": line.quantity,
                    "unit_price": _money(line.unit_price),
                    "discount": _money(line.discount),
                    "amount": _money(line.quantity * line.unit_price - line.discount),
                }
                for number, line in enumerate(p.lines)
            ]
            return {ORDERS.name: [order], SOLD_PRODUCTS.name: lines}
        case OrderStatusChangedEvent(payload=p):
            return {
                ORDER_STATUS_CHANGES.name: [{**base, "order_id": p.order_id, "status": p.status}]
            }
        case ExperienceDisplayedEvent(payload=p):
            return {
                EXPERIENCE_IMPRESSIONS.name: [
                    {**base, "experience_id": p.experience_id, "campaign_id": p.campaign_id}
                ]
            }
        case ExperienceClickedEvent(payload=p):
            return {
                EXPERIENCE_CLICKS.name: [
                    {**base, "experience_id": p.experience_id, "campaign_id": p.campaign_id}
                ]
            }
    raise ValueError(f"no read model for {event.type}")  # pragma: no cover - exhaustive
