"""The command-line options of the Complete Journey commands (replay, backfill,
import-campaigns, and the demo): weeks, household samples, seed and time shift."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any


def weeks(text: str) -> tuple[int, int]:
    """``--weeks 1-44``: a week range of the data set."""
    from shared.journey.dataset import parse_weeks

    try:
        return parse_weeks(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def household_sample(text: str) -> int | None:
    """``--households N``: a seeded sample of N households; 0 means all of them (``None``,
    as ``sample_households`` takes it); a negative number is refused."""
    try:
        size = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from exc
    if size < 0:
        raise argparse.ArgumentTypeError(
            f"{size}: a number of households is 0 (all households) or more"
        )
    return size or None


def journey_options(parser: argparse.ArgumentParser) -> None:
    """The options replay and backfill share."""
    from shared.journey.tracker_simulator import DEFAULT_SEED

    parser.add_argument("--weeks", type=weeks, required=True, help="e.g. 1-2 (of 1-53)")
    parser.add_argument(
        "--households",
        type=household_sample,
        help="a seeded sample of this many households (default and 0: all)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--shift-weeks",
        type=int,
        help="weeks added to the data set's 2017 times (default: the most that keep them past)",
    )


def simulation(args: argparse.Namespace) -> Any:
    """The tracker simulation of ``--seed`` and ``--shift-weeks`` (default: the most whole
    weeks that keep the data set in the past)."""
    from shared.journey.tracker_simulator import Simulation, default_shift_weeks

    shift = args.shift_weeks
    if shift is None:
        shift = default_shift_weeks(datetime.now(UTC))
    return Simulation(seed=args.seed, shift_weeks=shift)
