"""The demo's closing report: what the stores hold after the replay, as text and as HTML.

Every figure is read back from the stores (BigQuery read models, decisions and model
evaluations, the Bigtable rejected-events store) by ``shared/demo/stores.py``;
nothing here counts what the replay sent. This module only shapes and judges the figures:
quantiles, the exposed-versus-held-out comparison with its confidence interval, and the
renderings (a terminal table and a self-contained HTML page with inline SVG charts).

The uplift is an A/A check on replayed traffic (``cartwise demo --aa``): replayed shoppers
buy what they bought in 2017 whatever they are shown, so the difference between exposed
and held-out shoppers must come out compatible with zero. The report says so instead of
claiming an effect. With responding shoppers (the default of ``cartwise demo``), the
truth the response model injected (``shared/journey/responding.py``, handed over by the
story, never read by the campaign report's code) is set beside the campaign report's own
uplift (``shared.campaigns.report.measured_uplifts``), campaign by campaign.
"""

from __future__ import annotations

import html
import math
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.campaigns.report import welch_interval
from shared.demo.probes import percentile


@dataclass(frozen=True)
class Comparison:
    """Mean of ``exposed`` minus mean of ``held_out``, with a Welch 95% interval."""

    exposed_n: int
    held_out_n: int
    exposed_mean: float
    held_out_mean: float
    difference: float
    low: float
    high: float

    @property
    def computable(self) -> bool:
        return self.exposed_n >= 2 and self.held_out_n >= 2

    @property
    def compatible_with_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


def compare(exposed: list[float], held_out: list[float]) -> Comparison:
    """Welch's difference of means with a normal 95% interval (NaN when not computable)."""
    n1, n2 = len(exposed), len(held_out)
    m1 = statistics.fmean(exposed) if exposed else math.nan
    m2 = statistics.fmean(held_out) if held_out else math.nan
    if n1 < 2 or n2 < 2:
        return Comparison(n1, n2, m1, m2, m1 - m2, math.nan, math.nan)
    diff, low, high = welch_interval(
        m1, statistics.variance(exposed), n1, m2, statistics.variance(held_out), n2
    )
    return Comparison(n1, n2, m1, m2, diff, low, high)


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (NaN for none)."""
    return percentile(values, q, math.nan)


@dataclass(frozen=True)
class CampaignUplift:
    campaign_id: str
    name: str
    experience_type: str
    shown: int  # decisions showing it
    held_out: int  # decisions holding it out (control group)
    basket_value: Comparison  # per shopper: mean order total after their first decision


@dataclass(frozen=True)
class TrueVsMeasured:
    """One campaign: the effect the response model injected, and what the report measures."""

    campaign_id: str
    truth: dict[str, Any]  # ``CampaignTruth.summary()``
    measured: dict[str, dict[str, Any]]  # ``uplifts``: basket_value, targeted_sales

    def covered(self, metric: str) -> bool | None:
        m = self.measured[metric]
        if not m["computable"]:
            return None
        low, high = m["ci95"]
        return bool(low <= self.truth[metric] <= high)


@dataclass
class DemoFigures:
    since: datetime
    until: datetime
    ingested_by_type: dict[str, int]
    rejected_by_reason: dict[str, int]
    decisions: int
    latencies_ms: list[float]  # per decision: decided_at - ingested_at of its event
    experiences: dict[str, dict[str, int]]  # experience type -> outcome -> decisions
    evaluation: list[dict[str, object]]  # model_evaluations rows of the nightly run
    gate_passed: bool | None
    campaigns: list[CampaignUplift]
    notes: list[str] = field(default_factory=list)
    responding: dict[str, Any] | None = None  # the response model's stated effects
    true_vs_measured: list[TrueVsMeasured] = field(default_factory=list)
    game: Any = None  # shared.demo.game.GameFigures: the CSM's gamified promotion
    # Personalized promotions shown: offer policy in force -> policy / explore -> count.
    offers: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ingested(self) -> int:
        return sum(self.ingested_by_type.values())

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


LATENCY_QUANTILES = (0.5, 0.9, 0.95, 0.99)


def headline_evaluation(figures: DemoFigures) -> list[dict[str, object]]:
    """Product level, next basket: recall@10 and NDCG@10 of every method."""
    rows = [
        r
        for r in figures.evaluation
        if r.get("level") == "product"
        and r.get("target") == "next_basket"
        and r.get("metric") in ("recall@10", "ndcg@10")
    ]
    return sorted(rows, key=lambda r: (str(r["metric"]), -float(str(r["value"]))))


def aa_verdict(campaigns: list[CampaignUplift]) -> str:
    judged = [c for c in campaigns if c.basket_value.computable]
    if not judged:
        return (
            "No campaign had at least two exposed and two held-out shoppers with an order: "
            "the uplift is not computable on this replay (more households or weeks)."
        )
    compatible = [c for c in judged if c.basket_value.compatible_with_zero]
    expected = 0.95 * len(judged)
    return (
        f"A/A check: replayed shoppers buy what they bought in 2017 whatever they are shown, "
        f"so the true uplift is zero. {len(compatible)} of {len(judged)} campaign intervals "
        f"contain zero (about {expected:.1f} expected at 95%): the measured differences are "
        "noise, and this report claims no effect."
    )


def responding_verdict(rows: list[TrueVsMeasured]) -> str:
    judged = [(r, m) for r in rows for m in METRICS if r.covered(m) is not None]
    if not judged:
        return (
            "Responding shoppers: no campaign had two exposed and two held-out shoppers: "
            "nothing to compare with the truth on this replay (more households or weeks)."
        )
    inside = sum(bool(r.covered(m)) for r, m in judged)
    return (
        f"Responding shoppers: the true effect (what the response model injected) lies inside "
        f"the report's 95% interval in {inside} of {len(judged)} campaign measures (about "
        f"{0.95 * len(judged):.1f} expected). A replay this size has wide intervals; "
        "`make bench-uplift` checks coverage and power over many runs (docs/BENCHMARKS.md)."
    )


METRICS = ("targeted_sales", "basket_value")


def _interval(m: dict[str, Any]) -> str:
    if not m["computable"]:
        return "not computable"
    return f"{m['difference']:+.2f} [{m['ci95'][0]:+.2f}, {m['ci95'][1]:+.2f}]"


def true_vs_measured_rows(rows: list[TrueVsMeasured]) -> list[list[str]]:
    return [
        [
            r.campaign_id,
            f"{r.truth['exposed_shoppers']:,}",
            f"{r.truth['displayed']:,}/{r.truth['clicked']:,}/{r.truth['additions']:,}",
            f"{r.truth[m]:+.2f}",
            _interval(r.measured[m]),
            m.replace("_", " "),
        ]
        for r in rows
        for m in METRICS
    ]


TRUE_VS_MEASURED_HEADER = [
    "campaign",
    "exposed (tracker)",
    "displayed/clicked/added",
    "true effect",
    "measured (95% CI)",
    "per shopper",
]


def _money(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:+.2f}"


def render_text(figures: DemoFigures) -> str:
    lines = [
        f"Report of the replay {figures.since:%Y-%m-%d %H:%M:%S} - "
        f"{figures.until:%H:%M:%S} UTC (from the stores)",
        "",
        f"Events ingested: {figures.ingested:,}  rejected: {figures.rejected:,}",
    ]
    for kind, n in sorted(figures.ingested_by_type.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {kind:<24} {n:>8,}")
    for reason, n in sorted(figures.rejected_by_reason.items()):
        lines.append(f"  rejected: {reason:<38} {n:>6,}")
    lat = figures.latencies_ms
    lines += [
        "",
        f"Decisions: {figures.decisions:,}; ingestion -> decision written (ms): "
        + "  ".join(f"p{round(q * 100)} {quantile(lat, q):,.0f}" for q in LATENCY_QUANTILES),
        "",
        "Experiences per type (decisions): shown / held out (control) / withheld by a rule",
    ]
    for kind, outcomes in sorted(figures.experiences.items()):
        withheld = sum(n for o, n in outcomes.items() if o not in ("shown", "held_out"))
        lines.append(
            f"  {kind:<24} {outcomes.get('shown', 0):>8,} / {outcomes.get('held_out', 0):>6,}"
            f" / {withheld:>6,}"
        )
    lines += ["", "Offer policy in force (personalized promotions shown; explored share)"]
    lines += [f"  {policy:<40} {value}" for policy, value in offer_rows(figures.offers)]
    lines += ["", f"Model quality (product, next basket; gate passed: {figures.gate_passed})"]
    for row in headline_evaluation(figures):
        lines.append(
            f"  {row['metric']!s:<10} {row['method']!s:<20} {float(str(row['value'])):.4f}"
        )
    lines += ["", "Per campaign: basket value of exposed minus held-out shoppers (95% CI)"]
    for c in figures.campaigns:
        b = c.basket_value
        lines.append(
            f"  {c.campaign_id:<14} {c.experience_type:<24} shown {c.shown:>6,} held out "
            f"{c.held_out:>5,}  shoppers {b.exposed_n:>4}/{b.held_out_n:<4} "
            f"diff {_money(b.difference)} [{_money(b.low)}, {_money(b.high)}]"
        )
    if figures.responding is None:
        lines += ["", aa_verdict(figures.campaigns)]
    else:
        effects = ", ".join(f"{k} {v}" for k, v in figures.responding.items())
        lines += ["", f"Responding shoppers (effects stated up front: {effects})"]
        lines += ["  " + " | ".join(TRUE_VS_MEASURED_HEADER)]
        lines += ["  " + " | ".join(r) for r in true_vs_measured_rows(figures.true_vs_measured)]
        lines += ["", responding_verdict(figures.true_vs_measured)]
    lines += game_text(figures.game)
    lines += figures.notes
    return "\n".join(lines)


def offer_rows(offers: dict[str, dict[str, int]]) -> list[list[str]]:
    """Per offer policy (campaign, rules or learnt:<run>): promotions shown, and how many
    at an explored level."""
    if not offers:
        return [["none", "no personalized promotion shown"]]
    rows = []
    for policy, counts in sorted(offers.items()):
        total = sum(counts.values())
        explored = counts.get("explore", 0)
        rows.append([policy, f"{total:,} shown, {explored:,} explored ({explored / total:.0%})"])
    return rows


def game_rows(game: Any) -> list[list[str]]:
    """The game's figures, from its campaign report and the rewards ledger."""
    p, i, s, ledger = game.participation, game.invitations, game.shoppers, game.ledger
    share = p["budget_consumed_share"]
    return [
        [
            "qualifying orders: invited / held out",
            f"{i.get('shown', 0):,} / {i.get('held_out', 0):,}",
        ],
        ["invitations withheld: budget exhausted", f"{i.get('budget_exhausted', 0):,}"],
        ["shoppers invited / held out", f"{s['exposed']:,} / {s['held_out']:,}"],
        ["plays (players)", f"{p['plays']:,} ({p['players']:,})"],
        [
            "participation (plays / invitations shown)",
            f"{p['plays'] / i['shown']:.0%}" if i.get("shown") else "-",
        ],
        ["wins (voided)", f"{p['wins']:,} ({p['voided_wins']:,})"],
        ["wins claimed with an e-mail address (vault)", f"{ledger['wins_claimed']:,}"],
        [
            "cost / budget",
            f"{_money(p['cost'])} / {game.rules['budget']}"
            + ("" if share is None else f" ({share:.0%})"),
        ],
        [
            "ledger: wins owed / paid, remaining",
            f"{ledger['wins_owed']} ({ledger['owed']}) / {ledger['wins_paid']} "
            f"({ledger['paid']}), {ledger['remaining']} of {ledger['slots']} prizes' budget"
            + (" - exhausted" if ledger["exhausted"] else ""),
        ],
    ]


def game_text(game: Any) -> list[str]:
    if game is None:
        return []
    rules = ", ".join(f"{k} {v}" for k, v in game.rules.items())
    lines = ["", f"The game: {game.campaign['name']} ({game.campaign['campaign_id']})"]
    lines.append(f"  set by the CSM: {rules}")
    lines += [f"  {label:<40} {value}" for label, value in game_rows(game)]
    return lines


# --- HTML ------------------------------------------------------------------------------


def _bars(items: list[tuple[str, float]], unit: str = "", width: int = 560) -> str:
    if not items:
        return "<p>none</p>"
    top = max(v for _, v in items) or 1.0
    row_h, label_w = 22, 190
    height = row_h * len(items) + 6
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    for i, (label, value) in enumerate(items):
        y = 3 + i * row_h
        w = (width - label_w - 90) * value / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{html.escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" '
            f'fill="#3b7dd8"/><text x="{label_w + w + 4:.1f}" y="{y + 15}">'
            f"{value:,.0f}{unit}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _histogram(values: list[float], width: int = 560, height: int = 200) -> str:
    if not values:
        return "<p>no decisions</p>"
    cap = quantile(values, 0.99) or 1.0
    bins = 30
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int(bins * min(v, cap) / cap))] += 1
    top = max(counts) or 1
    bar_w = (width - 40) / bins
    parts = [f'<svg width="{width}" height="{height + 30}" role="img">']
    for i, n in enumerate(counts):
        h = (height - 10) * n / top
        parts.append(
            f'<rect x="{30 + i * bar_w:.1f}" y="{height - h:.1f}" width="{bar_w - 1:.1f}" '
            f'height="{h:.1f}" fill="#3b7dd8"><title>{n}</title></rect>'
        )
    for q in (0.5, 0.95):
        x = 30 + (width - 40) * min(quantile(values, q), cap) / cap
        parts.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}" stroke="#d33" '
            f'stroke-dasharray="4"/><text x="{x + 3:.1f}" y="12" fill="#d33">'
            f"p{round(q * 100)} {quantile(values, q):,.0f} ms</text>"
        )
    parts.append(
        f'<text x="30" y="{height + 20}">0 ms</text>'
        f'<text x="{width - 10}" y="{height + 20}" text-anchor="end">{cap:,.0f} ms (p99; '
        "later ones in the last bar)</text></svg>"
    )
    return "".join(parts)


def _forest(campaigns: list[CampaignUplift], width: int = 560) -> str:
    judged = [c for c in campaigns if c.basket_value.computable]
    if not judged:
        return "<p>not computable on this replay</p>"
    bound = max(max(abs(c.basket_value.low), abs(c.basket_value.high)) for c in judged) or 1.0
    row_h, label_w = 24, 150
    height = row_h * len(judged) + 30
    span = width - label_w - 20

    def x(v: float) -> float:
        return label_w + span * (v + bound) / (2 * bound)

    parts = [
        f'<svg width="{width}" height="{height}" role="img">'
        f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{height - 20}" stroke="#888"/>'
    ]
    for i, c in enumerate(judged):
        b = c.basket_value
        y = 12 + i * row_h
        color = "#2a2" if b.compatible_with_zero else "#d33"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 4}" text-anchor="end">'
            f"{html.escape(c.campaign_id)}</text>"
            f'<line x1="{x(b.low):.1f}" y1="{y}" x2="{x(b.high):.1f}" y2="{y}" '
            f'stroke="{color}" stroke-width="2"/>'
            f'<circle cx="{x(b.difference):.1f}" cy="{y}" r="4" fill="{color}"/>'
        )
    parts.append(
        f'<text x="{label_w}" y="{height - 4}">{-bound:+.2f}</text>'
        f'<text x="{x(0):.1f}" y="{height - 4}" text-anchor="middle">0</text>'
        f'<text x="{width - 20}" y="{height - 4}" text-anchor="end">{bound:+.2f}</text></svg>'
    )
    return "".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(figures: DemoFigures) -> str:
    lat = figures.latencies_ms
    quantiles = ", ".join(
        f"p{round(q * 100)} {quantile(lat, q):,.0f} ms" for q in LATENCY_QUANTILES
    )
    shown = [(k, float(v.get("shown", 0))) for k, v in sorted(figures.experiences.items())]
    model_rows = [
        [
            str(r["metric"]),
            str(r["method"]),
            f"{float(str(r['value'])):.4f}",
            "" if r.get("ci_low") is None else f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}]",
        ]
        for r in headline_evaluation(figures)
    ]
    campaign_rows = [
        [
            c.campaign_id,
            c.name,
            c.experience_type,
            f"{c.shown:,}",
            f"{c.held_out:,}",
            f"{c.basket_value.exposed_n}/{c.basket_value.held_out_n}",
            _money(c.basket_value.difference),
            f"[{_money(c.basket_value.low)}, {_money(c.basket_value.high)}]",
        ]
        for c in figures.campaigns
    ]
    rejected = "".join(
        f"<li>{html.escape(reason)}: {n:,}</li>"
        for reason, n in sorted(figures.rejected_by_reason.items())
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cartwise demo report</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 980px; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.15em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
.kpi {{ display: inline-block; margin-right: 2em; }} .kpi b {{ font-size: 1.6em; }}
svg text {{ font-size: 12px; }} .verdict {{ background: #f4f8ee; padding: .6em; }}
</style></head><body>
<h1>cartwise: the replay, as the stores saw it</h1>
<p>{figures.since:%Y-%m-%d %H:%M:%S} to {figures.until:%H:%M:%S} UTC. Every figure below is read
back from the stores (BigQuery read models, decisions, model evaluations; Bigtable rejected
events), not from the replay's own counters.</p>
<div><span class="kpi"><b>{figures.ingested:,}</b> events ingested</span>
<span class="kpi"><b>{figures.rejected:,}</b> rejected</span>
<span class="kpi"><b>{figures.decisions:,}</b> decisions</span>
<span class="kpi"><b>{quantile(lat, 0.95):,.0f} ms</b> p95 ingestion → decision</span></div>
<h2>Events ingested per type</h2>
{_bars(sorted(figures.ingested_by_type.items(), key=lambda kv: -kv[1]))}
<h2>Events rejected, by reason</h2><ul>{rejected or "<li>none</li>"}</ul>
<h2>Decision latency: ingestion to decision written ({quantiles})</h2>
{_histogram(lat)}
<h2>Experiences shown per type</h2>
{_bars(shown)}
<h2>Offer policy in force (personalized promotions shown)</h2>
{_table(["policy", "shown"], offer_rows(figures.offers))}
<h2>Model quality versus baselines (product, next basket; gate passed:
{figures.gate_passed})</h2>
{_table(["metric", "method", "value", "95% CI"], model_rows)}
<h2>Per campaign: basket value, exposed minus held-out shoppers</h2>
{_forest(figures.campaigns)}
{
        _table(
            [
                "campaign",
                "name",
                "type",
                "shown",
                "held out",
                "shoppers (exp./held)",
                "difference",
                "95% CI",
            ],
            campaign_rows,
        )
    }
{_responding_html(figures)}
{_game_html(figures.game)}
{"".join(f"<p>{html.escape(n)}</p>" for n in figures.notes)}
</body></html>
"""


def _responding_html(figures: DemoFigures) -> str:
    if figures.responding is None:
        return f'<p class="verdict">{html.escape(aa_verdict(figures.campaigns))}</p>'
    effects = ", ".join(f"{k} {v}" for k, v in figures.responding.items())
    return (
        "<h2>Responding shoppers: true versus measured uplift per campaign</h2>"
        f"<p>Effects stated up front: {html.escape(effects)}. The truth is what the response "
        "model injected into exposed shoppers; the measure is the campaign report's own "
        "uplift (exposed minus held out).</p>"
        + _table(TRUE_VS_MEASURED_HEADER, true_vs_measured_rows(figures.true_vs_measured))
        + f'<p class="verdict">{html.escape(responding_verdict(figures.true_vs_measured))}</p>'
    )


def _game_html(game: Any) -> str:
    if game is None:
        return ""
    rules = [[k, v] for k, v in game.rules.items()]
    p = game.participation
    budget = float(game.rules["budget"] or 0)
    spent = [("cost", float(p["cost"] or 0)), ("budget", budget)]
    return (
        f"<h2>The game: {html.escape(str(game.campaign['name']))}</h2>"
        "<p>A gamified promotion a CSM created through the campaigns API before the replay "
        "(live in seconds): qualifying orders confirmed by the retailer's back end get an "
        "invitation to play, drawn on the server within the budget; winners claim with an "
        "e-mail address, kept in the rewards vault only. Figures from the campaign's report "
        "and the payout ledger.</p>"
        + _table(["set by the CSM", ""], rules)
        + _table(["", ""], game_rows(game))
        + "<h2>Cost against the budget</h2>"
        + _bars(spent)
    )
