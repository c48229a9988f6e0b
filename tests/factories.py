"""Valid shopper events for tests, one per type, with overridable fields.

Each event gets a new shopper unless the test names one: a test on a long-lived stack
never finds, nor leaves, another run's history under a shared default shopper."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

PAYLOADS: dict[str, dict[str, Any]] = {
    "page_viewed": {"url": "/c/pasta", "page_type": "category", "category": "PASTA"},
    "link_clicked": {"url": "/", "target_url": "/promo", "label": "promo banner"},
    "search_performed": {"query": "tomato sauce", "result_count": 12},
    "product_added_to_basket": {
        "product_id": "p-1",
        "quantity": 2,
        "unit_price": "1.49",
        "brand": "B",
        "category": "C",
    },
    "product_removed_from_basket": {"product_id": "p-1", "quantity": 1, "unit_price": "1.49"},
    "cart_validated": {
        "order_id": "o-1",
        "total": "4.48",
        "lines": [
            {"product_id": "p-1", "quantity": 2, "unit_price": "1.49", "discount": "0.50"},
            {"product_id": "p-2", "quantity": 1, "unit_price": "2.00"},
        ],
    },
    "order_status_changed": {"order_id": "o-1", "status": "delivered"},
    "experience_displayed": {"experience_id": "x-1", "campaign_id": "c-1"},
    "experience_clicked": {"experience_id": "x-1", "campaign_id": "c-1"},
}


def event(
    kind: str = "page_viewed",
    shopper_id: str | None = None,
    occurred_at: datetime | None = None,
    **payload: Any,
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "shopper_id": shopper_id or f"shopper-{uuid.uuid4().hex[:12]}",
        "session_id": "session-1",
        "occurred_at": (occurred_at or datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
        "schema_version": 1,
        "payload": {**copy.deepcopy(PAYLOADS[kind]), **payload},
    }
