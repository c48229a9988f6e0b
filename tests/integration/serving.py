"""Serve a function with functions-framework, as the stack serves the real ones, and a
workflows emulator of a test's own."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emulators import processes
from emulators.config import ROOT, StackSettings
from shared.system.workflow_render import RUN_API_VARIABLE

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
    directory: Path,
    env: dict[str, str] | None = None,
    name: str = "workflows",
    jobs: dict[str, Any] | None = None,
) -> Iterator[str]:
    """A workflows emulator of one test's own, serving the workflow files of
    ``directory`` with ``env`` (a rendered environment); its URL. ``jobs``: the Cloud Run
    jobs its stand-in runs (``emulators.stack.job_specs``' shape), and the workflows'
    ``CARTWISE_RUN_API_URL`` is then this emulator's own."""
    settings = StackSettings()
    port = processes.free_port()
    options: list[str] = []
    env = dict(env or {})
    if jobs is not None:
        jobs_file = settings.local_dir / f"test-jobs-{port}.json"
        jobs_file.parent.mkdir(parents=True, exist_ok=True)
        jobs_file.write_text(json.dumps(jobs))
        jobs_file.chmod(0o600)
        options = ["--jobs-file", str(jobs_file)]
        env[RUN_API_VARIABLE] = f"http://{settings.host}:{port}/v2"
    pid = processes.start(
        [
            str(settings.workflows_bin / "python"),
            str(ROOT / "emulators/workflows/serve.py"),
            "--host",
            settings.host,
            "--port",
            str(port),
            *options,
            str(directory),
        ],
        log_file=settings.logs_dir / f"test-{name}-{port}.log",
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=ROOT,
    )
    try:
        assert processes.wait_until(lambda: processes.port_is_open(settings.host, port), 30)
        yield f"http://{settings.host}:{port}"
    finally:
        processes.stop_group(pid)
