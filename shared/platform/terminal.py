"""What the ``cartwise`` commands share on a terminal: the local stack's environment, the
project to work on, a progress bar, aligned tables and ISO times on the command line."""

from __future__ import annotations

import json
import os
import sys
import warnings
from datetime import UTC, datetime
from typing import Any


def stack_env() -> dict[str, str]:
    """The local stack's ``.local/stack.env``; exits when the stack is not running."""
    from emulators.config import StackSettings

    path = StackSettings().env_file
    if not path.exists():
        sys.exit("the local stack is not running: `make up` first (or `make demo`)")
    env = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    if not env.get("GOOGLE_CLOUD_PROJECT", "").startswith("demo-"):
        sys.exit("refusing to run the demo outside a demo- project")
    return env


def use_stack_env() -> dict[str, str]:
    """The local stack's environment, also set in this process's (the clients read it)."""
    env = stack_env()
    os.environ.update(env)
    warnings.filterwarnings("ignore", "Connecting to Bigtable emulator", RuntimeWarning)
    return env


def environment() -> str:
    """The project to work on: the local stack's when it runs, else GOOGLE_CLOUD_PROJECT."""
    from emulators.config import StackSettings

    if StackSettings().env_file.exists():
        os.environ.update(stack_env())
    warnings.filterwarnings("ignore", "Connecting to Bigtable emulator", RuntimeWarning)
    project = os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        sys.exit("set GOOGLE_CLOUD_PROJECT, or start the local stack (`make up`)")
    return project


def bar(done: int, total: int, width: int = 24) -> str:
    """A progress bar: ``[#####...] done/total``."""
    filled = width * done // max(total, 1)
    return "[" + "#" * filled + "." * (width - filled) + f"] {done:,}/{total:,}"


def format_table(rows: Any) -> str:
    """The evaluation table: a list of row maps as aligned columns; text as it is."""
    if isinstance(rows, str):
        return rows
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return json.dumps(rows, indent=1, default=str)
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return "" if value is None else str(value)

    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def moment(text: str) -> datetime:
    """An ISO time from the command line; UTC when it names no zone."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
