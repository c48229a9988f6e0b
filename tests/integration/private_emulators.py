"""A gcloud emulator of one test's own: a store an outage test can stop, restart or break
without disturbing the other tests, which keep the stack's."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TypeVar

from emulators import processes
from emulators.config import ROOT, StackSettings


class PrivateEmulator:
    """``gcloud beta emulators {kind} start`` on a free port; ``prepare`` creates what the
    test needs once it listens (it starts empty, and restarts empty)."""

    kind = ""
    variable = ""  # the client libraries' *_EMULATOR_HOST variable

    def __init__(self, settings: StackSettings, project: str) -> None:
        self.settings = settings
        self.project = project
        self.port = processes.free_port()
        self.host = f"{settings.host}:{self.port}"
        self.pid: int | None = None

    def arguments(self) -> list[str]:
        return []

    def prepare(self) -> None:
        """Create the resources the test needs (none by default)."""

    def start(self) -> None:
        self.pid = processes.start(
            [
                *("gcloud", "beta", "emulators", self.kind, "start"),
                f"--host-port={self.host}",
                *self.arguments(),
            ],
            log_file=self.settings.logs_dir / f"test-{self.kind}-{self.port}.log",
            env=dict(os.environ),
            cwd=ROOT,
        )
        assert processes.wait_until(
            lambda: processes.port_is_open(self.settings.host, self.port), 60
        )
        self.prepare()

    @contextlib.contextmanager
    def pointed(self) -> Iterator[None]:
        """The client libraries pointed at this emulator for the block's duration."""
        saved = os.environ.get(self.variable)
        os.environ[self.variable] = self.host
        try:
            yield
        finally:
            if saved is not None:
                os.environ[self.variable] = saved

    def stop(self) -> None:
        if self.pid is not None:
            processes.stop_group(self.pid)
            self.pid = None


class PrivatePubSubEmulator(PrivateEmulator):
    """A Pub/Sub emulator of one test's own: ``create`` makes its topics and subscriptions
    with ``publisher`` and ``subscriber``, clients pointed at it."""

    kind = "pubsub"
    variable = "PUBSUB_EMULATOR_HOST"

    def arguments(self) -> list[str]:
        return [f"--project={self.project}"]

    def prepare(self) -> None:
        from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

        with self.pointed():
            self.publisher = PublisherClient()
            self.subscriber = SubscriberClient()
            self.create()

    def create(self) -> None:
        """Topics and subscriptions (none by default)."""


Emulator = TypeVar("Emulator", bound=PrivateEmulator)


@contextlib.contextmanager
def running(emulator: Emulator) -> Iterator[Emulator]:
    """``emulator`` started for the block's duration (a fixture's body)."""
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
