"""The tracker in a real browser: from an event's ``track()`` call to its experience rendered
on the page, while the stack absorbs background replay traffic (``make bench-tracker``).

1. A fresh retailer with the default tree of the Complete Journey campaigns live today
   (``bench.decide.set_up_retailer``), and a publishable key of its own for the bench
   page's origin; its shoppers are signed with the retailer's identity secret.
2. Background traffic: Complete Journey sessions posted to the ingest API at
   ``--background`` events/s (100) by the replay, from the first to the last browser event.
3. Debian's headless Chromium (Selenium) opens the bench page, served on its own origin
   with the tracker's browser build (``tracker/dist/cartwise.min.js``). For each of
   ``--events`` events (300), one at a time, the page calls ``productAddedToBasket`` (a
   product some live campaign targets), and marks ``performance.now()`` at the call and
   when ``onExperiences`` delivered that event's experiences and the page rendered them
   (after the next animation frame). A new shopper every ``--per-shopper`` events.
4. Beside it, from the stores: each answer's ``decided_at`` (the decider's clock when it
   decided the batch) minus its ``occurred_at`` (the tracker's clock at ``track()``: the
   same machine), i.e. how long the event took to be decided; and the decider's own log
   figures ("batch decided") for the same period.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.decide import decider_batches, decider_figures, set_up_retailer, stream_of, traffic
from bench.freeze import stack_env
from emulators import processes
from emulators.chromium import headless_chromium
from emulators.config import ROOT, StackSettings
from shared.demo.probes import percentile
from shared.journey.replay import batches, replay

PAGE = Path(__file__).with_name("tracker_page.html")  # the page that measures


class Progress:
    def __init__(self) -> None:
        self._shown = 0.0

    def __call__(self, done: int, total: int, latest_ms: float | None) -> None:
        if time.monotonic() - self._shown < 0.5 and done < total:
            return
        self._shown = time.monotonic()
        last = f"  last {latest_ms:,.0f} ms" if latest_ms is not None else ""
        print(f"\r  browser events {done:,}/{total:,}{last} ", end="", file=sys.stderr, flush=True)


@contextmanager
def served_page(host: str) -> Iterator[str]:
    """The bench page and the tracker's build on an origin of their own."""
    build = ROOT / "tracker" / "dist" / "cartwise.min.js"
    if not build.exists():
        sys.exit("tracker/dist/cartwise.min.js is missing: `cd tracker && npm run build`")
    with tempfile.TemporaryDirectory(prefix="bench-tracker-") as folder:
        shutil.copy(PAGE, Path(folder) / "index.html")
        shutil.copy(build, Path(folder) / "cartwise.min.js")
        port = processes.free_port(host)
        handler = functools.partial(Quiet, directory=folder)
        server = http.server.ThreadingHTTPServer((host, port), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.shutdown()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def targeted_products(retailer: str, now: datetime) -> list[str]:
    """Products the live campaigns target (an experience may follow their basket adds)."""
    from shared.journey.campaigns import import_campaigns
    from shared.journey.tracker_simulator import Simulation, default_shift_weeks

    simulation = Simulation(shift_weeks=default_shift_weeks(now), retailers=(retailer,))
    live = [c for c in import_campaigns(simulation, now).campaigns if c.status == "active"]
    products = sorted({p for c in live for p in c.targeted_product_ids})
    return products or ["1082185"]


def issue_page_key(project: str, retailer: str, origin: str, now: datetime) -> str:
    from shared.platform import clients
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.keys import issue_api_key
    from shared.system.resources import CREDENTIALS_DATABASE

    store = FirestoreApiKeyStore(clients.firestore_client(project, CREDENTIALS_DATABASE))
    return issue_api_key(store, retailer, now, "publishable", (origin,))


def background(
    env: dict[str, str],
    retailer: str,
    api_key: str,
    rate: float,
    ready: threading.Event,
    stop: threading.Event,
) -> dict[str, Any]:
    """Replay sessions at ``rate`` events/s until ``stop`` (``ready`` once the data set is
    read and the first requests go); what was sent, counted."""
    from shared.journey.http_event_api import HttpEventApi

    now = datetime.now(UTC)
    stream = traffic(retailer, "48-53", now)
    api = HttpEventApi(env["INGEST_URL"], {retailer: api_key})
    figures: dict[str, Any] = {"sent": 0, "accepted": 0, "failed_batches": 0, "seconds": 0.0}
    chunk = list(batches(stream_of(stream, int(rate * 10)), 20))  # ten seconds' worth
    ready.set()
    started = time.monotonic()
    while not stop.is_set() and chunk:
        summary = replay(iter(chunk), api, concurrency=4, rate=rate)
        figures["sent"] += summary.sent
        figures["accepted"] += summary.accepted
        figures["failed_batches"] += summary.failed_batches
        chunk = list(batches(stream_of(stream, int(rate * 10)), 20))
    figures["seconds"] = round(time.monotonic() - started, 1)
    figures["events_per_s"] = round(figures["sent"] / max(figures["seconds"], 1e-9), 1)
    return figures


def quantiles(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50": round(percentile(values, 0.5), 1),
        "p95": round(percentile(values, 0.95), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values, default=0.0), 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from shared.retailers.identity import identity_secret, shopper_signature

    settings = StackSettings()
    env = stack_env(settings)
    project = env["GOOGLE_CLOUD_PROJECT"]
    run_id = uuid.uuid4().hex[:8]
    retailer = f"bench-tracker-{run_id}"
    now = datetime.now(UTC)
    print(f"retailer {retailer}: keys and default tree ...", flush=True)
    secret_key, tree = set_up_retailer(project, retailer, now)
    products = targeted_products(retailer, now)
    secret = identity_secret(env["SHOPPER_IDENTITY_KEY"], retailer, 1)
    shoppers = []
    for index in range(0, args.events, args.per_shopper):
        shopper = f"bench-{run_id}-{index // args.per_shopper}"
        count = min(args.per_shopper, args.events - index)
        shoppers.append(
            {
                "id": shopper,
                "signature": shopper_signature(secret, shopper),
                "products": [products[(index + i) % len(products)] for i in range(count)],
            }
        )
    ready, stop = threading.Event(), threading.Event()
    figures: dict[str, Any] = {}
    with served_page(settings.host) as origin, headless_chromium() as browser:
        plan = {
            "eventsUrl": env["INGEST_URL"],
            "experiencesUrl": env["EXPERIENCES_URL"],
            "playsUrl": env["PLAYS_URL"],
            "key": issue_page_key(project, retailer, origin, now),
            "shoppers": shoppers,
            "pauseMs": args.pause_ms,
        }
        browser.get(origin + "/index.html")

        def load() -> None:
            figures.update(background(env, retailer, secret_key, args.background, ready, stop))

        sender = threading.Thread(target=load, daemon=True)
        sender.start()
        print("background replay: reading the data set ...", flush=True)
        if not ready.wait(300):
            sys.exit("the background replay did not start")
        time.sleep(args.warmup)
        started_at = datetime.now(UTC)
        browser.execute_script("run(arguments[0]);", plan)
        progress = Progress()
        while True:
            state = browser.execute_script(
                "return {n: window.bench.results.length, done: window.bench.done,"
                " last: (window.bench.results.at(-1) || {}).ms};"
            )
            progress(state["n"], args.events, state.get("last"))
            if state["done"]:
                break
            time.sleep(0.5)
        ended_at = datetime.now(UTC)
        outcome = browser.execute_script("return window.bench;")
        stop.set()
        sender.join(timeout=60)
    print(file=sys.stderr)
    results = outcome["results"]
    rendered = [r["ms"] for r in results if not r.get("timeout")]
    decided = [
        1000
        * (
            datetime.fromisoformat(r["decided_at"]) - datetime.fromisoformat(r["occurred_at"])
        ).total_seconds()
        for r in results
        if not r.get("timeout")
    ]
    entries = decider_batches(settings.logs_dir / "decide_events.log", started_at, ended_at)
    return {
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "browser_events": len(results),
        "timeouts": sum(1 for r in results if r.get("timeout")),
        "with_experiences": sum(1 for r in results if r.get("experiences")),
        "errors": outcome["errors"][:20],
        "track_to_rendered_ms": quantiles(rendered),
        "track_to_decided_ms": quantiles(decided),
        "background": figures,
        "decider": decider_figures(entries),
        "tree": tree,
        "shoppers": len(shoppers),
    }


def print_table(report: dict[str, Any]) -> None:
    machine = report["machine"]
    print(
        f"\ntracker in headless Chromium ({machine['cores']} cores, {machine['date']}), "
        f"background {report['background'].get('events_per_s', 0):,.0f} events/s"
    )
    print(f"{'':<34} {'count':>6} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")
    for label, key in (
        ("track() -> experience rendered", "track_to_rendered_ms"),
        ("track() -> decided (stores)", "track_to_decided_ms"),
    ):
        q = report[key]
        print(
            f"{label:<34} {q['count']:>6} {q['p50']:>7,.0f} {q['p95']:>7,.0f} "
            f"{q['p99']:>7,.0f} {q['max']:>7,.0f}"
        )
    decider = report["decider"]
    if decider.get("batches"):
        print(
            f"decider: {decider['batches']} batches of {decider['events_per_batch']} events, "
            f"oldest event waited p95 {decider['waited_ms']['p95']:,.0f} ms, "
            f"batch p95 {decider['batch_ms']['p95']} ms"
        )
    print(
        f"(ms; {report['timeouts']} timeouts; {report['with_experiences']} answers with "
        f"experiences; errors: {len(report['errors'])})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.tracker", description=__doc__)
    parser.add_argument("--events", type=int, default=300, help="browser events measured")
    parser.add_argument("--per-shopper", type=int, default=20)
    parser.add_argument("--background", type=float, default=100.0, help="events/s replayed")
    parser.add_argument("--pause-ms", type=int, default=100, help="between browser events")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of background first")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(args)
    print_table(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    measured = report["track_to_rendered_ms"]["count"]
    return 0 if measured >= args.events and not report["timeouts"] else 1


if __name__ == "__main__":
    sys.exit(main())
