"""The ``cartwise`` parser: every command registered by its capability, and one meaning of
``--households`` (a seeded sample; 0: all households; a negative number refused)."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

from shared import cli
from shared.journey import dataset

SHARED = Path(__file__).resolve().parents[2] / "shared"
COMMANDS = {
    "demo",
    "session",
    "republish",
    "redrive-dead-letters",
    "migrate-row-ids",
    "replay",
    "backfill",
    "import-campaigns",
    "compile-trees",
    "nightly",
    "report",
    "csm-key",
    "retention",
    "index-event-hours",
    "api-key",
    "credentials",
    "identity-secret",
}
SAMPLED = {
    "backfill": ["backfill", "--weeks", "1-40"],
    "replay": ["replay", "--weeks", "1-40"],
    "demo": ["demo"],
}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_registered_and_runs_something() -> None:
    subcommands = _subcommands(cli.parser())
    assert set(subcommands) == COMMANDS
    for name, parser in subcommands.items():
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for child in (
            (p for action in nested for p in action.choices.values()) if nested else [parser]
        ):
            assert callable(child.get_default("run")), name


@pytest.mark.parametrize("command", sorted(SAMPLED))
def test_zero_households_means_all_of_them(command: str) -> None:
    args = cli.parser().parse_args([*SAMPLED[command], "--households", "0"])
    assert args.households is None  # all households, as sample_households takes it
    assert dataset.sample_households((1, 40), args.households, 8451) is None


def test_the_demo_history_sample_also_takes_zero_for_all() -> None:
    args = cli.parser().parse_args(["demo", "--history-households", "0"])
    assert args.history_households is None
    defaults = cli.parser().parse_args(["demo"])
    assert (defaults.households, defaults.history_households) == (300, 1_200)


@pytest.mark.parametrize("command", sorted(SAMPLED))
def test_a_positive_sample_is_kept(command: str) -> None:
    assert cli.parser().parse_args([*SAMPLED[command], "--households", "12"]).households == 12


@pytest.mark.parametrize(
    ("command", "flag"),
    [*((c, "--households") for c in sorted(SAMPLED)), ("demo", "--history-households")],
)
def test_a_negative_sample_is_refused(
    command: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*SAMPLED[command], flag, "-3"])
    assert exit_.value.code == 2
    assert f"argument {flag}: -3: a number of households is 0 (all households) or more" in (
        capsys.readouterr().err
    )


def test_the_sample_function_agrees() -> None:
    assert dataset.sample_households((1, 2), 0, 1) is None
    with pytest.raises(ValueError, match="0 \\(all\\) or more"):
        dataset.sample_households((1, 2), -1, 1)


@pytest.mark.parametrize("command", sorted(SAMPLED))
def test_the_help_says_what_zero_means(command: str) -> None:
    flag = _subcommands(cli.parser())[command]._option_string_actions["--households"]
    assert flag.help is not None and "0: all" in flag.help


def test_nothing_in_the_product_imports_the_entry_module() -> None:
    importers = []
    for path in sorted(SHARED.rglob("*.py")):
        if path == SHARED / "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            if "shared.cli" in names:
                importers.append(str(path.relative_to(SHARED)))
    assert importers == []
