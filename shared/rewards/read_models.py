"""Plays of the rewards game frozen into BigQuery, for the campaign reports.

One row per play (``play_id`` is deterministic: one play per qualifying order), written by
the rewards code path, never carrying an e-mail address (those live only in the rewards
database). A cancelled or returned order voids an unpaid win: the row is then rewritten
with ``voided`` set, so reports count wins and cost net of voids.
"""

from __future__ import annotations

from shared.freezer.read_models import DATASET
from shared.platform.resource_model import BigQueryTable, Column

PLAYS = BigQueryTable(
    dataset=DATASET,
    name="plays",
    description="One row per play of a gamified promotion (no e-mail address, ever)",
    columns=(
        Column(name="play_id", type="STRING", mode="REQUIRED"),
        Column(name="retailer_id", type="STRING", mode="REQUIRED"),
        Column(name="shopper_id", type="STRING", mode="REQUIRED"),
        Column(name="campaign_id", type="STRING", mode="REQUIRED"),
        Column(name="order_id", type="STRING", mode="REQUIRED"),
        Column(name="played_at", type="TIMESTAMP", mode="REQUIRED"),
        Column(name="won", type="BOOL", mode="REQUIRED"),
        Column(name="prize_value", type="NUMERIC", description="What the win pays; 0 if lost"),
        Column(name="voided", type="BOOL", mode="REQUIRED"),
        Column(name="voided_at", type="TIMESTAMP"),
        Column(name="paid", type="BOOL", mode="REQUIRED"),
    ),
    partition_field="played_at",
    clustering=("retailer_id", "campaign_id"),
)
PLAY_TABLES = (PLAYS,)
