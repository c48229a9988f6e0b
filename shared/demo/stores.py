"""The demo report's figures, read back from the stores after the replay.

BigQuery: the read models (events ingested since the replay began, by ``ingested_at``),
``decisions`` and ``decision_experiences`` (latency, outcomes, exposed and held-out
shoppers), ``orders`` (their basket values) and ``model_evaluations`` (the nightly run).
Bigtable: the rejected-events store. Firestore: the campaigns' names and types.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.demo.report import CampaignUplift, DemoFigures, compare
from shared.freezer.read_models import DATASET, READ_MODELS
from shared.ingestion.bigtable_events import BigtableRejectedEventStore
from shared.platform.bigquery_warehouse import BigQueryWarehouse


class DemoStores:
    def __init__(
        self,
        warehouse: BigQueryWarehouse,
        project: str,
        rejected: BigtableRejectedEventStore,
        campaigns: FirestoreCampaignStore,
    ) -> None:
        self._warehouse = warehouse
        self._prefix = f"{project}.{DATASET}"
        self._rejected = rejected
        self._campaigns = campaigns

    def _t(self, name: str) -> str:
        return f"`{self._prefix}.{name}`"

    def _ingested_sql(self) -> str:
        """Each event ingested since ``@since`` once, with its ingestion time and kind (the
        first of its read models by name: a validated cart is an ``orders`` row and its
        ``sold_products`` rows, counted once)."""
        rows = " UNION ALL ".join(
            f"SELECT '{t.name}' AS kind, event_id, ingested_at "  # noqa: S608
            f"FROM {self._t(t.name)} WHERE ingested_at >= @since"
            for t in READ_MODELS
        )
        return (
            "SELECT event_id, MIN(kind) AS kind, MIN(ingested_at) AS ingested_at "  # noqa: S608
            f"FROM ({rows}) GROUP BY event_id"
        )

    def ingested_by_type(self, since: datetime) -> dict[str, int]:
        rows = self._warehouse.query(
            f"SELECT kind, COUNT(*) AS n FROM ({self._ingested_sql()}) GROUP BY kind",  # noqa: S608
            {"since": since},
        )
        return {str(r["kind"]): int(r["n"]) for r in rows}

    def latencies_ms(self, since: datetime) -> list[float]:
        rows = self._warehouse.query(
            f"WITH ingested AS ({self._ingested_sql()}) "  # noqa: S608
            "SELECT TIMESTAMP_DIFF(d.decided_at, i.ingested_at, MILLISECOND) AS ms "
            f"FROM {self._t('decisions')} d JOIN ingested i ON i.event_id = d.event_id "
            "WHERE d.decided_at IS NOT NULL",
            {"since": since},
        )
        return [float(r["ms"]) for r in rows]

    def decisions(self, since: datetime) -> int:
        rows = self._warehouse.query(
            f"SELECT COUNT(*) AS n FROM {self._t('decisions')} WHERE decided_at >= @since",  # noqa: S608
            {"since": since},
        )
        return int(rows[0]["n"])

    def experiences(self, since: datetime) -> dict[str, dict[str, int]]:
        rows = self._warehouse.query(
            "SELECT experience_type, outcome, COUNT(*) AS n "  # noqa: S608
            f"FROM {self._t('decision_experiences')} WHERE decided_at >= @since "
            "GROUP BY experience_type, outcome",
            {"since": since},
        )
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for r in rows:
            out[str(r["experience_type"])][str(r["outcome"])] = int(r["n"])
        return dict(out)

    def offers(self, since: datetime) -> dict[str, dict[str, int]]:
        """Personalized promotions shown, per offer policy in force and who chose the level
        (``policy`` or ``explore``)."""
        rows = self._warehouse.query(
            "SELECT offer_policy, offer_chosen_by, COUNT(*) AS n "  # noqa: S608
            f"FROM {self._t('decision_experiences')} WHERE decided_at >= @since "
            "AND outcome = 'shown' AND offer_policy IS NOT NULL "
            "GROUP BY offer_policy, offer_chosen_by",
            {"since": since},
        )
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for r in rows:
            out[str(r["offer_policy"])][str(r["offer_chosen_by"])] = int(r["n"])
        return dict(out)

    def evaluation(self, run_id: str) -> list[dict[str, Any]]:
        return self._warehouse.query(
            f"SELECT * FROM {self._t('model_evaluations')} WHERE run_id = @run_id",  # noqa: S608
            {"run_id": run_id},
        )

    def campaign_uplifts(self, since: datetime) -> list[CampaignUplift]:
        """Per campaign, exposed (shown) and held-out shoppers' mean order total over the
        orders they validated after the campaign's first decision about them."""
        counts = self._warehouse.query(
            "SELECT campaign_id, outcome, COUNT(*) AS n "  # noqa: S608
            f"FROM {self._t('decision_experiences')} WHERE decided_at >= @since "
            "AND campaign_id IS NOT NULL AND outcome IN ('shown', 'held_out') "
            "GROUP BY campaign_id, outcome",
            {"since": since},
        )
        values = self._warehouse.query(
            "WITH first_decision AS ("  # noqa: S608
            "SELECT campaign_id, outcome, retailer_id, shopper_id, MIN(occurred_at) AS first_at "
            f"FROM {self._t('decision_experiences')} WHERE decided_at >= @since "
            "AND campaign_id IS NOT NULL AND outcome IN ('shown', 'held_out') "
            "GROUP BY campaign_id, outcome, retailer_id, shopper_id) "
            "SELECT f.campaign_id, f.outcome, f.shopper_id, AVG(o.total) AS basket_value "
            f"FROM first_decision f JOIN {self._t('orders')} o "
            "ON o.retailer_id = f.retailer_id AND o.shopper_id = f.shopper_id "
            "AND o.occurred_at >= f.first_at AND o.ingested_at >= @since "
            "GROUP BY f.campaign_id, f.outcome, f.shopper_id",
            {"since": since},
        )
        shown: dict[str, dict[str, int]] = defaultdict(dict)
        for r in counts:
            shown[str(r["campaign_id"])][str(r["outcome"])] = int(r["n"])
        samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in values:
            samples[str(r["campaign_id"])][str(r["outcome"])].append(float(r["basket_value"]))
        uplifts = []
        for campaign_id in sorted(shown):
            campaign = self._campaigns.get(campaign_id)
            uplifts.append(
                CampaignUplift(
                    campaign_id=campaign_id,
                    name=campaign.name if campaign else "?",
                    experience_type=campaign.experience_type if campaign else "?",
                    shown=shown[campaign_id].get("shown", 0),
                    held_out=shown[campaign_id].get("held_out", 0),
                    basket_value=compare(
                        samples[campaign_id]["shown"], samples[campaign_id]["held_out"]
                    ),
                )
            )
        return uplifts

    def rejected_by_reason(self, retailers: list[str], since: datetime) -> dict[str, int]:
        total: dict[str, int] = {}
        for retailer in retailers:
            for reason, n in self._rejected.reasons_since(retailer, since).items():
                total[reason] = total.get(reason, 0) + n
        return total

    def figures(
        self, since: datetime, until: datetime, retailers: list[str], run_id: str | None
    ) -> DemoFigures:
        evaluation = self.evaluation(run_id) if run_id else []
        return DemoFigures(
            since=since,
            until=until,
            ingested_by_type=self.ingested_by_type(since),
            rejected_by_reason=self.rejected_by_reason(retailers, since),
            decisions=self.decisions(since),
            latencies_ms=self.latencies_ms(since),
            experiences=self.experiences(since),
            evaluation=evaluation,
            gate_passed=None,
            campaigns=self.campaign_uplifts(since),
            offers=self.offers(since),
        )
