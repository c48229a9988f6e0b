"""The demo's replay window: the whole-week shift that puts the replayed baskets in the
freezers' late window before now, whatever the weekday the demo runs on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.demo.story import late_window_shift

# A replayed week: a basket paid every 12 hours from Monday 13:00 to Sunday 13:00.
WEEK = [datetime(2018, 1, 1, 13) + timedelta(hours=12 * n) for n in range(13)]
LATE = timedelta(days=3) - timedelta(hours=2)


def test_early_on_a_monday_the_story_s_own_week_holds_the_window() -> None:
    now = datetime(2018, 1, 8, 5, tzinfo=UTC)  # Monday 05:00, a week later
    # One more week puts every basket after now (Monday 13:00 onwards): none replayed.
    # Without it, Friday 13:00 to Sunday 13:00 fall in [Friday 07:00, Monday 05:00].
    assert late_window_shift(0, WEEK, now - LATE, now) == 0


def test_on_a_thursday_one_more_week_holds_the_window() -> None:
    now = datetime(2018, 1, 11, 5, tzinfo=UTC)  # Thursday 05:00
    # One more week: Monday 13:00 to Wednesday 13:00 of this week fall in the window
    # [Monday 07:00, Thursday 05:00]; the story's own week is all before it.
    assert late_window_shift(0, WEEK, now - LATE, now) == 1


def test_when_shifts_tie_one_more_week_is_kept() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)  # far from every basket: no shift helps
    assert late_window_shift(5, WEEK, now - LATE, now) == 6
