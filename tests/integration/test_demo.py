"""`make demo`'s story runs end to end and every store holds what it should."""

from __future__ import annotations

import pytest

from shared.demo import commands as demo_commands

pytestmark = pytest.mark.integration


@pytest.mark.heavy
def test_the_demo_finds_its_events_in_every_store(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo_commands.session_demo() == 0
    out = capsys.readouterr().out
    assert "accepted 8, duplicates 0, rejected 1" in out
    assert "accepted 0, duplicates 8" in out
    assert "payload.email: personal_data_refused" in out
    assert "10 rows for the shopper (10 expected)" in out
