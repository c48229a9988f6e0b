"""One ``up`` or ``down`` at a time per checkout: a second one waits for the first."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from emulators.config import StackSettings
from emulators.stack import exclusive


def test_a_second_up_or_down_waits_for_the_first(tmp_path: Path) -> None:
    settings = StackSettings(local_dir=tmp_path / "local")
    held, released = threading.Event(), threading.Event()

    def first() -> None:
        with exclusive(settings):
            held.set()
            time.sleep(0.4)
            released.set()  # the last thing done while holding the lock (set after it, a
            # loaded machine could let the second in before the flag: a flaky test)

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(5)
    started = time.monotonic()
    with exclusive(settings):
        waited = time.monotonic() - started
        assert released.is_set()  # entered only once the first had left
    thread.join()
    assert waited >= 0.3, waited
