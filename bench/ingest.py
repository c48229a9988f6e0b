"""Ingest throughput: the HTTP endpoint against the bare-client ceiling, in one run.

``python -m bench.ingest [--seconds 20] [--batch 500] [--concurrency 8] [--json out.json]``

Phase 1 POSTs pre-generated, realistic batches to ``ingest_events`` (served by
functions-framework's gunicorn, as the stack and Cloud Run serve it) from this process's
threads, one keep-alive session each, and measures sustained accepted events/s and request
latency. Phase 2 writes the same number of events of the same shapes straight to Bigtable
and Pub/Sub with ingest's own adapters (``store.write``, ``publisher.publish``), at the
same concurrency: the ceiling the endpoint can at best approach with them on this machine;
then the same rows and messages as raw protobufs on plain gRPC stubs: what the emulators
absorb. The function writes to a bench-owned Bigtable instance and topic, dropped after the
run. CPU use of every stack process is sampled around each phase, so that the report says
where the cores went. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import itertools
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import requests

from emulators import processes
from emulators.config import ROOT, StackSettings
from shared.contract.events import MAX_EVENTS_PER_REQUEST, EventType, validate_event
from shared.ingestion.service import MAX_REQUEST_BYTES, EventRecord, make_record, message_head

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TARGET_EVENTS_PER_S = 10_000
TARGET_SHARE_OF_CEILING = 0.80
REQUIRED_COMPONENTS = ("pubsub", "bigtable", "firestore")
FUNCTION_NAME = "ingest_events"

# Share of each event type in the generated traffic: mostly page views, then basket
# changes and searches, a few validated carts and order status changes.
EVENT_MIX: dict[EventType, float] = {
    EventType.PAGE_VIEWED: 0.55,
    EventType.PRODUCT_ADDED_TO_BASKET: 0.12,
    EventType.SEARCH_PERFORMED: 0.10,
    EventType.LINK_CLICKED: 0.07,
    EventType.EXPERIENCE_DISPLAYED: 0.06,
    EventType.PRODUCT_REMOVED_FROM_BASKET: 0.04,
    EventType.EXPERIENCE_CLICKED: 0.02,
    EventType.CART_VALIDATED: 0.02,
    EventType.ORDER_STATUS_CHANGED: 0.02,
}

PAGE_TYPES: dict[str, float] = {
    "product": 0.45,
    "category": 0.20,
    "home": 0.10,
    "search": 0.08,
    "basket": 0.07,
    "checkout": 0.03,
    "promotion": 0.03,
    "account": 0.02,
    "order_confirmation": 0.01,
    "other": 0.01,
}
CATEGORIES = (
    "fruit-vegetables",
    "dairy",
    "bakery",
    "meat-fish",
    "frozen",
    "drinks",
    "snacks",
    "pantry",
    "breakfast",
    "baby",
    "pets",
    "household",
    "hygiene",
    "wine-beer",
    "organic",
    "world-food",
)
BRANDS = tuple(f"brand-{n:02d}" for n in range(40))
SEARCH_TERMS = (
    "milk",
    "organic bananas",
    "gluten free bread",
    "coffee beans",
    "greek yoghurt",
    "chicken breast",
    "pasta",
    "olive oil",
    "dishwasher tablets",
    "nappies size 4",
    "sparkling water",
    "dark chocolate",
    "cat food",
    "tomatoes",
    "cheddar",
    "free range eggs",
)
ORDER_STATUSES: dict[str, float] = {
    "shipped": 0.45,
    "delivered": 0.40,
    "cancelled": 0.07,
    "returned": 0.04,
    "refunded": 0.04,
}
SHOP = "https://shop.example.com"
SHOPPER_PREFIX = "bench-"


# --- realistic events ----------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    product_id: str
    category: str
    brand: str
    price_cents: int


class EventFactory:
    """Valid events of every type, in ``EVENT_MIX`` proportions, for ``shoppers`` shoppers.

    Shapes come from the seeded generator; ``event_id`` is a fresh ``uuid4`` every time,
    so that no two runs ever send the same event twice.
    """

    def __init__(self, seed: int, shoppers: int = 1000, products: int = 5000) -> None:
        self._rng = random.Random(seed)
        rng = random.Random(0)  # the catalogue and the shoppers are the same in every run
        self._products = [
            Product(
                product_id=f"sku-{n:05d}",
                category=rng.choice(CATEGORIES),
                brand=rng.choice(BRANDS),
                price_cents=max(29, int(rng.lognormvariate(5.6, 0.8))),
            )
            for n in range(products)
        ]
        # The prefix marks the bench's rows, so that they can be told apart and removed.
        self._shoppers = [f"{SHOPPER_PREFIX}{n:06d}" for n in range(shoppers)]
        # A few shoppers are much more active than most (Zipf-like, mildly).
        self._shopper_weights = list(
            itertools.accumulate(1 / (rank + 1) ** 0.6 for rank in range(shoppers))
        )
        self._types = list(EVENT_MIX)
        self._type_weights = list(itertools.accumulate(EVENT_MIX.values()))
        self._page_types = list(PAGE_TYPES)
        self._page_weights = list(itertools.accumulate(PAGE_TYPES.values()))
        self._statuses = list(ORDER_STATUSES)
        self._status_weights = list(itertools.accumulate(ORDER_STATUSES.values()))
        self._orders = itertools.count()
        self._makers: dict[EventType, Callable[[], dict[str, Any]]] = {
            EventType.PAGE_VIEWED: self._page_viewed,
            EventType.LINK_CLICKED: self._link_clicked,
            EventType.SEARCH_PERFORMED: self._search,
            EventType.PRODUCT_ADDED_TO_BASKET: self._basket_change,
            EventType.PRODUCT_REMOVED_FROM_BASKET: self._basket_change,
            EventType.CART_VALIDATED: self._cart_validated,
            EventType.ORDER_STATUS_CHANGED: self._order_status,
            EventType.EXPERIENCE_DISPLAYED: self._experience,
            EventType.EXPERIENCE_CLICKED: self._experience,
        }

    def event(self, occurred_at: str) -> dict[str, Any]:
        rng = self._rng
        event_type = rng.choices(self._types, cum_weights=self._type_weights)[0]
        shopper = rng.choices(self._shoppers, cum_weights=self._shopper_weights)[0]
        return {
            "event_id": str(uuid.uuid4()),
            "type": event_type.value,
            "shopper_id": shopper,
            "session_id": f"sess-{shopper[len(SHOPPER_PREFIX) :]}-{rng.randrange(4)}",
            "occurred_at": occurred_at,
            "schema_version": 1,
            "payload": self._makers[event_type](),
        }

    def body(self, batch: int, occurred_at: str) -> bytes:
        return json.dumps(
            {"events": [self.event(occurred_at) for _ in range(batch)]}, separators=(",", ":")
        ).encode()

    def _product(self) -> Product:
        return self._products[int(self._rng.paretovariate(1.2) * 7) % len(self._products)]

    def _page_viewed(self) -> dict[str, Any]:
        page_type = self._rng.choices(self._page_types, cum_weights=self._page_weights)[0]
        if page_type == "product":
            product = self._product()
            return {
                "url": f"{SHOP}/p/{product.product_id}",
                "page_type": page_type,
                "product_id": product.product_id,
                "category": product.category,
            }
        if page_type == "category":
            category = self._rng.choice(CATEGORIES)
            return {"url": f"{SHOP}/c/{category}", "page_type": page_type, "category": category}
        return {"url": f"{SHOP}/{page_type.replace('_', '-')}", "page_type": page_type}

    def _link_clicked(self) -> dict[str, Any]:
        category = self._rng.choice(CATEGORIES)
        return {
            "url": f"{SHOP}/c/{category}",
            "target_url": f"{SHOP}/p/{self._product().product_id}",
            "label": "see the product",
        }

    def _search(self) -> dict[str, Any]:
        return {
            "query": self._rng.choice(SEARCH_TERMS),
            "result_count": self._rng.randrange(0, 400),
        }

    def _basket_change(self) -> dict[str, Any]:
        product = self._product()
        return {
            "product_id": product.product_id,
            "quantity": self._rng.choices((1, 2, 3, 4, 6), cum_weights=(70, 88, 95, 98, 100))[0],
            "unit_price": product.price_cents / 100,
            "brand": product.brand,
            "category": product.category,
        }

    def _cart_validated(self) -> dict[str, Any]:
        rng = self._rng
        count = rng.randint(5, 30)
        chosen: dict[str, Product] = {}
        while len(chosen) < count:
            product = self._product()
            chosen[product.product_id] = product
        lines: list[dict[str, Any]] = []
        total_cents = 0
        for product in chosen.values():
            quantity = rng.choices((1, 2, 3, 4), cum_weights=(65, 88, 96, 100))[0]
            discount_cents = rng.choice((0, 0, 0, 0, 10, 50, product.price_cents // 5))
            total_cents += quantity * product.price_cents - discount_cents
            line: dict[str, Any] = {
                "product_id": product.product_id,
                "quantity": quantity,
                "unit_price": product.price_cents / 100,
                "brand": product.brand,
                "category": product.category,
            }
            if discount_cents:
                line["discount"] = discount_cents / 100
            lines.append(line)
        return {
            "order_id": f"ord-{rng.getrandbits(40):010x}-{next(self._orders)}",
            "lines": lines,
            "total": max(total_cents, 0) / 100,
        }

    def _order_status(self) -> dict[str, Any]:
        return {
            "order_id": f"ord-{self._rng.getrandbits(40):010x}",
            "status": self._rng.choices(self._statuses, cum_weights=self._status_weights)[0],
        }

    def _experience(self) -> dict[str, Any]:
        rng = self._rng
        return {
            "experience_id": f"exp-{rng.randrange(60):03d}",
            "campaign_id": f"camp-{rng.randrange(12):02d}",
        }


def _bodies_chunk(job: tuple[int, int, int, int, str]) -> list[bytes]:
    seed, shoppers, count, batch, occurred_at = job
    factory = EventFactory(seed, shoppers)
    return [factory.body(batch, occurred_at) for _ in range(count)]


DISTINCT_BODIES = 120
_EVENT_ID = b'"event_id":"'


def with_fresh_ids(body: bytes) -> bytes:
    """The same request with a new ``uuid4`` for every event (its JSON is ours, compact)."""
    head, *events = body.split(_EVENT_ID)
    return _EVENT_ID.join([head, *(str(uuid.uuid4()).encode() + event[36:] for event in events)])


def generate_bodies(count: int, batch: int, shoppers: int, seed: int) -> list[bytes]:
    """``count`` request bodies of ``batch`` events, every event under its own ``uuid4``.

    ``DISTINCT_BODIES`` bodies are drawn from ``EventFactory`` on every core; further
    bodies repeat their shapes under fresh event ids, so that a large pool is cheap.
    """
    occurred_at = datetime.now(UTC).isoformat()
    distinct = min(count, DISTINCT_BODIES)
    chunk = 10
    jobs = [
        (seed * 1_000_003 + n, shoppers, min(chunk, distinct - start), batch, occurred_at)
        for n, start in enumerate(range(0, distinct, chunk))
    ]
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        shapes = [body for bodies in pool.map(_bodies_chunk, jobs) for body in bodies]
    return shapes + [with_fresh_ids(shapes[n % distinct]) for n in range(distinct, count)]


RecordFields = tuple[str, str, str, str, bytes, dict[str, str], str]


def _records_chunk(job: tuple[str, list[bytes], str]) -> list[RecordFields]:
    retailer_id, bodies, ingested_at = job
    head = message_head(retailer_id, datetime.fromisoformat(ingested_at))
    records: list[RecordFields] = []
    for body in bodies:
        for raw in json.loads(body)["events"]:
            event = validate_event(raw)
            if isinstance(event, list):
                raise BenchError(f"the generator made an invalid event: {event}")
            r = make_record(retailer_id, event, head)
            records.append(
                (
                    r.id_key,
                    r.row_key,
                    r.digest,
                    r.occurred_at.isoformat(),
                    r.message,
                    r.attributes,
                    r.ordering_key,
                )
            )
    return records


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _records_from_fields(fields: Sequence[RecordFields]) -> list[EventRecord]:
    return [
        EventRecord(
            id_key=id_key,
            row_key=row_key,
            digest=digest,
            occurred_at=datetime.fromisoformat(occurred_at),
            message=message,
            attributes=attributes,
            ordering_key=ordering_key,
        )
        for id_key, row_key, digest, occurred_at, message, attributes, ordering_key in fields
    ]


def build_records(retailer_id: str, bodies: Sequence[bytes]) -> list[EventRecord]:
    """The rows and messages ``ingest`` makes of these bodies (validated, on every core)."""
    ingested_at = _now_iso()
    jobs = [(retailer_id, list(bodies[n : n + 4]), ingested_at) for n in range(0, len(bodies), 4)]
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return [
            record
            for fields in pool.map(_records_chunk, jobs)
            for record in _records_from_fields(fields)
        ]


def body_stats(bodies: Sequence[bytes]) -> dict[str, Any]:
    sizes = [len(b) for b in bodies]
    sample = [e for b in bodies[:40] for e in json.loads(b)["events"]]
    mix = Counter(e["type"] for e in sample)
    lines = [len(e["payload"]["lines"]) for e in sample if e["type"] == "cart_validated"]
    return {
        "bodies": len(bodies),
        "mean_body_kb": round(statistics.fmean(sizes) / 1024, 1) if sizes else 0,
        "max_body_kb": round(max(sizes, default=0) / 1024, 1),
        "shoppers_in_sample": len({e["shopper_id"] for e in sample}),
        "mix_in_sample": {k: round(v / len(sample), 3) for k, v in mix.most_common()},
        "cart_lines_in_sample": [min(lines), max(lines)] if lines else [],
    }


# --- the stack, the function under test, CPU accounting ---------------------------------


class BenchError(RuntimeError):
    """A precondition failed; the message says what to do."""


def read_stack_env(settings: StackSettings, stack_function: bool) -> dict[str, str]:
    """The stack's ``stack.env``, once the emulators (and the function measured) are healthy."""
    from emulators import stack

    if not settings.env_file.exists():
        raise BenchError(f"{settings.env_file} not found: the local stack is not up; `make up`")
    rows = {row.name: row for row in stack.status(settings)}
    needed = [*REQUIRED_COMPONENTS, *([FUNCTION_NAME] if stack_function else [])]
    unhealthy = [
        f"{name} ({rows[name].problem if name in rows else 'unknown'})"
        for name in needed
        if name not in rows or not rows[name].healthy
    ]
    if unhealthy:
        raise BenchError(
            f"stack components not healthy: {', '.join(unhealthy)}; `make up` restarts what is "
            "down, unhealthy or serving changed code"
        )
    env: dict[str, str] = {}
    for line in settings.env_file.read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            env[key] = value
    missing = [k for k in ("INGEST_URL", "DEMO_API_KEY", "DEMO_RETAILER_ID") if k not in env]
    if missing:
        raise BenchError(f"{settings.env_file} lacks {missing}: rerun `make up`")
    if not env.get("GOOGLE_CLOUD_PROJECT", "").startswith("demo-"):
        raise BenchError("refusing to run: GOOGLE_CLOUD_PROJECT is not a demo- project")
    for key, value in env.items():
        host = urllib.parse.urlsplit(value if "://" in value else f"//{value}").hostname
        if key.endswith(("_EMULATOR_HOST", "_URL")) and host not in {"127.0.0.1", "localhost"}:
            raise BenchError(f"refusing to run: {key}={value} is not on loopback")
    return env


@dataclass(frozen=True)
class Target:
    """Where ingest writes during the bench: the Bigtable instance and the events topic."""

    project: str
    instance: str
    topic: str
    isolated: bool  # bench-owned resources, dropped after the run

    def function_env(self) -> dict[str, str]:
        """``IngestSettings`` overrides that point ``ingest_events`` here."""
        if not self.isolated:
            return {}
        return {
            "INGEST_BIGTABLE_INSTANCE": self.instance,
            "INGEST_EVENTS_TOPIC": self.topic,
            "INGEST_REJECTED_TOPIC": f"{self.topic}-rejected",
            # The limiter still runs (one ReadModifyWriteRow per request, its cost measured)
            # but does not refuse: the retailers' default, 20,000 events/s in a fixed
            # one-second window, is within reach of the endpoint's bursts since 2026-12-04.
            "INGEST_DEFAULT_RATE_LIMIT_PER_S": "1000000",
        }


@contextlib.contextmanager
def isolated_target(settings: StackSettings, project: str) -> Iterator[Target]:
    """A Bigtable instance with ingest's declared tables, and topics without subscribers.

    The stack's ``shopper-events`` feeds the freezer: a bench's tens of thousands of
    events there would queue behind everyone's and take CPU from the run. These are
    dropped afterwards, which also frees the emulators' memory at once.
    """
    from emulators.bootstrap import create_bigtable
    from shared.platform import clients
    from shared.system.resources import SYSTEM

    suffix = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    target = Target(project, f"bench-{suffix}", f"bench-shopper-events-{suffix}", True)
    system = SYSTEM.model_copy(update={"bigtable_instance": target.instance})
    publisher = clients.publisher_client()
    topics = [publisher.topic_path(project, t) for t in (target.topic, f"{target.topic}-rejected")]
    try:
        for topic in topics:
            publisher.api.create_topic(name=topic)
        create_bigtable(settings, system)
        yield target
    finally:
        instance = clients.bigtable_client(project, admin=True).instance(target.instance)
        for table in system.bigtable_tables:
            with contextlib.suppress(Exception):
                instance.table(table.name).delete()
        for topic in topics:
            with contextlib.suppress(Exception):
                publisher.api.delete_topic(topic=topic)


@dataclass
class FunctionUnderTest:
    url: str
    origin: str  # "stack" or "bench"
    master_pid: int | None
    worker_pids: list[int]
    workers: int
    threads: int
    worker_class: str = "gthread (functions-framework gunicorn)"


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _proc_stats() -> Iterator[tuple[int, int, int, int]]:
    """(pid, ppid, process group, utime + stime ticks) of every process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        yield int(entry.name), int(fields[1]), int(fields[2]), int(fields[11]) + int(fields[12])


def describe_function(url: str, origin: str, master_pid: int | None) -> FunctionUnderTest:
    """Workers and threads as functions-framework reads them (WORKERS, THREADS; its defaults)."""
    env = _environ(master_pid) if master_pid else {}
    workers = int(env.get("WORKERS", 1))
    threads = int(env.get("THREADS", (os.cpu_count() or 1) * 4))
    children = [pid for pid, ppid, _, _ in _proc_stats() if master_pid and ppid == master_pid]
    return FunctionUnderTest(url, origin, master_pid, sorted(children), workers, threads)


@contextlib.contextmanager
def own_function(
    settings: StackSettings,
    stack_env: dict[str, str],
    target: Target,
    workers: int,
    threads: int,
) -> Iterator[FunctionUnderTest]:
    """``ingest_events`` served as the stack serves it, on a free port, writing to ``target``.

    The same functions-framework command (gunicorn gthread) and environment as the stack's,
    with the chosen WORKERS and THREADS; stopped afterwards.
    """
    port = processes.free_port(settings.host)
    base = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    env = {
        **base,
        **stack_env,
        **target.function_env(),
        "WORKERS": str(workers),
        "THREADS": str(threads),
        "PYTHONUNBUFFERED": "1",
    }
    log_file = settings.logs_dir / f"bench-{FUNCTION_NAME}-{port}.log"
    pid = processes.start(
        [
            str(settings.venv_bin / "functions-framework"),
            "--source",
            str(ROOT / "functions" / FUNCTION_NAME / "main.py"),
            "--target",
            FUNCTION_NAME,
            "--signature-type",
            "http",
            "--host",
            settings.host,
            "--port",
            str(port),
        ],
        log_file=log_file,
        env=env,
        cwd=ROOT,
    )
    try:
        if not processes.wait_until(lambda: processes.port_is_open(settings.host, port), 60):
            raise BenchError(f"own {FUNCTION_NAME} did not start on port {port}: see {log_file}")
        deadline = time.monotonic() + 30
        while len(describe_function("", "bench", pid).worker_pids) < workers:
            if time.monotonic() > deadline:
                raise BenchError(f"own {FUNCTION_NAME} lacks workers: see {log_file}")
            time.sleep(0.2)
        yield describe_function(f"http://{settings.host}:{port}", "bench", pid)
    finally:
        processes.stop_group(pid)


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    groups: dict[int, int]  # process group -> ticks
    bench: float  # this process, seconds
    machine_busy: int  # ticks


def _machine_busy_ticks() -> int:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values[:8]) - values[3] - values[4]  # all but idle and iowait (no guest)


def cpu_snapshot() -> CpuSnapshot:
    """CPU time so far of every process group, of this bench (and its helper processes)."""
    groups: Counter[int] = Counter()
    me, my_group = os.getpid(), os.getpgrp()
    helpers = 0
    for _, parent, group, ticks in _proc_stats():
        groups[group] += ticks
        if parent == me and group == my_group:  # not the own function: its own group
            helpers += ticks
    times = os.times()
    bench = times.user + times.system + helpers / os.sysconf("SC_CLK_TCK")
    return CpuSnapshot(time.monotonic(), dict(groups), bench, _machine_busy_ticks())


def cpu_cores(
    before: CpuSnapshot, after: CpuSnapshot, named_groups: dict[str, int]
) -> dict[str, float]:
    """Cores used by each named process group, this bench, the rest, and the machine."""
    hz = os.sysconf("SC_CLK_TCK")
    elapsed = max(after.at - before.at, 1e-9)
    used: dict[str, float] = {}
    for name, group in named_groups.items():
        ticks = after.groups.get(group, 0) - before.groups.get(group, 0)
        used[name] = max(ticks, 0) / hz / elapsed
    used["bench (client)"] = (after.bench - before.bench) / elapsed
    machine = (after.machine_busy - before.machine_busy) / hz / elapsed
    used["other processes"] = max(machine - sum(used.values()), 0.0)
    used["machine total"] = machine
    return {k: round(v, 2) for k, v in used.items()}


# --- measurement -------------------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    seconds: float
    requests: int
    events_sent: int
    events_accepted: int
    events_per_s: float
    latency_ms: dict[str, float]
    errors: dict[str, int]
    duplicates: int = 0
    rejected: int = 0
    steps_ms: dict[str, float] = field(default_factory=dict)
    cpu_cores: dict[str, float] = field(default_factory=dict)
    note: str = ""
    bodies_used: int = 0  # the endpoint's: requests of the pool sent, warm-up included


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    if not seconds:
        return {}
    ms = sorted(s * 1000 for s in seconds)
    cuts = ms * 99 if len(ms) == 1 else statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 1),
        "p95": round(cuts[94], 1),
        "p99": round(cuts[98], 1),
        "mean": round(statistics.fmean(ms), 1),
        "max": round(ms[-1], 1),
    }


class Progress:
    """One updating status line on a terminal (a line every 5 s otherwise)."""

    def __init__(self, label: str, total_s: float | None, total_events: int | None) -> None:
        self._label = label
        self._total_s = total_s
        self._total_events = total_events
        self._lock = threading.Lock()
        self._events = 0
        self._requests = 0
        self._errors = 0
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._tty = sys.stderr.isatty()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._print(final=True)

    def add(self, events: int, error: bool) -> None:
        with self._lock:
            self._events += events
            self._requests += 1
            self._errors += int(error)

    def sync(self, events: int, requests_: int, errors: int) -> None:
        with self._lock:
            self._events, self._requests, self._errors = events, requests_, errors

    def _print(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self._started
        with self._lock:
            events, requests_, errors = self._events, self._requests, self._errors
        if self._total_s:
            where = f"{min(elapsed, self._total_s):5.1f}/{self._total_s:.0f}s"
        else:
            where = f"{events:,}/{self._total_events or 0:,} events, {elapsed:5.1f}s"
        line = (
            f"  {self._label:<9} {where}  {requests_:,} requests  {events:,} events  "
            f"{events / max(elapsed, 1e-9):,.0f} ev/s  {errors} errors"
        )
        if self._tty:
            print(f"\r{line:<100}", end="\n" if final else "", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def _run(self) -> None:
        interval = 0.5 if self._tty else 5.0
        while not self._stop.wait(interval):
            self._print()


@dataclass
class Sample:
    started: float
    ended: float
    status: int  # 0: no HTTP answer
    accepted: int
    duplicates: int
    rejected: int


def post_batches(
    url: str,
    api_key: str,
    bodies: Sequence[bytes],
    first: int,
    seconds: float,
    concurrency: int,
    progress: Progress | None,
) -> tuple[list[Sample], int, bool]:
    """POST ``bodies[first:]`` for ``seconds``; return samples, next body, pool exhausted."""
    headers = {"X-Api-Key": api_key, "Content-Type": "application/json"}
    endpoint = f"{url.rstrip('/')}/v1/events"
    next_body = itertools.count(first)
    samples: list[Sample] = []
    lock = threading.Lock()
    exhausted = threading.Event()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        with requests.Session() as session:
            while time.perf_counter() < deadline:
                index = next(next_body)
                if index >= len(bodies):
                    exhausted.set()
                    return
                started = time.perf_counter()
                accepted = duplicates = rejected = 0
                try:
                    response = session.post(
                        endpoint, data=bodies[index], headers=headers, timeout=60
                    )
                    status = response.status_code
                    if status == 202:
                        answer = response.json()
                        accepted = int(answer["accepted"])
                        duplicates = int(answer["duplicate_count"])
                        rejected = int(answer["rejected_count"])
                except requests.RequestException:
                    status = 0
                    time.sleep(0.5)  # the function is down or restarting: do not spin
                sample = Sample(
                    started, time.perf_counter(), status, accepted, duplicates, rejected
                )
                with lock:
                    samples.append(sample)
                if progress is not None:
                    progress.add(accepted, status != 202)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    used = min(next(next_body), len(bodies))
    return samples, used, exhausted.is_set()


def measure_endpoint(
    function: FunctionUnderTest,
    api_key: str,
    bodies: Sequence[bytes],
    batch: int,
    seconds: float,
    warmup_s: float,
    concurrency: int,
    named_groups: dict[str, int],
) -> PhaseResult:
    first = 0
    if warmup_s > 0:
        print(f"  warm-up   {warmup_s:.0f}s (not measured)", file=sys.stderr, flush=True)
        warm, first, _ = post_batches(function.url, api_key, bodies, 0, warmup_s, concurrency, None)
        if warm and all(s.status != 202 for s in warm):
            statuses = dict(Counter(s.status for s in warm))
            raise BenchError(f"every warm-up request failed: {statuses} (see the function log)")
    before = cpu_snapshot()
    with Progress("endpoint", seconds, None) as progress:
        samples, used, exhausted = post_batches(
            function.url, api_key, bodies, first, seconds, concurrency, progress
        )
    after = cpu_snapshot()
    now = describe_function(function.url, function.origin, function.master_pid)
    notes = [f"POST /v1/events, WORKERS={function.workers} THREADS={function.threads}"]
    if function.master_pid and (
        not processes.is_alive(function.master_pid) or now.worker_pids != function.worker_pids
    ):
        notes.append("THE FUNCTION RESTARTED DURING THE PHASE: figures invalid, run again")
    if exhausted:
        notes.append("request pool exhausted: raise --max-rate")
    start = min((s.started for s in samples), default=0.0)
    end = max((s.ended for s in samples), default=start)
    window = max(end - start, 1e-9)
    accepted = sum(s.accepted for s in samples)
    errors = Counter("no answer" if s.status == 0 else str(s.status) for s in samples)
    errors.pop("202", None)
    return PhaseResult(
        name="endpoint",
        seconds=round(window, 2),
        requests=len(samples),
        events_sent=len(samples) * batch,
        events_accepted=accepted,
        events_per_s=round(accepted / window, 1),
        latency_ms=latency_summary([s.ended - s.started for s in samples]),
        errors=dict(errors),
        duplicates=sum(s.duplicates for s in samples),
        rejected=sum(s.rejected for s in samples),
        cpu_cores=cpu_cores(before, after, named_groups),
        note="; ".join(notes),
        bodies_used=used,
    )


@dataclass(frozen=True)
class CeilingVariant:
    """How the bare client writes and publishes; ``ADAPTERS`` is exactly what ingest does."""

    name: str
    ordered: bool = True
    raw_grpc: bool = False

    def describe(self, full_io: bool) -> str:
        steps = "lookup + write + publish + index" if full_io else "write + publish + index"
        extras = [
            "raw protobuf over gRPC stubs" if self.raw_grpc else "ingest's adapters",
            *([] if self.ordered else ["no ordering keys"]),
        ]
        return f"{steps}, {', '.join(extras)}"


ADAPTERS = CeilingVariant("ceiling")
RAW_GRPC = CeilingVariant("ceiling/raw-grpc", raw_grpc=True)
VARIANTS = (CeilingVariant("ceiling/unordered", ordered=False),)


class RawGrpcClient:
    """The same Bigtable rows and Pub/Sub messages as ingest's adapters, as raw protobufs.

    No client-library layers (``DirectRow``, proto-plus, retries): requests are built with
    the upb protobuf classes and sent on plain gRPC stubs to the emulators. What the
    emulators absorb when the client costs almost nothing.
    """

    def __init__(self, target: Target) -> None:
        import grpc
        from google.cloud.bigtable_v2.types import (
            MutateRowsRequest,
            MutateRowsResponse,
            ReadRowsRequest,
            ReadRowsResponse,
        )
        from google.pubsub_v1.types import PublishRequest, PublishResponse

        from shared.system.resources import EVENT_IDS_TABLE, SHOPPER_EVENTS_TABLE

        self._mutate_request = MutateRowsRequest.pb()
        self._read_request = ReadRowsRequest.pb()
        self._publish_request = PublishRequest.pb()
        tables = f"projects/{target.project}/instances/{target.instance}/tables/"
        self._events_table = tables + SHOPPER_EVENTS_TABLE
        self._ids_table = tables + EVENT_IDS_TABLE
        self._topic = f"projects/{target.project}/topics/{target.topic}"
        bigtable = grpc.insecure_channel(os.environ["BIGTABLE_EMULATOR_HOST"])
        pubsub = grpc.insecure_channel(os.environ["PUBSUB_EMULATOR_HOST"])
        self._mutate_rows = bigtable.unary_stream(
            "/google.bigtable.v2.Bigtable/MutateRows",
            request_serializer=self._mutate_request.SerializeToString,
            response_deserializer=MutateRowsResponse.pb().FromString,
        )
        self._read_rows = bigtable.unary_stream(
            "/google.bigtable.v2.Bigtable/ReadRows",
            request_serializer=self._read_request.SerializeToString,
            response_deserializer=ReadRowsResponse.pb().FromString,
        )
        self._publish = pubsub.unary_unary(
            "/google.pubsub.v1.Publisher/Publish",
            request_serializer=self._publish_request.SerializeToString,
            response_deserializer=PublishResponse.pb().FromString,
        )

    def _send(self, request: Any) -> None:
        from shared.platform.errors import StoreUnavailableError

        failed = [
            entry.status.message
            for response in self._mutate_rows(request, timeout=10)
            for entry in response.entries
            if entry.status.code
        ]
        if failed:
            raise StoreUnavailableError(f"bigtable: {len(failed)} rows failed ({failed[0]})")

    def lookup(self, id_keys: Sequence[str]) -> None:
        request = self._read_request(table_name=self._ids_table)
        request.rows.row_keys.extend(key.encode() for key in id_keys)
        request.filter.cells_per_column_limit_filter = 1
        for _ in self._read_rows(request, timeout=10):
            pass

    def write(self, records: Sequence[EventRecord]) -> None:
        from shared.system.resources import EVENT_FAMILY

        events = self._mutate_request(table_name=self._events_table)
        for record in records:
            cell = events.entries.add(row_key=record.row_key.encode()).mutations.add().set_cell
            cell.family_name = EVENT_FAMILY
            cell.column_qualifier = b"message"
            micros = (record.occurred_at - EPOCH) // timedelta(microseconds=1)
            cell.timestamp_micros = micros - micros % 1000  # Bigtable keeps milliseconds
            cell.value = record.message
        self._send(events)

    def publish(self, records: Sequence[EventRecord]) -> None:
        for start in range(0, len(records), 1000):
            request = self._publish_request(topic=self._topic)
            for record in records[start : start + 1000]:
                message = request.messages.add(data=record.message)
                message.ordering_key = record.ordering_key
                message.attributes.update(record.attributes)
            self._publish(request, timeout=10)

    def mark_published(self, records: Sequence[EventRecord]) -> None:
        from shared.system.resources import ID_FAMILY

        request = self._mutate_request(table_name=self._ids_table)
        for record in records:
            entry = request.entries.add(row_key=record.id_key.encode())
            for qualifier, value in (
                (b"row_key", record.row_key.encode()),
                (b"digest", record.digest.encode()),
            ):
                cell = entry.mutations.add().set_cell
                cell.family_name = ID_FAMILY
                cell.column_qualifier = qualifier
                cell.timestamp_micros = -1  # server time, as the adapter
                cell.value = value
        self._send(request)

    def delete_rows(self, events_keys: Sequence[bytes], ids_keys: Sequence[bytes]) -> None:
        for table, keys in ((self._events_table, events_keys), (self._ids_table, ids_keys)):
            for start in range(0, len(keys), 1000):
                request = self._mutate_request(table_name=table)
                for key in keys[start : start + 1000]:
                    request.entries.add(row_key=key).mutations.add().delete_from_row.SetInParent()
                self._send(request)


def remove_rows(target: Target, retailer_id: str, bodies: Sequence[bytes]) -> int:
    """Delete the Bigtable rows these requests made (the emulator keeps all in memory)."""
    from shared.ingestion.service import id_key, reverse_micros, shopper_prefix

    events_keys: list[bytes] = []
    ids_keys: list[bytes] = []
    for body in bodies:
        for raw in json.loads(body)["events"]:
            moment = reverse_micros(datetime.fromisoformat(raw["occurred_at"]))
            prefix = shopper_prefix(retailer_id, raw["shopper_id"])
            events_keys.append(f"{prefix}{moment}#{raw['event_id']}".encode())
            ids_keys.append(id_key(retailer_id, raw["event_id"]).encode())
    RawGrpcClient(target).delete_rows(events_keys, ids_keys)
    return len(events_keys)


def function_dependencies() -> Any:
    """``ingest_events``' own dependencies (``shared.ingestion.composition.ingest()``): the
    adapters, clients and settings the function uses."""
    path = ROOT / "shared" / "ingestion" / "composition.py"
    spec = importlib.util.spec_from_file_location(f"bench_{FUNCTION_NAME}_composition", path)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    os.environ["LOG_LEVEL"] = "WARNING"  # its logs.configure() is for the function's logs
    try:
        spec.loader.exec_module(module)
        return module.ingest()
    except Exception as exc:  # the code may be mid-edit: say so, do not guess
        raise BenchError(f"{path}: ingest() failed: {exc!r}") from exc


@dataclass
class CeilingRun:
    """What one bare-client process measured."""

    latencies: list[float] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    seconds: float = 0.0


def _ceiling_run(
    target: Target,
    records: Sequence[EventRecord],
    batch: int,
    threads: int,
    full_io: bool,
    variant: CeilingVariant,
    on_batch: Callable[[int, bool], None],
    ready: Callable[[], object],
    min_seconds: float = 0.0,
) -> CeilingRun:
    """Set up the adapters, call ``ready()``, then write and publish every batch on threads.

    With ``min_seconds``, the batches start over (the same rows, overwritten) until then.
    """
    from shared.platform.errors import StoreUnavailableError

    store: Any
    publisher: Any
    if variant.raw_grpc:
        store = publisher = RawGrpcClient(target)
    else:
        deps = function_dependencies()
        store, publisher = deps.store, deps.publisher
    if not variant.ordered:
        records = [dataclasses.replace(r, ordering_key="") for r in records]
    batches = [records[n : n + batch] for n in range(0, len(records), batch)]
    warm = records[:50]  # opens the channels; rewritten by the timed run
    store.write(warm)
    publisher.publish(warm)
    store.mark_published(warm)

    next_batch = itertools.count()
    lock = threading.Lock()
    run = CeilingRun(steps={"lookup": [], "write": [], "publish": [], "mark": []})
    errors: Counter[str] = Counter()
    names = ["lookup", "write", "publish", "mark"] if full_io else ["write", "publish", "mark"]

    def worker() -> None:
        while (index := next(next_batch)) < len(batches) or time.perf_counter() < deadline:
            chunk = batches[index % len(batches)]
            marks = [time.perf_counter()]
            try:
                if full_io:
                    store.lookup([r.id_key for r in chunk])
                    marks.append(time.perf_counter())
                store.write(chunk)
                marks.append(time.perf_counter())
                publisher.publish(chunk)
                marks.append(time.perf_counter())
                store.mark_published(chunk)
                marks.append(time.perf_counter())
            except StoreUnavailableError as exc:
                with lock:
                    errors[type(exc).__name__] += 1
                on_batch(0, True)
                continue
            with lock:
                run.latencies.append(marks[-1] - marks[0])
                for name, begin, end in zip(names, marks, marks[1:], strict=False):
                    run.steps[name].append(end - begin)
                run.accepted += len(chunk)
            on_batch(len(chunk), False)

    ready()
    started = time.perf_counter()
    deadline = started + min_seconds
    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    run.seconds = time.perf_counter() - started
    run.errors = dict(errors)
    return run


def _ceiling_child(
    conn: Connection,
    job: tuple[Target, str, list[bytes], int, int, bool, CeilingVariant, float],
    barrier: Any,
    counters: Any,
) -> None:
    """One process of a multi-process ceiling: build its records, wait, run, report."""
    target, retailer_id, bodies, batch, threads, full_io, variant, min_seconds = job
    records = _records_from_fields(_records_chunk((retailer_id, bodies, _now_iso())))

    def on_batch(events: int, error: bool) -> None:
        with counters.get_lock():
            counters[0] += events
            counters[1] += 1
            counters[2] += int(error)

    run = _ceiling_run(
        target, records, batch, threads, full_io, variant, on_batch, barrier.wait, min_seconds
    )
    conn.send(asdict(run))
    barrier.wait()  # stay alive until the parent has read every process's CPU time
    conn.close()


def measure_ceiling(
    target: Target,
    records: Sequence[EventRecord],
    batch: int,
    concurrency: int,
    full_io: bool,
    named_groups: dict[str, int],
    variant: CeilingVariant = ADAPTERS,
    min_seconds: float = 0.0,
) -> PhaseResult:
    """Write the rows and publish the messages with ingest's own adapters, no HTTP at all."""
    with Progress(variant.name, min_seconds or None, len(records)) as progress:
        snapshots: list[CpuSnapshot] = []
        run = _ceiling_run(
            target,
            records,
            batch,
            concurrency,
            full_io,
            variant,
            progress.add,
            lambda: snapshots.append(cpu_snapshot()),
            min_seconds,
        )
    after = cpu_snapshot()
    return _ceiling_result(
        variant, full_io, [run], len(records), batch, snapshots[0], after, named_groups, min_seconds
    )


def measure_ceiling_processes(
    target: Target,
    retailer_id: str,
    bodies: Sequence[bytes],
    events: int,
    batch: int,
    concurrency: int,
    processes_: int,
    full_io: bool,
    named_groups: dict[str, int],
    variant: CeilingVariant = ADAPTERS,
    min_seconds: float = 0.0,
) -> PhaseResult:
    """The ceiling from ``processes_`` bare-client processes (the GIL binds one to a core).

    Each process builds its share of the records, then all start together; events/s is
    every process's events over the longest run.
    """
    context = multiprocessing.get_context("spawn")  # no inherited gRPC state
    barrier = context.Barrier(processes_ + 1)
    counters = context.Array("q", 3)
    threads = max(1, math.ceil(concurrency / processes_))
    pipes = []
    children = []
    for n in range(processes_):
        receiver, sender = context.Pipe(duplex=False)
        share = list(bodies[n::processes_])
        job = (target, retailer_id, share, batch, threads, full_io, variant, min_seconds)
        child = context.Process(target=_ceiling_child, args=(sender, job, barrier, counters))
        child.start()
        sender.close()
        pipes.append(receiver)
        children.append(child)
    runs: list[CeilingRun] = []
    try:
        barrier.wait(timeout=300)
        before = cpu_snapshot()
        pending = list(pipes)
        with Progress(variant.name, min_seconds or None, events) as progress:
            while pending:
                for ready in multiprocessing.connection.wait(pending, timeout=0.25):
                    assert isinstance(ready, Connection)
                    runs.append(CeilingRun(**ready.recv()))
                    pending.remove(ready)
                with counters.get_lock():
                    progress.sync(counters[0], counters[1], counters[2])
                if pending and not any(child.is_alive() for child in children):
                    raise BenchError("the ceiling processes died: see the messages above")
        after = cpu_snapshot()
        barrier.wait(timeout=60)
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
    return _ceiling_result(
        variant, full_io, runs, events, batch, before, after, named_groups, min_seconds
    )


def _ceiling_result(
    variant: CeilingVariant,
    full_io: bool,
    runs: Sequence[CeilingRun],
    events: int,
    batch: int,
    before: CpuSnapshot,
    after: CpuSnapshot,
    named_groups: dict[str, int],
    min_seconds: float = 0.0,
) -> PhaseResult:
    window = max(max((run.seconds for run in runs), default=0.0), 1e-9)
    accepted = sum(run.accepted for run in runs)
    errors: Counter[str] = Counter()
    steps: dict[str, list[float]] = {}
    for run in runs:
        errors.update(run.errors)
        for name, values in run.steps.items():
            steps.setdefault(name, []).extend(values)
    note = variant.describe(full_io)
    if min_seconds:
        note += f"; the rows again and again for {min_seconds:.0f}s at least"
    if len(runs) > 1:
        note += f"; {len(runs)} processes"
    return PhaseResult(
        name=variant.name,
        seconds=round(window, 2),
        requests=sum(len(run.latencies) for run in runs) + sum(errors.values()),
        events_sent=max(events, accepted),
        events_per_s=round(accepted / window, 1),
        events_accepted=accepted,
        latency_ms=latency_summary([x for run in runs for x in run.latencies]),
        errors=dict(errors),
        steps_ms={
            name: round(statistics.fmean(values) * 1000, 1)
            for name, values in steps.items()
            if values
        },
        cpu_cores=cpu_cores(before, after, named_groups),
        note=note,
    )


# --- report ------------------------------------------------------------------------------


def code_state() -> dict[str, Any]:
    """The commit measured, and which product files differ from it (uncommitted work)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout

    changed = git("status", "--porcelain", "--", "shared", "functions", "emulators")
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip() or "unknown",
        "uncommitted": [line[3:] for line in changed.splitlines()],
    }


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "code": code_state(),
    }


def verdict(
    endpoint: PhaseResult, ceiling: PhaseResult | None, raw: PhaseResult | None
) -> dict[str, Any]:
    """The target is met at 10,000 events/s, or at 80% of the adapters' ceiling."""
    ceiling_rate = ceiling.events_per_s if ceiling else 0.0
    raw_rate = raw.events_per_s if raw else 0.0
    share = endpoint.events_per_s / ceiling_rate if ceiling_rate else 0.0
    met_absolute = endpoint.events_per_s >= TARGET_EVENTS_PER_S and not endpoint.errors
    met_relative = share >= TARGET_SHARE_OF_CEILING and not endpoint.errors
    return {
        "endpoint_events_per_s": endpoint.events_per_s,
        "ceiling_events_per_s": ceiling_rate,
        "endpoint_share_of_ceiling": round(share, 3),
        "raw_grpc_ceiling_events_per_s": raw_rate,
        "endpoint_share_of_raw_grpc_ceiling": round(
            endpoint.events_per_s / raw_rate if raw_rate else 0.0, 3
        ),
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "target_share_of_ceiling": TARGET_SHARE_OF_CEILING,
        "met": met_absolute or met_relative,
        "met_by": "events/s" if met_absolute else ("share of ceiling" if met_relative else None),
    }


def print_report(report: dict[str, Any]) -> None:
    m, fn, load = report["machine"], report["function"], report["load"]
    print()
    print(f"cartwise ingest benchmark — {m['date']}")
    print(
        f"machine   nproc {m['nproc']}, {m['cpu'] or 'unknown CPU'}, Python {m['python']}, "
        f"load average before {m['load_average_before']}"
    )
    code = m["code"]
    print(
        f"code      commit {code['commit']}"
        + (
            f", uncommitted changes in {', '.join(code['uncommitted'])}"
            if code["uncommitted"]
            else ""
        )
    )
    where = "the stack's instance" if fn["origin"] == "stack" else "served as the stack does"
    print(
        f"function  {fn['url']} ({where}, pid {fn['master_pid']}), {fn['worker_class']}: "
        f"WORKERS={fn['workers']} THREADS={fn['threads']}"
    )
    target = report["target"]
    print(
        f"writes to Bigtable instance {target['instance']}, topic {target['topic']}"
        + (" (bench-owned, dropped after the run)" if target["isolated"] else " (the stack's)")
    )
    print(
        f"load      {load['batch']} events/request, concurrency {load['concurrency']}, "
        f"{load['shoppers']} shoppers, {load['mean_body_kb']} KB/request on average; mix "
        + ", ".join(f"{k} {v:.0%}" for k, v in load["mix_in_sample"].items())
    )
    print()
    header = (
        f"{'phase':<22}{'events/s':>10}{'batches':>9}{'events':>10}{'secs':>7}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  errors"
    )
    print(header)
    print("-" * len(header))
    for phase in report["phases"]:
        lat = phase["latency_ms"]
        print(
            f"{phase['name']:<22}{phase['events_per_s']:>10,.0f}{phase['requests']:>9,}"
            f"{phase['events_accepted']:>10,}{phase['seconds']:>7.1f}"
            f"{lat.get('p50', 0):>9,.0f}{lat.get('p95', 0):>9,.0f}{lat.get('p99', 0):>9,.0f}"
            f"  {phase['errors'] or 'none'}"
        )
    print()
    width = max(len(p["name"]) for p in report["phases"]) + 2
    for phase in report["phases"]:
        what = phase["note"]
        if phase["steps_ms"]:
            steps = ", ".join(f"{k} {v:,.0f}" for k, v in phase["steps_ms"].items())
            what += f"; mean ms per batch: {steps}"
        print(f"  {phase['name']:<{width}}{what}")
    print()
    print(f"CPU cores used during each phase (of {m['nproc']}; idle processes left out)")
    phases = report["phases"]
    names = [
        name
        for name in dict.fromkeys(k for p in phases for k in p["cpu_cores"])
        if name == "machine total" or any(p["cpu_cores"].get(name, 0) >= 0.01 for p in phases)
    ]
    print(f"  {'process':<26}" + "".join(f"{p['name']:>19}" for p in phases))
    for name in names:
        print(f"  {name:<26}" + "".join(f"{p['cpu_cores'].get(name, 0):>19.2f}" for p in phases))
    v = report["verdict"]
    print()
    if v["ceiling_events_per_s"]:
        print(
            f"endpoint {v['endpoint_events_per_s']:,.0f} events/s = "
            f"{v['endpoint_share_of_ceiling']:.0%} of the ceiling "
            f"({v['ceiling_events_per_s']:,.0f} events/s, ingest's adapters)"
        )
    if v["raw_grpc_ceiling_events_per_s"]:
        print(
            f"         {v['endpoint_share_of_raw_grpc_ceiling']:.0%} of the raw gRPC ceiling "
            f"({v['raw_grpc_ceiling_events_per_s']:,.0f} events/s, same rows and messages)"
        )
    outcome = f"MET ({v['met_by']})" if v["met"] else "NOT MET"
    print(
        f"target: {v['target_events_per_s']:,} events/s sustained, or "
        f"{v['target_share_of_ceiling']:.0%} of the (adapters') ceiling: {outcome}"
    )


# --- main --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured endpoint time")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured warm-up seconds")
    parser.add_argument("--batch", type=int, default=MAX_EVENTS_PER_REQUEST, help="events/request")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=12,
        help="requests in flight (12: where the endpoint peaks on 2 cores)",
    )
    parser.add_argument("--shoppers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7, help="seed of the event shapes")
    parser.add_argument(
        "--max-rate",
        type=int,
        default=20_000,
        help="sizes the pre-generated request pool (events/s the endpoint could reach)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="gunicorn WORKERS of the measured function (default: the stack's setting)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="gunicorn THREADS of the measured function (default: the stack's)",
    )
    parser.add_argument(
        "--stack-function",
        action="store_true",
        help="POST to the stack's own ingest_events (INGEST_URL), which writes to the stack's "
        "tables and its shopper-events topic (feeding the freezer), instead of an identical "
        "instance on its own port writing to bench-owned tables and topics",
    )
    parser.add_argument(
        "--full-io",
        action="store_true",
        help="the ceiling also does ingest's lookup (it always writes the index rows)",
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip phase 2")
    parser.add_argument(
        "--ceiling-processes",
        type=int,
        default=1,
        help="run the bare client in N processes sharing --concurrency (default 1: this process)",
    )
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also measure ceilings with the two tables written in parallel and/or "
        "publishing without ordering keys (what ingest could gain)",
    )
    parser.add_argument(
        "--keep-rows",
        action="store_true",
        help="--stack-function: leave the rows written in the stack's tables (deleted by default)",
    )
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    if args.stack_function and (args.workers or args.threads):
        parser.error("--stack-function measures the stack's instance as it runs: no --workers")
    if not 1 <= args.batch <= MAX_EVENTS_PER_REQUEST:
        parser.error(f"--batch must be 1..{MAX_EVENTS_PER_REQUEST}")
    if args.concurrency < 1 or args.seconds <= 0 or args.ceiling_processes < 1:
        parser.error("--concurrency, --seconds and --ceiling-processes must be positive")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    from emulators.stack import read_state
    from shared.system.resources import BIGTABLE_INSTANCE, SHOPPER_EVENTS_TOPIC

    settings = StackSettings()
    stack_env = read_stack_env(settings, stack_function=args.stack_function)
    os.environ.update(stack_env)
    pids = read_state(settings)
    info = machine()
    named_groups = dict(pids)  # every stack component: what else took CPU during a phase
    project, retailer_id = stack_env["GOOGLE_CLOUD_PROJECT"], stack_env["DEMO_RETAILER_ID"]
    stack_function = describe_function(stack_env["INGEST_URL"], "stack", pids.get(FUNCTION_NAME))

    count = (
        math.ceil(args.max_rate * (args.seconds + args.warmup) / args.batch) + 2 * args.concurrency
    )
    say(f"generating {count:,} requests of {args.batch} events (--max-rate {args.max_rate:,}) ...")
    started = time.monotonic()
    bodies = generate_bodies(count, args.batch, args.shoppers, args.seed)
    stats = body_stats(bodies)
    if stats["max_body_kb"] * 1024 > MAX_REQUEST_BYTES:
        raise BenchError(f"a generated request is {stats['max_body_kb']} KB, over the limit")
    check = build_records(retailer_id, bodies[:2])  # raises if the generator made a bad one
    say(
        f"  done in {time.monotonic() - started:.1f}s ({stats['mean_body_kb']} KB/request, "
        f"{len(check)} events checked valid)"
    )

    written: list[bytes] = []  # bodies whose rows may now be in the stack's tables
    phases: list[PhaseResult] = []
    measured = f"{FUNCTION_NAME} (measured)"
    with contextlib.ExitStack() as resources:
        if args.stack_function:
            target = Target(project, BIGTABLE_INSTANCE, SHOPPER_EVENTS_TOPIC, isolated=False)
            say(
                f"warning: every event goes to the stack's {SHOPPER_EVENTS_TOPIC} topic, and so "
                "to its subscribers (the freezer) too"
            )
        else:
            say("creating the bench's own Bigtable instance (ingest's tables) and topics ...")
            target = resources.enter_context(isolated_target(settings, project))
        os.environ.update(target.function_env())  # for the ceiling's ingest() too
        try:
            with contextlib.ExitStack() as serving:
                if args.stack_function:
                    function = stack_function
                    named_groups[measured] = named_groups.pop(FUNCTION_NAME, 0)
                else:
                    workers = args.workers or stack_function.workers
                    threads = args.threads or stack_function.threads
                    say(
                        f"starting {FUNCTION_NAME} as the stack serves it, on its own port, "
                        f"WORKERS={workers} THREADS={threads} ..."
                    )
                    function = serving.enter_context(
                        own_function(settings, stack_env, target, workers, threads)
                    )
                    named_groups[measured] = function.master_pid or 0
                say(
                    f"phase 1: endpoint {function.url} "
                    f"(WORKERS={function.workers} THREADS={function.threads})"
                )
                written = list(bodies)  # until the phase says how many it sent
                endpoint = measure_endpoint(
                    function,
                    stack_env["DEMO_API_KEY"],
                    bodies,
                    args.batch,
                    args.seconds,
                    args.warmup,
                    args.concurrency,
                    named_groups,
                )
                written = list(bodies[: endpoint.bodies_used])
            phases.append(endpoint)
            named_groups.pop(measured, None)
            if not args.no_ceiling:
                phases.extend(
                    ceiling_phases(
                        args, target, retailer_id, bodies, endpoint, written, named_groups
                    )
                )
        finally:
            if target.isolated:
                say("dropping the bench's Bigtable tables and topics")
            elif written and not args.keep_rows:
                say(f"removing the bench's rows from Bigtable ({len(written) * args.batch:,})")
                remove_rows(target, retailer_id, written)
    return {
        "machine": info,
        "function": asdict(function),
        "target": asdict(target),
        "load": {
            "batch": args.batch,
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "shoppers": args.shoppers,
            "seed": args.seed,
            **stats,
        },
        "phases": [asdict(p) for p in phases],
        "verdict": verdict(
            endpoint,
            next((p for p in phases if p.name == ADAPTERS.name), None),
            next((p for p in phases if p.name == RAW_GRPC.name), None),
        ),
    }


def ceiling_phases(
    args: argparse.Namespace,
    target: Target,
    retailer_id: str,
    bodies: Sequence[bytes],
    endpoint: PhaseResult,
    written: list[bytes],
    named_groups: dict[str, int],
) -> list[PhaseResult]:
    """Phase 2: as many events as the endpoint accepted, of the same shapes, fresh ids."""
    count = math.ceil(max(endpoint.events_accepted, args.batch * args.concurrency * 4) / args.batch)
    ceiling_bodies = [with_fresh_ids(bodies[n % len(bodies)]) for n in range(count)]
    written.extend(ceiling_bodies)
    events = count * args.batch
    many = args.ceiling_processes > 1
    who = f"{args.ceiling_processes} processes" if many else "this process"
    say(f"phase 2: ceiling, {events:,} events written and published by {who} ...")
    records = [] if many else build_records(retailer_id, ceiling_bodies)
    phases: list[PhaseResult] = []
    for variant in (ADAPTERS, RAW_GRPC, *(VARIANTS if args.variants else ())):
        if variant is not ADAPTERS:
            say(f"phase 2: {variant.name} ...")
        # The raw client is so fast that the same events would take a second: it repeats
        # them for as long as the endpoint was measured, so that its rate is a sustained one.
        min_seconds = args.seconds if variant.raw_grpc else 0.0
        if many:
            result = measure_ceiling_processes(
                target,
                retailer_id,
                ceiling_bodies,
                events,
                args.batch,
                args.concurrency,
                args.ceiling_processes,
                args.full_io,
                named_groups,
                variant,
                min_seconds,
            )
        else:
            result = measure_ceiling(
                target,
                records,
                args.batch,
                args.concurrency,
                args.full_io,
                named_groups,
                variant,
                min_seconds,
            )
        phases.append(result)
    return phases


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nJSON report: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
