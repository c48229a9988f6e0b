from __future__ import annotations

import socket
import sys
from pathlib import Path

from emulators import processes


def test_port_checks_see_a_listening_socket() -> None:
    port = processes.free_port()
    assert processes.port_is_free("127.0.0.1", port)
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert not processes.port_is_free("127.0.0.1", port)
        assert processes.port_is_open("127.0.0.1", port)
    assert not processes.port_is_open("127.0.0.1", port)


def test_stop_group_stops_the_process_and_its_children(tmp_path: Path) -> None:
    # A parent that starts a child which ignores nothing: both must go with the group.
    script = (
        "import subprocess,sys,time;"
        "subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']);"
        "time.sleep(60)"
    )
    pid = processes.start(
        [sys.executable, "-c", script], log_file=tmp_path / "p.log", env={}, cwd=tmp_path
    )
    assert processes.wait_until(lambda: len(processes.group_members(pid)) == 2, 10)
    processes.stop_group(pid, timeout_s=5)
    assert processes.group_members(pid) == []
    assert not processes.is_alive(pid)


def test_stop_group_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    script = (
        "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ready', flush=True); time.sleep(60)"
    )
    log = tmp_path / "p.log"
    pid = processes.start([sys.executable, "-c", script], log_file=log, env={}, cwd=tmp_path)
    assert processes.wait_until(lambda: "ready" in log.read_text(), 10)
    processes.stop_group(pid, timeout_s=1)
    assert not processes.is_alive(pid)
