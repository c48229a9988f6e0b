"""Accessibility scans in the browser tests: axe-core (npm, pinned in
tests/browser/package-lock.json; ``make setup`` installs it) injected into the page that a
Selenium ``WebDriver`` has open, and run there.

WebDriver's script injection is not subject to the page's Content-Security-Policy, so the
scan runs on pages that forbid every script of their own, as the back office's do
(``default-src 'none'``): tests/integration/test_accessibility_tooling.py checks it.

    found = violations(driver)
    assert not found, describe(found, driver.current_url)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from emulators.config import ROOT

AXE_PACKAGE = ROOT / "tests" / "browser" / "node_modules" / "axe-core"
AXE_SCRIPT = AXE_PACKAGE / "axe.min.js"

# axe-core's impact levels, least to most severe.
IMPACTS = ("minor", "moderate", "serious", "critical")

HTML_CHARS = 240  # a failing node's outer HTML is cut to this (axe gives its opening tag)
NODES_PER_RULE = 10  # failing nodes kept per rule; ``nodes_total`` tells how many failed

# Runs axe on the document, once injected, and hands back only what a report needs (a
# whole axe result is far bigger). The last argument is WebDriver's callback.
_RUN = """
const options = arguments[0], htmlChars = arguments[1], nodesPerRule = arguments[2];
const done = arguments[arguments.length - 1];
if (typeof window.axe === "undefined") {
  done({error: "axe-core is not in the page (its injection failed)"});
  return;
}
window.axe
  .run(document, Object.assign({resultTypes: ["violations"]}, options))
  .then((results) => done({
    version: window.axe.version,
    violations: results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      tags: v.tags,
      nodes_total: v.nodes.length,
      nodes: v.nodes.slice(0, nodesPerRule).map((n) => ({
        target: n.target,
        html: n.html.length > htmlChars ? n.html.slice(0, htmlChars) + "…" : n.html,
        impact: n.impact,
        summary: n.failureSummary,
      })),
    })),
  }))
  .catch((error) => done({error: String(error && error.stack ? error.stack : error)}));
"""


class AxeMissingError(RuntimeError):
    """axe-core is not installed under tests/browser/node_modules/."""


class AxeFailedError(RuntimeError):
    """axe-core could not be injected into the page, or its run failed there."""


@cache
def axe_source() -> str:
    """The text of axe.min.js, read once per session."""
    if not AXE_SCRIPT.is_file():
        raise AxeMissingError(
            f"axe-core is not installed ({AXE_SCRIPT} is missing): run `make setup` "
            "(npm ci in tests/browser/)"
        )
    return AXE_SCRIPT.read_text(encoding="utf-8")


def violations(
    driver: Any,
    *,
    impacts: Iterable[str] = ("serious", "critical"),
    options: Mapping[str, Any] | None = None,
    timeout_s: float = 60,
) -> list[dict[str, Any]]:
    """The accessibility violations that axe-core finds on the page ``driver`` has open, at
    the given impact levels (of ``IMPACTS``), most severe first.

    Each is ``{"id", "impact", "help", "helpUrl", "tags", "nodes_total", "nodes"}``, and each
    of its ``nodes`` (at most ``NODES_PER_RULE``) ``{"target", "html", "impact", "summary"}``:
    ``target`` is axe's CSS selector path, ``html`` the element's opening HTML, cut to
    ``HTML_CHARS``. ``options`` go to ``axe.run`` as they are (``{"rules": {"color-contrast":
    {"enabled": False}}}``, ``{"runOnly": ["wcag2a", "wcag2aa"]}``); axe's default runs every
    rule, best practices included.

    Raises ``AxeMissingError`` when axe-core is not installed, ``AxeFailedError`` when it
    cannot run in the page."""
    wanted = tuple(impacts)
    unknown = sorted(set(wanted) - set(IMPACTS))
    if unknown:
        raise ValueError(f"unknown impact levels {unknown}: axe's are {list(IMPACTS)}")
    source = axe_source()
    # A page keeps the axe it was given until it navigates: inject once per document.
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(source)
    previous = driver.timeouts.script
    driver.set_script_timeout(timeout_s)
    try:
        answer = driver.execute_async_script(_RUN, dict(options or {}), HTML_CHARS, NODES_PER_RULE)
    finally:
        driver.set_script_timeout(previous)
    if not isinstance(answer, dict) or "error" in answer:
        problem = answer.get("error") if isinstance(answer, dict) else repr(answer)
        raise AxeFailedError(f"axe-core could not scan {driver.current_url}: {problem}")
    found = [v for v in answer["violations"] if v["impact"] in wanted]
    found.sort(key=lambda v: (-IMPACTS.index(v["impact"]), v["id"]))
    return found


def describe(found: Sequence[Mapping[str, Any]], url: str | None = None) -> str:
    """``found`` (from ``violations``) as lines a person reads in an assertion message."""
    where = f" on {url}" if url else ""
    if not found:
        return f"no accessibility violation{where}"
    lines = [f"{len(found)} accessibility rule(s) violated{where}:"]
    for v in found:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"]:
            lines.append(f"    {_target(node['target'])}: {node['html']}")
        hidden = v["nodes_total"] - len(v["nodes"])
        if hidden > 0:
            lines.append(f"    ... and {hidden} more element(s)")
    return "\n".join(lines)


def _target(target: Any) -> str:
    """axe's target: a selector, or a list of them (one per frame or shadow root)."""
    if isinstance(target, list):
        return " >> ".join(_target(part) for part in target)
    return str(target)
