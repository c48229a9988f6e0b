"""What a rejected event leaves for inspection (Bigtable ``rejected_events``, the
``rejected-events`` topic): never the personal data it was refused for.

- Refused for personal data (``personal_data_refused``: a forbidden field, an e-mail as the
  shopper id): the field names and the reasons only — the event's id, type, schema
  version, session, time and shopper id (unless that id is what was refused), and
  ``personal_data_removed``: the refused paths. No value of the event is kept.
- Refused for anything else: the input as sent, so that it can be replayed after a fix,
  with every string that looks like an e-mail address or an international phone number
  replaced by ``SCRUBBED`` (walked iteratively: a hostile depth cannot exhaust the stack).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from shared.contract.events import Rejection, looks_like_email

SCRUBBED = "[scrubbed: looks like personal data]"
PERSONAL_DATA_REFUSED = "personal_data_refused"
# "+" then 8 to 15 digits, with the usual separators; no nested quantifier (linear).
_PHONE = re.compile(r"\+[0-9](?:[ ().-]?[0-9]){7,14}")
_ENVELOPE = ("event_id", "type", "schema_version", "session_id", "occurred_at")


def looks_personal(text: str) -> bool:
    stripped = text.strip()
    if len(stripped) > 254:
        return False
    return looks_like_email(stripped) or _PHONE.fullmatch(stripped) is not None


def _scalar(value: Any) -> Any:
    return SCRUBBED if isinstance(value, str) and looks_personal(value) else value


def scrubbed(value: Any) -> Any:
    """A copy of ``value`` with personal-looking strings replaced, keys included."""
    if not isinstance(value, dict | list):
        return _scalar(value)
    root: dict[Any, Any] | list[Any] = {} if isinstance(value, dict) else [None] * len(value)
    pending: list[tuple[Any, Any]] = [(value, root)]
    while pending:
        source, target = pending.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, child in items:
            if isinstance(child, dict):
                copy: Any = {}
                pending.append((child, copy))
            elif isinstance(child, list):
                copy = [None] * len(child)
                pending.append((child, copy))
            else:
                copy = _scalar(child)
            target[_scalar(key) if isinstance(target, dict) else key] = copy
    return root


def kept_for_inspection(raw: Any, reasons: Sequence[Rejection]) -> Any:
    """What is kept of a rejected event's input (see the module's docstring)."""
    refused = [r.field for r in reasons if r.code == PERSONAL_DATA_REFUSED]
    if not refused:
        return scrubbed(raw)
    kept: dict[str, Any] = {}
    if isinstance(raw, dict):
        for name in _ENVELOPE:
            value = raw.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                kept[name] = _scalar(value)
        shopper = raw.get("shopper_id")
        if isinstance(shopper, str) and not looks_personal(shopper):
            kept["shopper_id"] = shopper  # the retailer's identifier: erasure finds it
    kept["personal_data_removed"] = refused
    return kept
