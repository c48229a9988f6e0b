"""The local stack's component commands carry their settings (no process started)."""

from __future__ import annotations

from emulators.config import StackSettings
from emulators.stack import components


def _bigquery_command(settings: StackSettings) -> list[str]:
    (bigquery,) = [c for c in components(settings) if c.name == "bigquery"]
    return list(bigquery.command)


def test_bigquery_runs_with_the_memory_limit_the_stack_is_given() -> None:
    default = _bigquery_command(StackSettings())
    larger = _bigquery_command(StackSettings(bigquery_memory_limit="14GiB"))
    assert default[default.index("--memory-limit") + 1] == "8GiB"
    assert larger[larger.index("--memory-limit") + 1] == "14GiB"
