"""CSV exports of the back office: a campaign's report, and the campaign list.

A cell that a spreadsheet would read as a formula (it starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return: OWASP's "CSV injection") is written with a leading
``'``, so that a campaign named ``=HYPERLINK(...)`` stays text; numbers are written as
numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.campaigns.portfolio import Row

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def report_csv(report: Mapping[str, Any]) -> str:
    """The report as ``section,metric,value`` rows (figures, uplift), then one row per day
    (``daily,<day>.<column>,value``): one table a spreadsheet opens as it is."""
    rows: list[tuple[str, str, Any]] = []
    for section in ("campaign", "period", "exposure", "shoppers", "participation"):
        for name, value in report[section].items():
            shown = ", ".join(value) if isinstance(value, list) else value
            rows.append((section, name, shown))
    for name, value in report["targeted_sales"].items():
        rows.append(("targeted_sales", name, value))
    for metric, result in report["uplift"].items():
        rows.append(("uplift", f"{metric}.exposed_mean", result["exposed"]["mean"]))
        rows.append(("uplift", f"{metric}.exposed_shoppers", result["exposed"]["shoppers"]))
        rows.append(("uplift", f"{metric}.held_out_mean", result["held_out"]["mean"]))
        rows.append(("uplift", f"{metric}.held_out_shoppers", result["held_out"]["shoppers"]))
        rows.append(("uplift", f"{metric}.difference", result["difference"]))
        low, high = result["ci95"] or (None, None)
        rows.append(("uplift", f"{metric}.ci95_low", low))
        rows.append(("uplift", f"{metric}.ci95_high", high))
        rows.append(("uplift", f"{metric}.not_computable_because", result["reason"]))
    for day in report["daily"]:
        for name in ("targeted_sales", "cost", "cost_cumulative"):
            rows.append(("daily", f"{day['day']}.{name}", day[name]))
    rows.append(("report", "computed_at", report["computed_at"]))
    return _csv(("section", "metric", "value"), rows)


LIST_COLUMNS = (
    "campaign_id",
    "name",
    "brand",
    "retailer_ids",
    "experience_type",
    "status",
    "starts_at",
    "ends_at",
    "budget",
    "spent",
    "pacing_ratio",
    "exposed",
    "held_out",
    "uplift",
    "uplift_ci95_low",
    "uplift_ci95_high",
    "figures_as_of",
)


def list_csv(rows: Sequence[Row]) -> str:
    """The campaign list as the page shows it (filters and sort applied, every page)."""

    def line(row: Row) -> tuple[Any, ...]:
        c, s, p = row.campaign, row.stats, row.pacing
        ratio = p.ratio
        return (
            c.campaign_id,
            c.name,
            c.brand,
            " ".join(c.retailer_ids),
            c.experience_type,
            c.status,
            c.starts_at.isoformat(),
            c.ends_at.isoformat(),
            float(c.budget) if c.budget is not None else None,
            p.spent,
            round(ratio, 4) if ratio is not None else None,
            s.exposed if s else None,
            s.held_out if s else None,
            s.uplift if s else None,
            s.uplift_low if s else None,
            s.uplift_high if s else None,
            s.computed_at.isoformat() if s else None,
        )

    return _csv(LIST_COLUMNS, (line(r) for r in rows))
