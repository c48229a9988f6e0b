"""Serve a function with functions-framework, as the stack serves the real ones, and a
workflows emulator of a test's own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emulators import processes
from emulators.config import ROOT, StackSettings

TEST_FUNCTIONS = Path(__file__).parent / "functions"
PRODUCT_FUNCTIONS = ROOT / "functions"


@contextmanager
def serve_function(
    settings: StackSettings,
    name: str,
    target: str,
    signature: str,
    extra_env: dict[str, str] | None = None,
    folder: Path = TEST_FUNCTIONS,
    cwd: Path = ROOT,
) -> Iterator[str]:
    """Serve ``folder/name/main.py`` on a free port (working directory ``cwd``); yield its
    base URL."""
    port = processes.free_port(settings.host)
    pid = processes.start(
        [
            str(settings.venv_bin / "functions-framework"),
            "--source",
            str(folder / name / "main.py"),
            "--target",
            target,
            "--signature-type",
            signature,
            "--host",
            settings.host,
            "--port",
            str(port),
        ],
        log_file=settings.logs_dir / f"test-{name}-{port}.log",
        env={**os.environ, **(extra_env or {})},
        cwd=cwd,
    )
    try:
        if not processes.wait_until(lambda: processes.port_is_open(settings.host, port), 30):
            raise TimeoutError(f"function {name} did not start on port {port}")
        yield f"http://{settings.host}:{port}"
    finally:
        processes.stop_group(pid)


@contextmanager
def serve_workflows(
    directory: Path, env: dict[str, str] | None = None, name: str = "workflows"
) -> Iterator[str]:
    """A workflows emulator of one test's own, serving the workflow files of
    ``directory`` with ``env`` (a rendered environment); its URL."""
    settings = StackSettings()
    port = processes.free_port()
    pid = processes.start(
        [
            str(settings.workflows_bin / "python"),
            str(ROOT / "emulators/workflows/serve.py"),
            "--host",
            settings.host,
            "--port",
            str(port),
            str(directory),
        ],
        log_file=settings.logs_dir / f"test-{name}-{port}.log",
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        cwd=ROOT,
    )
    try:
        assert processes.wait_until(lambda: processes.port_is_open(settings.host, port), 30)
        yield f"http://{settings.host}:{port}"
    finally:
        processes.stop_group(pid)
