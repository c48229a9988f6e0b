"""The back office's pages: server-rendered HTML (Jinja2 templates, autoescaped), inline
SVG charts, and two small same-origin scripts (the catalogue pickers and the creative
preview) under a strict content security policy (``api._html``).

Values written into a page by hand (the older pages' builders below) go through
``html.escape``; templates escape everything unless it is marked safe.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from shared.campaigns.admin import EDITABLE, AdminError, AuditRecord, CsmAccount
from shared.campaigns.model import Campaign
from shared.campaigns.portfolio import PER_PAGE, Alert, ListPage, ListQuery

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
# The demo shop's experience widget and style sheet: the preview renders a campaign with
# the very files the shop uses (served under /assets/ by the campaigns function).
SHOP_STATIC = HERE.parent / "demo" / "shop" / "static"
STATIC_FILES = {
    "pickers.js": (STATIC / "pickers.js", "text/javascript; charset=utf-8"),
    "preview.js": (STATIC / "preview.js", "text/javascript; charset=utf-8"),
    "widget.js": (SHOP_STATIC / "widget.js", "text/javascript; charset=utf-8"),
    "shop.css": (SHOP_STATIC / "shop.css", "text/css; charset=utf-8"),
}

_TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{background:#1d3557;color:#fff;padding:.6em 1.2em;display:flex;gap:1em;align-items:center}
header a{color:#fff} header nav{display:flex;gap:1em} header .who{margin-left:auto;font-size:.9em}
header a[aria-current=page]{font-weight:700;text-decoration:underline}
header nav{background:none;padding:0;flex-wrap:nowrap}
main{display:block;padding:1em 1.5em;max-width:1400px}
table{border-collapse:collapse;width:100%;background:#fff}
caption{text-align:left;padding:.3em 0;font-weight:600}
th,td{border-bottom:1px solid #dde;padding:.35em .5em;text-align:left;font-size:.92em;
vertical-align:top}
th a{color:#1d2433} td.num{text-align:right} .nowrap{white-space:nowrap}
.status{padding:.1em .5em;border-radius:.8em;background:#e0e6ef}
.status.active{background:#c9f2d4} .status.paused{background:#ffe8b3}
.status.archived{background:#ddd;color:#555}
form.inline{display:inline} button{cursor:pointer}
fieldset{background:#fff;border:1px solid #ccd;margin-bottom:1em}
label{display:block;margin:.4em 0 .1em;font-weight:600;font-size:.9em}
input,select,textarea{width:100%;max-width:42em;padding:.3em;box-sizing:border-box}
input[type=checkbox]{width:auto}
.errors{background:#fde2e1;border:1px solid #e5a3a0;padding:.5em 1em;margin-bottom:1em}
.notice{background:#e7f0fb;border:1px solid #a9c4e6;padding:.5em 1em;margin-bottom:1em}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(12em,1fr));gap:.6em}
.figure{background:#fff;border:1px solid #dde;padding:.6em}
.figure b{display:block;font-size:1.3em}
.na{color:#8a4b00} .chart{background:#fff;border:1px solid #dde;margin:.6em 0;padding:.4em}
.muted{color:#5a6272} .good{color:#176639;font-weight:600} .bad{color:#b3261e;font-weight:600}
.filters{display:flex;flex-wrap:wrap;gap:.6em;align-items:flex-end;background:#fff;
border:1px solid #dde;padding:.6em;margin-bottom:.6em}
.filters div{min-width:9em} .filters .go{min-width:auto}
.bulk{margin:.4em 0} .bulk select{width:auto} .inline-label{display:inline;margin-right:.4em}
.pace{font-size:.8em;padding:0 .4em;border-radius:.6em;background:#e0e6ef}
.pace.too_fast,.pace.exhausted{background:#fde2e1;color:#8c1d18} .pace.on_track{background:#d9f2e1}
meter{width:6em;display:block}
.pages{display:flex;gap:1em;margin:.8em 0}
.severity{padding:.1em .5em;border-radius:.6em} .severity.high{background:#fde2e1;color:#8c1d18}
.severity.medium{background:#ffe8b3;color:#5c3d00} .severity.low{background:#e0e6ef}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.previews{display:grid;grid-template-columns:repeat(auto-fill,minmax(20em,1fr));gap:1em}
.preview{background:#fff;border:1px solid #dde;padding:.6em} .preview h2{font-size:1em}
.picker{border:1px dashed #aab;padding:.4em;margin:.3em 0 .6em;max-width:42em;background:#fbfcfe}
.picker ul{list-style:none;padding:0;margin:.3em 0;max-height:14em;overflow:auto}
.picker li button{width:100%;text-align:left;background:#fff;border:1px solid #dde;margin:1px 0}
"""


def render(template: str, **context: Any) -> str:
    return _TEMPLATES.get_template(template).render(style=_STYLE, **context)


def _layout(
    title: str,
    body: str,
    account: CsmAccount | None = None,
    section: str = "campaigns",
    scripts: Sequence[str] = (),
) -> str:
    """A page built by hand (its ``body`` already escaped) in the common layout."""
    return render(
        "base.html",
        title=title,
        body=Markup(body),  # noqa: S704 (escaped piece by piece above)
        account=account,
        section=section,
        scripts=list(scripts),
    )


_POST_FORM = re.compile(r"<form\b[^>]*\bmethod=(\"?)post\1[^>]*>", re.IGNORECASE)


def protect_forms(page: str, name: str, token: str) -> str:
    """The page with a hidden ``name=token`` field first in every POST form (the CSRF
    synchronizer token: checked on every POST of a session)."""
    hidden = f'<input type="hidden" name="{escape(name)}" value="{escape(token)}">'
    return _POST_FORM.sub(lambda m: m.group(0) + hidden, page)


def login_page(error: str | None = None) -> str:
    message = f'<div class="errors" role="alert">{escape(error)}</div>' if error else ""
    body = (
        f"{message}<form method=post action=/login><label for=key>Access key</label>"
        "<input id=key name=key type=password autocomplete=off required>"
        "<p><button type=submit id=login>Log in</button></p></form>"
    )
    return _layout("Log in", body)


def message_page(title: str, message: str, account: CsmAccount | None = None) -> str:
    return _layout(title, f"<p>{escape(message)}</p><p><a href=/campaigns>Back</a></p>", account)


def _status(status: str) -> str:
    return f'<span class="status {escape(status)}">{escape(status)}</span>'


def _actions(campaign: Campaign) -> str:
    allowed = {
        "draft": ("activate", "archive"),
        "active": ("pause", "archive"),
        "paused": ("activate", "archive"),
        "archived": (),
    }[campaign.status]
    cid = quote(campaign.campaign_id)
    return "".join(
        f'<form class="inline" method="post" action="/campaigns/{cid}/{a}">'
        f'<button type="submit" name="do" value="{a}">{a.capitalize()}</button></form> '
        for a in allowed
    )


def _value_of(campaign: Campaign | None, name: str) -> str:
    if campaign is None:
        return ""
    if name.startswith("creative_"):
        creative = campaign.creative
        if creative is None:
            return ""
        value = getattr(creative, name.removeprefix("creative_"))
    else:
        value = getattr(campaign, name)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else ""
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M")
    return str(value)


_EXPERIENCES = (
    "personalized_promotion",
    "gamified_promotion",
    "product_recommendation",
    "tension_cart",
)


def form_page(
    account: CsmAccount,
    campaign: Campaign | None,
    submitted: Mapping[str, str] | None,
    errors: Sequence[AdminError],
    audit: Sequence[AuditRecord] = (),
    title: str | None = None,
) -> str:
    """The campaign's form: a new one (``campaign`` None; ``submitted`` may prefill it, as a
    duplicate does), or an existing one with its status actions and audit."""

    def value(name: str) -> str:
        if submitted is not None and name in submitted:
            return escape(submitted[name])
        return escape(_value_of(campaign, name))

    def field(name: str, label: str, kind: str = "text", hint: str = "", **attrs: str) -> str:
        extra = "".join(f' {k}="{escape(v)}"' for k, v in attrs.items())
        note = f" <small>{escape(hint)}</small>" if hint else ""
        return (
            f'<label for="{name}">{escape(label)}{note}</label>'
            f'<input id="{name}" name="{name}" type="{kind}" value="{value(name)}"{extra}>'
        )

    chosen = value("experience_type") or "personalized_promotion"
    options = "".join(
        f'<option value="{e}"{" selected" if e == chosen else ""}>{e.replace("_", " ")}</option>'
        for e in _EXPERIENCES
    )
    problems = ""
    if errors:
        items = []
        for error in errors:
            fields = error.details.get("fields") or []
            if fields:
                items += [
                    f"<li><b>{escape(f['field'])}</b>: {escape(f['reason'])}</li>" for f in fields
                ]
            else:
                items.append(f"<li>{escape(error.message)}</li>")
        problems = f'<div class="errors" role="alert" id="errors"><ul>{"".join(items)}</ul></div>'
    creating = campaign is None
    readonly = not account.can_write or (campaign is not None and campaign.status == "archived")
    if campaign is None:
        action = "/campaigns/new"
        title = title or "New campaign"
        actions = ""
        hint = (
            "optional; blank: one is generated"
            if account.retailer_ids is None
            else "optional; random digits are added to make it unique"
        )
        identity = field("campaign_id", "Campaign id", hint=hint, pattern="[A-Za-z0-9._:-]*")
    else:
        action = f"/campaigns/{quote(campaign.campaign_id)}"
        title = title or f"Campaign {campaign.name}"
        cid = quote(campaign.campaign_id)
        identity = (
            f"<p>Id <b>{escape(campaign.campaign_id)}</b> {_status(campaign.status)} "
            f'<a href="/campaigns/{cid}/report">Report</a> · '
            f'<a href="/campaigns/{cid}/preview" id="preview-link">Preview</a>'
            + (
                f' · <a href="/campaigns/{cid}/duplicate" id="duplicate-link">Duplicate</a>'
                if account.can_write
                else ""
            )
            + "</p>"
        )
        actions = f'<p id="status-actions">{_actions(campaign)}</p>' if account.can_write else ""
    body = (
        f'{problems}{actions}<form method=post action="{action}" id=campaign-form>'
        f"<fieldset><legend>Campaign</legend>{identity}"
        + field("name", "Name", required="required")
        + field("brand", "Brand (who runs it)")
        + field("retailer_ids", "Retailers", hint="comma-separated ids", required="required")
        + f'<label for="experience_type">Experience</label>'
        f'<select id="experience_type" name="experience_type">{options}</select>'
        + field("starts_at", "Starts (UTC)", "datetime-local", required="required")
        + field("ends_at", "Ends (UTC)", "datetime-local", required="required")
        + "</fieldset><fieldset><legend>Targeting</legend>"
        + field(
            "targeted_product_ids",
            "Product ids",
            hint="comma-separated; or search the catalogue below",
            **{"data-picker": "products"},
        )
        + field(
            "targeted_brands",
            "Brands",
            hint="comma-separated; or search the catalogue below",
            **{"data-picker": "brands"},
        )
        + field(
            "targeted_categories",
            "Categories",
            hint="comma-separated; or search the catalogue below",
            **{"data-picker": "categories"},
        )
        + '<label><input type="checkbox" name="allow_unseen_targets" id="allow_unseen_targets"'
        + (" checked" if value("allow_unseen_targets") == "on" else "")
        + "> A launch: accept targets not seen at these retailers yet</label>"
        + "</fieldset><fieldset><legend>Rules and budget</legend>"
        + field("generosity_min_pct", "Generosity at least (%)", "number", step="0.1")
        + field("generosity_pct", "Generosity at most (%)", "number", step="0.1")
        + field(
            "threshold",
            "Threshold: spend on the targeted products that unlocks it",
            "number",
            step="0.01",
        )
        + field("reward", "Reward (tension cart)")
        + field("budget", "Budget", "number", step="0.01")
        + field("win_probability", "Win probability (gamified)", "number", step="0.001")
        + field("prize_value", "Prize value (gamified)", "number", step="0.01")
        + field("control_share", "Control-group share", "number", hint="0 to 0.99", step="0.01")
        + field(
            "explore_share",
            "Exploration share (promotion levels drawn at random, to learn)",
            "number",
            hint="0 to 0.5",
            step="0.01",
        )
        + field("max_per_session", "Shows per session at most", "number", step="1")
        + "</fieldset><fieldset><legend>Creative</legend>"
        + field("creative_title", "Title")
        + field("creative_text", "Text")
        + field("creative_image_url", "Image URL", "url")
        + "</fieldset>"
        + (
            "<label><input type=checkbox name=activate id=activate> Activate now</label>"
            if creating
            else ""
        )
        + (
            ""
            if readonly
            else f"<p><button type=submit id=save>{'Create' if creating else 'Save'}</button></p>"
        )
        + "</form>"
    )
    if audit:
        rows = "".join(
            f"<tr><td>{r.at:%Y-%m-%d %H:%M:%S}</td><td>{escape(r.csm_id)}</td>"
            f"<td>{escape(r.action)}</td><td>{escape(', '.join(sorted(r.changes)))}</td></tr>"
            for r in audit
        )
        body += (
            "<h2>Audit</h2><table id=audit><thead><tr><th>When (UTC)</th><th>Who</th>"
            f"<th>What</th><th>Fields</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    scripts = ("/assets/pickers.js",) if not readonly else ()
    return _layout(title, body, account, scripts=scripts)


# --- charts ----------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def uplift_chart(report: Mapping[str, Any]) -> str:
    """Exposed vs held-out means, with the difference's 95% interval, per metric."""
    width, bar = 760, 26
    parts = []
    y = 10
    for name, metric in report["uplift"].items():
        label = name.replace("_", " ")
        e, h = metric["exposed"]["mean"], metric["held_out"]["mean"]
        top = max(v for v in (e, h, 1e-9) if v is not None)
        parts.append(f'<text x="0" y="{y + 12}" font-size="13" font-weight="600">{label}</text>')
        y += 18
        for side, mean, color in (("exposed", e, "#2a9d8f"), ("held out", h, "#adb5bd")):
            length = 0 if mean is None else 300 * mean / top
            parts.append(
                f'<text x="0" y="{y + 17}" font-size="12">{side}</text>'
                f'<rect x="80" y="{y}" width="{length:.1f}" height="{bar - 4}" fill="{color}"/>'
                f'<text x="{85 + length:.1f}" y="{y + 17}" font-size="12">{_fmt(mean)}</text>'
            )
            y += bar
        if metric["computable"]:
            low, high = metric["ci95"]
            note = f"difference {_fmt(metric['difference'])} (95% CI {_fmt(low)} to {_fmt(high)})"
        else:
            note = f"uplift not computable: {metric['reason']}"
        parts.append(f'<text x="80" y="{y + 12}" font-size="12" fill="#555">{escape(note)}</text>')
        y += 28
    return (
        f'<svg class="chart" id="uplift-chart" role="img" aria-label="uplift" width="{width}" '
        f'height="{y}" viewBox="0 0 {width} {y}">{"".join(parts)}</svg>'
    )


def line_chart(
    chart_id: str, title: str, points: Sequence[tuple[str, float]], limit: float | None = None
) -> str:
    """A small line chart over days (x) with an optional horizontal limit line."""
    width, height, left, bottom = 640, 220, 60, 30
    plot_w, plot_h = width - left - 10, height - bottom - 20
    if not points or (not any(v for _, v in points) and not limit):
        return (
            f'<svg class="chart" id="{chart_id}" width="{width}" height="40"><text x="10" '
            f'y="25" font-size="13">{escape(title)}: no data</text></svg>'
        )
    top = max([p[1] for p in points] + ([limit] if limit else []) + [1e-9])
    step = plot_w / max(len(points) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i * step, 20 + plot_h * (1 - v / top)

    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, (_, v) in enumerate(points)))
    parts = [
        f'<text x="{left}" y="14" font-size="13" font-weight="600">{escape(title)}</text>',
        f'<line x1="{left}" y1="{20 + plot_h}" x2="{left + plot_w}" y2="{20 + plot_h}" '
        'stroke="#999"/>',
        f'<text x="4" y="24" font-size="11">{_fmt(top)}</text>',
        f'<text x="4" y="{20 + plot_h}" font-size="11">0</text>',
        f'<polyline fill="none" stroke="#1d3557" stroke-width="2" points="{path}"/>',
        f'<text x="{left}" y="{height - 8}" font-size="11">{escape(points[0][0])}</text>',
        f'<text x="{left + plot_w - 70}" y="{height - 8}" font-size="11">'
        f"{escape(points[-1][0])}</text>",
    ]
    if limit:
        _, y = xy(0, limit)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e63946" '
            f'stroke-dasharray="4 3"/><text x="{left + plot_w - 110}" y="{y + 14:.1f}" '
            f'font-size="11" fill="#e63946">budget {_fmt(limit)}</text>'
        )
    return (
        f'<svg class="chart" id="{chart_id}" role="img" aria-label="{escape(title)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>'
    )


def report_page(account: CsmAccount, report: Mapping[str, Any]) -> str:
    c, e, s, p, t = (
        report["campaign"],
        report["exposure"],
        report["shoppers"],
        report["participation"],
        report["targeted_sales"],
    )
    figures = [
        ("Impressions", e["impressions"]),
        ("Clicks", e["clicks"]),
        ("Click-through rate", e["click_through_rate"]),
        ("Eligible shoppers", s["eligible"]),
        ("Exposed shoppers", s["exposed"]),
        ("Held-out shoppers", s["held_out"]),
        ("Plays", p["plays"]),
        ("Participation rate", p["participation_rate"]),
        ("Wins (net of voided)", p["wins"]),
        ("Cost", p["cost"]),
        ("Budget", c["budget"]),
        ("Targeted sales", t["amount"]),
        ("Targeted items sold", t["quantity"]),
        ("Targeted buyers", t["buyers"]),
    ]
    journey = report.get("journey")
    if journey:
        figures += [
            ("CJ shoppers reached", journey["reached_shoppers"]),
            ("CJ coupon redemptions", journey["redemptions"]),
            ("CJ redeeming shoppers", journey["redeeming_shoppers"]),
            ("CJ coupon products sales", journey["coupon_products_sales"]["amount"]),
            (
                "of which to reached shoppers",
                journey["coupon_products_sales"]["amount_by_reached_shoppers"],
            ),
        ]
    cards = "".join(
        f'<div class="figure">{escape(label)}<b>{escape(_fmt(value, 4 if "rate" in label else 2))}'
        "</b></div>"
        for label, value in figures
    )
    missing = "".join(f"<li>{escape(item)}</li>" for item in report["not_available"])
    daily = report["daily"]
    body = (
        f"<p>{escape(c['experience_type'])} on {escape(', '.join(c['retailer_ids']))}, "
        f"{escape(report['period']['from'][:10])} to {escape(report['period']['to'][:10])}; "
        f'{_status(c["status"])} <a href="/campaigns/{quote(c["campaign_id"])}">Edit</a></p>'
        f'<div class="figures" id="figures">{cards}</div>'
        + (
            f'<h2>Not available</h2><ul class="na" id="not-available">{missing}</ul>'
            if missing
            else ""
        )
        + "<h2>Uplift: exposed vs held out</h2>"
        + uplift_chart(report)
        + "<h2>Daily sales of the targeted products</h2>"
        + line_chart(
            "sales-chart",
            "targeted sales per day",
            [(d["day"], d["targeted_sales"]) for d in daily],
        )
        + "<h2>Budget consumed</h2>"
        + line_chart(
            "budget-chart",
            "cumulative cost of wins",
            [(d["day"], d["cost_cumulative"]) for d in daily],
            c["budget"],
        )
        + f"<p><small>Computed {escape(report['computed_at'])} from the cold read models. "
        f'JSON: <a href="/v1/campaigns/{quote(c["campaign_id"])}/report">API</a> '
        "(needs the key as a bearer token).</small></p>"
    )
    return _layout(f"Report: {c['name']}", body, account)


# --- the portfolio, the list, the preview ---------------------------------------------

_LIST_COLUMNS = (
    ("name", "Campaign"),
    ("status", "Status"),
    ("", "Brand"),
    ("", "Retailers"),
    ("", "Experience"),
    ("starts_at", "Period"),
    ("pacing", "Budget spent / pacing"),
    ("exposed", "Shown"),
    ("held_out", "Held out"),
    ("uplift", "Uplift, targeted sales / shopper [95% CI]"),
    ("", ""),
)
_STATUSES = (
    ("", "all"),
    ("live", "live now"),
    ("active", "active"),
    ("paused", "paused"),
    ("draft", "draft"),
    ("archived", "archived"),
)


def _as_of(moment: datetime | None) -> str | None:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else None


def list_page(
    account: CsmAccount,
    query: ListQuery,
    page: ListPage,
    stats_as_of: datetime | None,
    notices: Sequence[str] = (),
) -> str:
    return render(
        "list.html",
        title="Campaigns",
        section="campaigns",
        account=account,
        query=query,
        page=page,
        columns=_LIST_COLUMNS,
        statuses=_STATUSES,
        experiences=_EXPERIENCES,
        per_page_choices=PER_PAGE,
        stats_as_of=_as_of(stats_as_of),
        notices=list(notices),
    )


def portfolio_page(
    account: CsmAccount,
    campaigns: Sequence[Campaign],
    alerts: Sequence[Alert],
    stats_as_of: datetime | None,
    spent: float,
    budget: float,
    now: datetime,
) -> str:
    live = [c for c in campaigns if c.status == "active" and c.runs_at(now)]
    counts = {s: sum(1 for c in campaigns if c.status == s) for s in ("active", "paused", "draft")}
    figures = [
        ("Live now", f"{len(live):,}", "/campaigns?status=live"),
        ("Active", f"{counts['active']:,}", "/campaigns?status=active"),
        ("Paused", f"{counts['paused']:,}", "/campaigns?status=paused"),
        ("Drafts", f"{counts['draft']:,}", "/campaigns?status=draft"),
        ("Alerts", f"{len(alerts):,}", None),
        ("Spent of live budgets", f"{spent:,.2f} / {budget:,.2f}", None),
    ]
    return render(
        "portfolio.html",
        title="Portfolio",
        section="portfolio",
        account=account,
        figures=figures,
        alerts=list(alerts),
        ending=sorted(live, key=lambda c: c.ends_at)[:10],
        stats_as_of=_as_of(stats_as_of),
    )


def preview_page(
    account: CsmAccount, campaign: Campaign, samples: Sequence[Mapping[str, Any]]
) -> str:
    """The campaign as shoppers see it: ``samples`` (label, experience) rendered in the
    browser by the demo shop's widget. The JSON goes in a data block (never executed);
    ``<`` is written ``\\u003c`` so that no text in it can close the block."""
    data = json.dumps([dict(s) for s in samples]).replace("<", "\\u003c")
    return render(
        "preview.html",
        title=f"Preview: {campaign.name}",
        section="campaigns",
        account=account,
        campaign=campaign,
        samples=list(samples),
        samples_json=Markup(data),  # noqa: S704 (JSON with every < escaped)
    )


# The form's fields: the editable ones, the creative as its three inputs.
FORM_FIELDS = (
    *(name for name in EDITABLE if name != "creative"),
    "creative_title",
    "creative_text",
    "creative_image_url",
)


def duplicate_values(campaign: Campaign) -> dict[str, str]:
    """The new-campaign form filled with this campaign's fields: a new id (blank: one is
    generated), a draft (the form's "Activate now" unticked), the retailers to choose."""
    values = {name: _value_of(campaign, name) for name in FORM_FIELDS}
    values["campaign_id"] = ""
    values["name"] = f"{campaign.name} (copy)"[:200]
    return values


def bulk_page(
    account: CsmAccount,
    action: str,
    done: Sequence[str],
    refused: Sequence[tuple[str, str]],
    back: str,
) -> str:
    """What a bulk action changed (each change audited) and what it could not."""
    done_items = "".join(f'<li><a href="/campaigns/{quote(c)}">{escape(c)}</a></li>' for c in done)
    refused_items = "".join(
        f'<li><a href="/campaigns/{quote(c)}">{escape(c)}</a>: {escape(reason)}</li>'
        for c, reason in refused
    )
    verb = {"pause": "Paused", "archive": "Archived"}.get(action, action)
    body = (
        f'<p role="status" id="bulk-result">{escape(verb)} {len(done)} campaign(s)'
        + (f"; {len(refused)} refused" if refused else "")
        + ". Each change is in its campaign's audit.</p>"
        + (f'<ul id="bulk-done">{done_items}</ul>' if done else "")
        + (
            f'<h2>Refused</h2><ul class="errors" id="bulk-refused">{refused_items}</ul>'
            if refused
            else ""
        )
        + f'<p><a href="{escape(back)}" id="back-to-list">Back to the list</a></p>'
    )
    return _layout(f"Bulk {action}", body, account)
