"""A second, isolated stack on other ports: up, crash, status, down, up again."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators import processes
from emulators import stack as local_stack
from emulators.config import StackSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def isolated(tmp_path: Path) -> Iterator[StackSettings]:
    base = StackSettings()
    settings = StackSettings(
        local_dir=tmp_path / "local",
        pubsub_port=base.pubsub_port + 1000,
        bigtable_port=base.bigtable_port + 1000,
        firestore_port=base.firestore_port + 1000,
        bigquery_port=base.bigquery_port + 1000,
        bigquery_grpc_port=base.bigquery_grpc_port + 1000,
        workflows_port=base.workflows_port + 1000,
        functions_base_port=base.functions_base_port + 1000,
    )
    saved = dict(os.environ)
    try:
        yield settings
    finally:
        local_stack.down(settings)
        os.environ.clear()
        os.environ.update(saved)


def _ports(settings: StackSettings) -> list[int]:
    return [p for c in local_stack.components(settings) for p in c.ports]


def test_up_crash_status_down_up(isolated: StackSettings) -> None:
    local_stack.up(isolated)
    rows = local_stack.status(isolated)
    assert rows and all(r.healthy for r in rows), rows
    assert isolated.env_file.exists()

    # A crashed emulator (its JVM killed under the gcloud wrapper) is reported, not hidden.
    pubsub = next(r for r in rows if r.name == "pubsub")
    assert pubsub.pid is not None
    children = [p for p in processes.group_members(pubsub.pid) if p != pubsub.pid]
    assert children
    for child in children:
        os.kill(child, signal.SIGKILL)
    assert processes.wait_until(
        lambda: not next(r for r in local_stack.status(isolated) if r.name == "pubsub").healthy,
        20,
    )

    # `up` again repairs only what is broken.
    before = local_stack.read_state(isolated)
    local_stack.up(isolated)
    after = local_stack.read_state(isolated)
    assert after["pubsub"] != before["pubsub"]
    assert {k: v for k, v in after.items() if k != "pubsub"} == {
        k: v for k, v in before.items() if k != "pubsub"
    }
    rows = local_stack.status(isolated)
    assert all(r.healthy for r in rows), [r for r in rows if not r.healthy]

    # `down` leaves no process of the stack and no port held; a second `up` works.
    pids = list(local_stack.read_state(isolated).values())
    assert local_stack.down(isolated) == []
    assert all(processes.group_members(pid) == [] for pid in pids)
    assert all(processes.port_is_free(isolated.host, port) for port in _ports(isolated))
    local_stack.up(isolated)
    rows = local_stack.status(isolated)
    assert all(r.healthy for r in rows), [r for r in rows if not r.healthy]


def test_busy_port_gives_a_clear_error(isolated: StackSettings) -> None:
    import socket

    with socket.socket() as squatter:
        # REUSEADDR: the previous test's connections may linger in TIME_WAIT on this port;
        # a listening socket still makes the port busy for the stack.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((isolated.host, isolated.firestore_port))
        squatter.listen()
        with pytest.raises(local_stack.StackError, match=f"port {isolated.firestore_port}"):
            local_stack.up(isolated)
    assert all(processes.port_is_free(isolated.host, p) for p in _ports(isolated))
