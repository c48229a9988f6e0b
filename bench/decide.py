"""Decision latency: from the ingest acknowledgement to the experience readable from the
endpoint, on Complete Journey sessions at steady rates.

``python -m bench.decide [--rates 200,1000] [--seconds 60] [--delivery pull|push]``

1. A fresh retailer (its own API key) gets a default tree compiled from the data set's
   campaigns that are live now (the same compiler as ``cartwise compile-trees``).
2. Complete Journey sessions (the tracker simulator, all under that retailer) are posted to
   the ingest API at each steady rate, ``--batch`` events per request.
3. Every event: from its request's acknowledgement to its decision seen on
   ``shopper-experiences`` by a subscription of the bench's own. The decider writes the
   current experiences before it publishes, so this bounds the time to readable from above.
4. A sample of events (``--probes-per-s``): from the acknowledgement until the experiences
   endpoint answers that event (or a later one of the same shopper), asked once with
   ``?after=<event_id>&wait_ms=`` as a tracker does: readable from the endpoint.
5. The decider's own figures for the same period come from its log ("batch decided": how
   long the oldest event of a batch had waited since ingestion, the time to read, decide
   and write). Before each rate the bench waits for an idle machine (``--idle``).

``--delivery push`` measures the other shape on the same traffic: the events are published
straight to a bench topic whose push subscription calls the decision function
(``functions/decide_events/main.py``, served by functions-framework); the clock starts at
the publish acknowledgement. ``--pause-freezers`` stops the two BigQuery freezers during
the run (they resume after it and catch up; nothing is lost) to see what they cost the
decider on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.freeze import stack_env
from emulators import processes
from emulators import stack as local_stack
from emulators.config import ROOT, StackSettings
from shared.demo.probes import WAIT_MS, Prober, ProbingApi, Results, percentile
from shared.journey.replay import Answer, ReplaySummary, batches, replay
from shared.journey.tracker_simulator import Session

DEFAULT_WEEKS = "48-53"


class Progress:
    """One line, rewritten at most twice a second."""

    def __init__(self, rate: float, level: int, results: Results) -> None:
        self._rate, self._level, self._results = rate, level, results
        self._shown = 0.0

    def __call__(self, summary: ReplaySummary) -> None:
        if time.monotonic() - self._shown < 0.5:
            return
        self._shown = time.monotonic()
        done = self._results.latencies_s.get(self._level, [])
        print(
            f"\r  {self._rate:>6,.0f} events/s target: sent {summary.sent:,}  "
            f"{summary.events_per_s:,.0f} events/s  probes {len(done):,}  "
            f"p95 {1000 * percentile(done, 0.95):,.0f} ms ",
            end="",
            file=sys.stderr,
            flush=True,
        )


class DecisionTap:
    """A subscription of the bench's own on ``shopper-experiences``: when each event's
    decision is published. The decider writes the current experiences before it
    publishes, so an event is readable from the endpoint by then (an upper bound)."""

    def __init__(self, project: str, run_id: str, results: Results) -> None:
        from shared.platform import clients
        from shared.system.resources import SHOPPER_EXPERIENCES_TOPIC

        self._subscriber = clients.subscriber_client()
        self._path = self._subscriber.subscription_path(project, f"bench-decide-{run_id}")
        self._subscriber.create_subscription(
            request={
                "name": self._path,
                "topic": clients.topic_path(project, SHOPPER_EXPERIENCES_TOPIC),
                "ack_deadline_seconds": 60,
            },
            timeout=10,
        )
        self._results = results
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from google.api_core.exceptions import DeadlineExceeded

        from shared.platform.pubsub_pull import pull_batch, settle

        while not self._stop.is_set():
            try:
                batch = pull_batch(self._subscriber, self._path, 1000, 0.0)
            except DeadlineExceeded:
                continue
            seen = time.monotonic()
            with self._results.lock:
                for received in batch:
                    event_id = received.message.attributes.get("event_id", "")
                    self._results.published.setdefault(event_id, seen)
            if batch:
                settle(self._subscriber, self._path, batch, ack=True)

    def wait_for(self, level: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._results.published_latencies(level)[1]:
            time.sleep(0.5)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=20)
        self._subscriber.delete_subscription(subscription=self._path, timeout=10)


class PublishingApi:
    """``EventApi`` for ``--delivery push``: publishes the events as ingest would, to a topic
    of the bench's own, and answers 202 once Pub/Sub acknowledged them."""

    def __init__(self, topic: str) -> None:
        from shared.platform import clients

        self._publisher = clients.publisher_api()
        self._topic = topic

    def post(self, retailer_id: str, events: list[dict[str, Any]]) -> Answer:
        from google.pubsub_v1.types import PubsubMessage

        started = time.perf_counter()
        ingested_at = datetime.now(UTC).isoformat()
        self._publisher.publish(
            topic=self._topic,
            messages=[
                PubsubMessage(
                    data=json.dumps(
                        {"retailer_id": retailer_id, "ingested_at": ingested_at, "event": e},
                        separators=(",", ":"),
                    ).encode(),
                    attributes={
                        "event_id": e["event_id"],
                        "type": e["type"],
                        "retailer_id": retailer_id,
                        "schema_version": str(e.get("schema_version", 1)),
                    },
                    ordering_key=f"{retailer_id}#{e['shopper_id']}",
                )
                for e in events
            ],
            timeout=60,
        )
        return Answer(202, {"accepted": len(events)}, None, time.perf_counter() - started)


def set_up_retailer(project: str, retailer: str, now: datetime) -> tuple[str, dict[str, Any]]:
    """A fresh retailer: its API key, and its default tree from the campaigns live now."""
    from shared.decisions.bigtable_state import BigtableTrees
    from shared.decisions.compiler import compile_default_tree
    from shared.journey.campaigns import import_campaigns
    from shared.journey.tracker_simulator import Simulation, default_shift_weeks
    from shared.platform import clients
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.keys import new_api_key, register_api_key
    from shared.system.resources import BIGTABLE_INSTANCE, CREDENTIALS_DATABASE

    api_key = new_api_key()
    store = FirestoreApiKeyStore(clients.firestore_client(project, CREDENTIALS_DATABASE))
    register_api_key(store, retailer, api_key, now)
    simulation = Simulation(shift_weeks=default_shift_weeks(now), retailers=(retailer,))
    live = [c for c in import_campaigns(simulation, now).campaigns if c.status == "active"]
    tree = compile_default_tree(retailer, live, now)
    BigtableTrees(clients.bigtable_client(project), BIGTABLE_INSTANCE).put([tree])
    return api_key, {
        "tree_version": tree.tree_version,
        "live_campaigns": len(tree.campaigns),
        "nodes": len(tree.nodes),
        "experiences": len(tree.experiences),
    }


def traffic(retailer: str, weeks: str, now: datetime) -> Iterator[Session]:
    """The weeks' sessions in time order, every store under the bench retailer."""
    from shared.journey import dataset as journey
    from shared.journey.tracker_simulator import Simulation, default_shift_weeks, sessions

    simulation = Simulation(shift_weeks=default_shift_weeks(now), retailers=(retailer,))
    baskets = journey.baskets(journey.parse_weeks(weeks))
    return sessions(baskets, journey.products(), simulation, now)


def decider_batches(log_file: Path, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """The decider's "batch decided" log entries between two instants."""
    found = []
    with log_file.open() as lines:
        for line in lines:
            if '"batch decided"' not in line:
                continue
            entry = json.loads(line)
            if since <= datetime.fromisoformat(entry["time"]) <= until:
                found.append(entry)
    return found


def decider_figures(entries: list[dict[str, Any]]) -> dict[str, Any]:
    events = sum(e["events"] for e in entries)
    if not events:
        return {"batches": 0, "events": 0}
    busy = [e["read_s"] + e["decide_s"] + e["write_s"] for e in entries]
    return {
        "batches": len(entries),
        "events": events,
        "events_per_batch": round(events / len(entries), 1),
        "waited_ms": {
            "p50": round(1000 * percentile([e["waited_s"] for e in entries], 0.5), 1),
            "p95": round(1000 * percentile([e["waited_s"] for e in entries], 0.95), 1),
        },
        "batch_ms": {
            "p50": round(1000 * percentile(busy, 0.5), 1),
            "p95": round(1000 * percentile(busy, 0.95), 1),
            "p99": round(1000 * percentile(busy, 0.99), 1),
        },
        "per_event_ms": {
            "read": round(1000 * sum(e["read_s"] for e in entries) / events, 3),
            "decide": round(1000 * sum(e["decide_s"] for e in entries) / events, 3),
            "write": round(1000 * sum(e["write_s"] for e in entries) / events, 3),
        },
    }


def idle_share(seconds: float = 2.0) -> float:
    """The machine's idle CPU share over ``seconds`` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_for_idle(threshold: float, timeout_s: float) -> float:
    """Wait until the machine is idle enough (the freezers have caught up with the last
    level, say); return the idle share reached."""
    deadline = time.monotonic() + timeout_s
    share = idle_share()
    while share < threshold and time.monotonic() < deadline:
        print(f"\r  waiting for an idle machine: {share:.0%} idle ", end="", file=sys.stderr)
        share = idle_share()
    print(file=sys.stderr)
    return share


@contextmanager
def paused(settings: StackSettings, names: tuple[str, ...], enabled: bool) -> Iterator[None]:
    pids = [pid for name, pid in local_stack.read_state(settings).items() if name in names]
    if enabled:
        for pid in pids:
            os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        if enabled:
            for pid in pids:
                os.killpg(pid, signal.SIGCONT)


@contextmanager
def push_delivery(settings: StackSettings, project: str, run_id: str) -> Iterator[str]:
    """A bench topic whose push subscription calls the decision function; yields the topic."""
    from emulators.bootstrap import push_endpoint
    from shared.platform import clients

    decider = next(c for c in local_stack.components(settings) if c.name == "decide_events")
    env = {k: v for k, v in decider.env.items() if k != "WORKER_HEARTBEAT_FILE"}
    port = processes.free_port(settings.host)
    pid = processes.start(
        [
            str(settings.venv_bin / "functions-framework"),
            "--source",
            str(ROOT / "functions" / "decide_events" / "main.py"),
            "--target",
            "decide_event",
            "--signature-type",
            "cloudevent",
            "--host",
            settings.host,
            "--port",
            str(port),
        ],
        log_file=settings.logs_dir / f"bench-decide_events-push-{port}.log",
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        cwd=ROOT,
    )
    publisher = clients.publisher_api()
    subscriber = clients.subscriber_client()
    topic_id = f"bench-decide-push-{run_id}"
    topic = clients.topic_path(project, topic_id)
    subscription = subscriber.subscription_path(project, topic_id)
    try:
        if not processes.wait_until(lambda: processes.port_is_open(settings.host, port), 60):
            raise RuntimeError("the push function did not start")
        publisher.create_topic(name=topic, timeout=10)
        subscriber.create_subscription(
            request={
                "name": subscription,
                "topic": topic,
                "push_config": {"push_endpoint": push_endpoint(settings, port, topic_id)},
                "ack_deadline_seconds": 30,
                "enable_message_ordering": True,
            },
            timeout=10,
        )
        yield topic
    finally:
        subscriber.delete_subscription(subscription=subscription, timeout=10)
        publisher.delete_topic(topic=topic, timeout=10)
        processes.stop_group(pid)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from shared.journey.http_event_api import HttpEventApi

    settings = StackSettings()
    env = stack_env(settings)
    project = env["GOOGLE_CLOUD_PROJECT"]
    run_id = uuid.uuid4().hex[:8]
    retailer = f"bench-decide-{run_id}"
    now = datetime.now(UTC)
    print(f"retailer {retailer}: API key and default tree ...", flush=True)
    api_key, tree = set_up_retailer(project, retailer, now)
    print(f"  {json.dumps(tree)}", flush=True)
    print(f"Complete Journey weeks {args.weeks} ...", flush=True)
    stream = traffic(retailer, args.weeks, now)
    results = Results()
    prober = Prober(env["EXPERIENCES_URL"], {retailer: api_key}, results)
    tap = DecisionTap(project, run_id, results) if args.tap else None
    levels: list[dict[str, Any]] = []
    with (
        paused(settings, ("freeze_events", "freeze_decisions"), args.pause_freezers),
        push_delivery(settings, project, run_id)
        if args.delivery == "push"
        else _nothing(env["INGEST_URL"]) as target,
    ):
        inner: Any = (
            PublishingApi(target)
            if args.delivery == "push"
            else HttpEventApi(target, {retailer: api_key})
        )
        for level, rate in enumerate(args.rates):
            # Built before the clock starts: a stall inside the send loop would make the
            # pacer catch up with a burst.
            to_send = list(batches(stream_of(stream, int(rate * args.seconds)), args.batch))
            # Probes are drawn per (request, shopper): about one shopper per request.
            per_request = args.probes_per_s * args.batch / rate
            api = ProbingApi(inner, prober, results, min(1.0, per_request), args.warmup, seed=level)
            idle = wait_for_idle(args.idle, args.idle_timeout)
            api.level, api.level_started = level, time.monotonic()
            started_at = datetime.now(UTC)

            summary = replay(
                iter(to_send),
                api,
                concurrency=args.concurrency,
                rate=rate,
                progress=Progress(rate, level, results),
            )
            prober.drain()
            if tap is not None:
                tap.wait_for(level, args.drain_timeout)
            ended_at = datetime.now(UTC)
            print(file=sys.stderr)
            time.sleep(1.0)  # the decider's last log lines
            entries = decider_batches(
                settings.logs_dir / "decide_events.log"
                if args.delivery == "pull"
                else _push_log(settings),
                started_at,
                ended_at,
            )
            latencies = results.latencies_s.get(level, [])
            published, undecided = results.published_latencies(level)
            levels.append(
                {
                    "target_events_per_s": rate,
                    "idle_before": round(idle, 2),
                    "events_per_s": round(summary.events_per_s, 1),
                    "sent": summary.sent,
                    "accepted": summary.accepted,
                    "failed_batches": summary.failed_batches,
                    "ingest_ack_ms": {
                        "p50": round(summary.latency_ms(0.5), 1),
                        "p95": round(summary.latency_ms(0.95), 1),
                    },
                    "published_ms": {
                        "events": len(published),
                        "undecided": undecided,
                        "p50": round(1000 * percentile(published, 0.5), 1),
                        "p95": round(1000 * percentile(published, 0.95), 1),
                        "p99": round(1000 * percentile(published, 0.99), 1),
                        "max": round(1000 * max(published, default=0.0), 1),
                    },
                    "readable_ms": {
                        "samples": len(latencies),
                        "timeouts": results.timeouts.get(level, 0),
                        "p50": round(1000 * percentile(latencies, 0.5), 1),
                        "p95": round(1000 * percentile(latencies, 0.95), 1),
                        "p99": round(1000 * percentile(latencies, 0.99), 1),
                        "max": round(1000 * max(latencies, default=0.0), 1),
                    },
                    "decider": decider_figures(entries),
                }
            )
    prober.close()
    if tap is not None:
        tap.close()
    return {
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "delivery": args.delivery,
        "freezers_paused": args.pause_freezers,
        "tap": args.tap,
        "weeks": args.weeks,
        "batch": args.batch,
        "wait_ms": WAIT_MS,
        "warmup_s": args.warmup,
        "tree": tree,
        "levels": levels,
        "probe_poll_errors": results.poll_errors,
        # The end-to-end figures include the answering GET: its own time, for scale.
        "answering_get_ms": {
            "p50": round(1000 * percentile(results.answer_times_s, 0.5), 1),
            "p95": round(1000 * percentile(results.answer_times_s, 0.95), 1),
        },
    }


@contextmanager
def _nothing(value: str) -> Iterator[str]:
    yield value


def _push_log(settings: StackSettings) -> Path:
    logs = sorted(
        settings.logs_dir.glob("bench-decide_events-push-*.log"), key=lambda p: p.stat().st_mtime
    )
    return logs[-1]


def stream_of(sessions: Iterator[Session], events: int) -> Iterator[Session]:
    """Whole sessions from the stream until ``events`` events are reached."""
    count = 0
    for session in sessions:
        yield session
        count += len(session.events)
        if count >= events:
            return


def print_table(report: dict[str, Any]) -> None:
    print(
        f"\ndecisions, {report['delivery']} delivery"
        f"{', freezers paused' if report['freezers_paused'] else ''} "
        f"({report['machine']['cores']} cores, {report['machine']['date']})"
    )
    print(
        "ingest ack -> decision published (every event) | ack -> readable from the endpoint "
        "(sampled probes)"
    )
    print(
        f"{'target/s':>9} {'sent/s':>7} {'events':>7} {'p50':>6} {'p95':>6} {'p99':>6} "
        f"{'undecided':>9} | {'probes':>6} {'p50':>6} {'p95':>6} {'p99':>6} {'timeouts':>8}"
    )
    for level in report["levels"]:
        pub, readable = level["published_ms"], level["readable_ms"]
        print(
            f"{level['target_events_per_s']:>9,.0f} {level['events_per_s']:>7,.0f} "
            f"{pub['events']:>7} {pub['p50']:>6,.0f} {pub['p95']:>6,.0f} {pub['p99']:>6,.0f} "
            f"{pub['undecided']:>9} | {readable['samples']:>6} {readable['p50']:>6,.0f} "
            f"{readable['p95']:>6,.0f} {readable['p99']:>6,.0f} {readable['timeouts']:>8}"
        )
    get = report["answering_get_ms"]
    print(f"(ms; the answering GET itself: p50 {get['p50']} ms, p95 {get['p95']} ms)")
    for level in report["levels"]:
        decider = level["decider"]
        per_event = decider.get("per_event_ms")
        if per_event:
            print(
                f"decider at {level['target_events_per_s']:,.0f}/s: {decider['batches']} "
                f"batches of {decider['events_per_batch']} events, oldest event waited p95 "
                f"{decider['waited_ms']['p95']:,.0f} ms, batch p95 {decider['batch_ms']['p95']} "
                f"ms; per event: read {per_event['read']} ms, decide {per_event['decide']} ms, "
                f"write {per_event['write']} ms"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.decide", description=__doc__)
    parser.add_argument(
        "--rates", type=lambda t: [float(r) for r in t.split(",")], default=[200.0, 1000.0]
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="per rate")
    parser.add_argument("--weeks", default=DEFAULT_WEEKS)
    parser.add_argument("--batch", type=int, default=20, help="events per request")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--probes-per-s", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds not probed per rate")
    parser.add_argument(
        "--idle", type=float, default=0.7, help="idle CPU share awaited before each rate"
    )
    parser.add_argument("--idle-timeout", type=float, default=300.0)
    parser.add_argument(
        "--drain-timeout", type=float, default=120.0, help="seconds to wait for the decisions"
    )
    parser.add_argument(
        "--no-tap",
        dest="tap",
        action="store_false",
        help="no subscription of the bench's own on shopper-experiences (it doubles the "
        "Pub/Sub emulator's deliveries): the sampled probes only",
    )
    parser.add_argument("--delivery", choices=("pull", "push"), default="pull")
    parser.add_argument("--pause-freezers", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(args)
    print_table(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    ok = all(
        level["failed_batches"] == 0
        and (not report["tap"] or level["published_ms"]["undecided"] == 0)
        and level["readable_ms"]["samples"] > 0
        for level in report["levels"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
