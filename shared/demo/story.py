"""`make demo`: the whole story on the Complete Journey data, on the local stack.

1. The stack is up (``make demo`` depends on ``make up``).
2. History: the data set's campaigns are imported and weeks 1-44 are backfilled into the
   cold read models, shifted so that the replayed weeks end now.
3. The nightly workflow runs on the workflows emulator (features, training, evaluation
   against the baselines, gate, scoring, tree compilation, publication) and prints its
   evaluation table.
4. A CSM creates a gamified promotion through the campaigns API ("buy these products of
   brand X and play to win your basket": minimum spend, odds, prize, budget, control
   share; ``shared/demo/game.py``), live in seconds. Then the following weeks' shoppers
   (a seeded sample of households) are replayed through the
   Shopper Event API at a steady rate; trackers fetch their experiences as they go (a
   sample of events, polled on the experiences endpoint), with a live progress line. A
   few events leak an e-mail address, as a buggy tracker would: they must be refused.
   With ``respond`` (``cartwise demo``'s default; ``--aa`` turns it off) the shoppers
   respond to what they are shown (``shared/journey/responding.py``): each session asks
   the experiences API at its decision points, and the truth the model injected is kept;
   invitations to play (qualifying orders confirmed by the retailer's back end) are played
   with the model's probability through the plays API, and wins claimed with an e-mail
   address (into the rewards vault only).
5. Once the freezers have caught up, the report is read back from the stores
   (``shared/demo/stores.py``), printed and saved as HTML with charts under
   ``.local/reports/``; with responding shoppers, the truth beside the campaign report's
   own uplift, per campaign (and in ``truth-<stamp>.json``); the game: invitations,
   participation, wins, cost against the budget and the rewards ledger.
6. The stack stays up (``make down`` stops it).

The knobs (``DemoOptions``; ``cartwise demo --help``) make it faster or bigger.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.demo.game import GameRules
from shared.demo.probes import percentile
from shared.journey.replay import Answer, EventApi, ReplaySummary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoOptions:
    history_weeks: tuple[int, int] = (1, 44)
    replay_weeks: tuple[int, int] = (45, 45)
    households: int | None = 300  # replayed households, a seeded sample (None or 0: all)
    history_households: int | None = 1_200  # a seeded sample (None or 0: all): under 15 min
    rate: float = 150.0  # events/s through the Shopper Event API
    probes_per_s: float = 5.0  # tracker fetches of experiences, sampled
    leak_every: int = 1_000  # one event in this many leaks an e-mail address (refused)
    seed: int = 8451
    sample_seed: int | None = None  # which households are replayed (default: ``seed``)
    skip_history: bool = False  # reuse the history (and trees) a previous run loaded
    # Shoppers respond to what they are shown (shared/journey/response.py); False: the A/A
    # replay (``cartwise demo --aa``), where they buy what they bought whatever they see.
    respond: bool = False
    # The CSM's game (shared/demo/game.py): minimum spend, odds, prize, budget, control.
    game: GameRules = field(default_factory=GameRules)
    reports_dir: Path = Path(".local") / "reports"


@dataclass
class DemoOutcome:
    code: int  # the process exit code: non-zero if a step failed
    figures: Any = None  # DemoFigures, once the report is read back
    truth: Any = None  # the responding replay's injected truth (``responding.Truth``)
    replay: ReplaySummary | None = None
    leaked: int = 0  # events sent with an e-mail address (each must be refused)
    report: Path | None = None


@dataclass
class Step:
    name: str
    seconds: float = 0.0


class LeakyTracker:
    """An ``EventApi`` that, every ``every`` events, adds a copy of one event carrying an
    e-mail address, as a buggy tracker would. The API must refuse each of them."""

    def __init__(self, inner: EventApi, every: int, seed: int) -> None:
        self._inner = inner
        self._every = every
        self._random = random.Random(seed)
        self._since_leak = 0
        self.leaked = 0

    def post(self, retailer_id: str, events: list[dict[str, Any]]) -> Answer:
        self._since_leak += len(events)
        if self._every and self._since_leak >= self._every and events:
            self._since_leak = 0
            model = self._random.choice(events)
            leak = {
                **model,
                "event_id": str(uuid.UUID(int=self._random.getrandbits(128), version=4)),
                "payload": {**model.get("payload", {}), "email": "shopper@example.org"},
            }
            events = [*events, leak]
            self.leaked += 1
        return self._inner.post(retailer_id, events)


def _heading(number: int, text: str) -> None:
    print(f"\n== {number}/6 {text}", flush=True)


def late_window_shift(
    shift_weeks: int, paid_at: list[datetime], oldest: datetime, now: datetime
) -> int:
    """The whole-week shift, near ``shift_weeks``, that puts the most of these payment
    times (naive, data set time) between ``oldest`` and ``now``: one more week first (the
    replayed week then ends after now), then the story's own, then two more. With a fixed
    one more week, a replay started early on a Monday found no basket in its window."""

    def inside(weeks: int) -> int:
        moved = timedelta(weeks=weeks)
        return sum(oldest <= at.replace(tzinfo=UTC) + moved <= now for at in paid_at)

    return max((shift_weeks + 1, shift_weeks, shift_weeks + 2), key=inside)


def shift_weeks(options: DemoOptions, now: datetime) -> int:
    """The data set moved so that the last replayed week ends this week."""
    from shared.journey import dataset as journey
    from shared.journey.tracker_simulator import default_shift_weeks

    return default_shift_weeks(now) + (journey.LAST_WEEK - options.replay_weeks[1])


def run(options: DemoOptions, env: dict[str, str]) -> DemoOutcome:
    """The story, step by step, printed as it goes."""
    from shared.decisions.commands import compile_trees_command
    from shared.journey.commands import backfill_command, import_campaigns_command
    from shared.journey.tracker_simulator import Simulation
    from shared.nightly.commands import nightly_command

    started = time.monotonic()
    steps: list[Step] = []
    now = datetime.now(UTC)
    shift = shift_weeks(options, now)
    simulation = Simulation(seed=options.seed, shift_weeks=shift)
    _heading(1, "the local stack is up")
    for name in ("INGEST_URL", "EXPERIENCES_URL", "NIGHTLY_STEPS_URL", "WORKFLOWS_EMULATOR_URL"):
        print(f"   {name:<24} {env.get(name, '-')}")
    print(
        f"   Complete Journey shifted {shift} weeks: week {options.replay_weeks[1]} ends "
        f"this week (seed {options.seed})"
    )

    run_id: str | None = None
    gate_passed: bool | None = None
    if options.skip_history:
        _heading(2, "history: kept from a previous run (--skip-history)")
        _heading(3, "nightly: kept from a previous run (--skip-history)")
    else:
        _heading(
            2,
            f"history: the data set's campaigns, then weeks {options.history_weeks[0]}-"
            f"{options.history_weeks[1]} backfilled into the cold read models",
        )
        step = Step("history")
        t0 = time.monotonic()
        code = import_campaigns_command(_args(seed=options.seed, shift_weeks=shift))
        if code == 0:  # the retailers' default trees, whatever the nightly gate decides
            code = compile_trees_command(_args(retailer=list(simulation.retailers)))
        if code == 0:
            code = backfill_command(
                _args(
                    weeks=options.history_weeks,
                    households=options.history_households,
                    seed=options.seed,
                    shift_weeks=shift,
                    workers=2,
                    dataset=None,
                )
            )
        step.seconds = time.monotonic() - t0
        steps.append(step)
        if code != 0:
            print("the history could not be loaded", file=sys.stderr)
            return DemoOutcome(code)

        _heading(3, "the nightly workflow: features, training, evaluation, trees")
        step = Step("nightly")
        t0 = time.monotonic()
        run_id = f"demo-{now:%Y%m%d-%H%M%S}"
        code = nightly_command(_args(run_id=run_id, cutoff=None, json=False))
        step.seconds = time.monotonic() - t0
        steps.append(step)
        gate_passed = code == 0
        if code not in (0, 3):  # 3: the gate refused the model; the default trees serve
            print("the nightly run failed", file=sys.stderr)
            return DemoOutcome(code)
        if code == 3:
            print("   the gate refused the model: the shoppers get the default trees")

    _heading(
        4,
        f"replay: weeks {options.replay_weeks[0]}-{options.replay_weeks[1]}, "
        f"{options.households or 'all'} households, {options.rate:,.0f} events/s through the "
        "Shopper Event API; trackers fetch their experiences",
    )
    t0 = time.monotonic()
    game = _create_game(options, simulation, env, now)
    since = datetime.now(UTC)
    truth = None
    if options.respond:
        summary, leaked, probe_latencies, truth = _responding_replay(options, simulation, env, now)
    else:
        summary, leaked, probe_latencies = _replay(options, simulation, env, now)
    replay_step = Step("replay", time.monotonic() - t0)
    steps.append(replay_step)
    print(
        f"   sent {summary.sent:,} events ({leaked} leaking an e-mail address): accepted "
        f"{summary.accepted:,}, rejected {summary.rejected:,}, duplicates "
        f"{summary.duplicates:,}, failed {summary.failed_events:,} in {summary.seconds:.0f}s; "
        f"experiences fetched by trackers: p50 {1000 * percentile(probe_latencies, 0.5):,.0f}"
        f" ms, p95 {1000 * percentile(probe_latencies, 0.95):,.0f} ms after the ingest "
        f"acknowledgement ({len(probe_latencies)} fetches)"
    )

    _heading(5, "the report, read back from the stores")
    t0 = time.monotonic()
    figures = _report(options, env, since, simulation.retailers, run_id, summary.accepted)
    figures.gate_passed = gate_passed
    if game is not None:
        figures.game = _game_figures(env, game, truth)
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}"
    if truth is not None:
        # The truth is written beside the report for its reader; the campaign report's code
        # never reads it (it measures from the stores alone).
        options.reports_dir.mkdir(parents=True, exist_ok=True)
        told = truth.as_dict()
        (options.reports_dir / f"truth-{stamp}.json").write_text(json.dumps(told, indent=1))
        _true_vs_measured(figures, told, env)
    figures.notes.append(
        f"Trackers' own view (replay side, for comparison): experiences readable "
        f"p95 {1000 * percentile(probe_latencies, 0.95):,.0f} ms after the ingest "
        f"acknowledgement over {len(probe_latencies)} sampled fetches."
    )
    from shared.demo.report import render_html, render_text

    print(render_text(figures))
    options.reports_dir.mkdir(parents=True, exist_ok=True)
    html_path = options.reports_dir / f"demo-{stamp}.html"
    page = render_html(figures)
    html_path.write_text(page)
    (options.reports_dir / "latest.html").write_text(page)
    steps.append(Step("report", time.monotonic() - t0))

    _heading(6, "the stack stays up")
    print(f"   report: {html_path.resolve()}")
    if env.get("CAMPAIGNS_URL"):
        print(
            f"   back office: {env['CAMPAIGNS_URL']}/login  (CSM key of demo-admin: "
            f"{env.get('DEMO_CSM_KEY', 'see .local/demo-csm-key')}); a campaign's report: "
            "cartwise report CAMPAIGN_ID"
        )
    print("   stop everything with: make down")
    total = time.monotonic() - started
    print(
        "\n   " + ", ".join(f"{s.name} {s.seconds:.0f}s" for s in steps) + f"; total {total:.0f}s"
    )
    (options.reports_dir / f"demo-{stamp}.json").write_text(
        json.dumps(
            {
                "steps": {s.name: round(s.seconds, 1) for s in steps},
                "total_s": round(total, 1),
                "options": {
                    k: (
                        str(v)
                        if isinstance(v, Path)
                        else {f: str(x) for f, x in vars(v).items()}
                        if isinstance(v, GameRules)
                        else v
                    )
                    for k, v in vars(options).items()
                },
                "replay": summary.as_dict(),
                "leaked": leaked,
            },
            indent=1,
        )
    )
    return DemoOutcome(
        0 if summary.failed_batches == 0 else 1, figures, truth, summary, leaked, html_path
    )


def _args(**values: Any) -> Any:
    import argparse

    return argparse.Namespace(**values)


def _replay(
    options: DemoOptions, simulation: Any, env: dict[str, str], now: datetime
) -> tuple[ReplaySummary, int, list[float]]:
    from shared.demo.probes import Prober, ProbingApi, Results
    from shared.journey import dataset as journey
    from shared.journey.http_event_api import HttpEventApi
    from shared.journey.replay import batches, replay
    from shared.journey.replay_keys import replay_api_keys
    from shared.journey.tracker_simulator import sessions, without_shoppers
    from shared.privacy.commands import suppressed_shoppers

    households = journey.sample_households(
        options.replay_weeks, options.households, options.sample_seed or options.seed
    )
    baskets = list(journey.baskets(options.replay_weeks, households))
    keys = replay_api_keys(env, simulation.retailers)
    results = Results()
    prober = Prober(env["EXPERIENCES_URL"], keys, results, threads=4)
    batch_size = 50
    per_request = options.probes_per_s * batch_size / max(options.rate, 1.0)
    probing = ProbingApi(
        HttpEventApi(env["INGEST_URL"], keys),
        prober,
        results,
        min(1.0, per_request),
        warmup_s=0.0,
        seed=options.seed,
    )
    tracker = LeakyTracker(probing, options.leak_every, options.seed)
    progress = _progress_line(len(baskets), results)
    skip = suppressed_shoppers(env["GOOGLE_CLOUD_PROJECT"], simulation.retailers)
    summary = replay(
        batches(
            without_shoppers(sessions(baskets, journey.products(), simulation, now), skip),
            batch_size,
        ),
        tracker,
        concurrency=4,
        rate=options.rate,
        progress=progress,
    )
    prober.drain()
    prober.close()
    progress(summary, final=True)
    print(file=sys.stderr)
    return summary, tracker.leaked, list(results.latencies_s.get(0, []))


def _responding_replay(
    options: DemoOptions, simulation: Any, env: dict[str, str], now: datetime
) -> tuple[ReplaySummary, int, list[float], Any]:
    """The replay with shoppers who respond: each session as a tracker sends it, asking
    the experiences API at each decision point (``shared/journey/responding.py``)."""
    from shared.freezer.read_models import LATE_WINDOW
    from shared.journey import dataset as journey
    from shared.journey.http_event_api import HttpEventApi
    from shared.journey.replay_keys import replay_api_keys
    from shared.journey.responding import HttpExperiencesApi, HttpPlaysApi, RespondingReplay
    from shared.journey.response import ResponseModel
    from shared.journey.tracker_simulator import sessions, without_shoppers
    from shared.privacy.commands import suppressed_shoppers

    households = journey.sample_households(
        options.replay_weeks, options.households, options.sample_seed or options.seed
    )
    # Only sessions the cold path accepts: an event older than the freezers' late window
    # (3 days) is parked, and its order would be missing from the measure. The baskets paid
    # in the late window before now are replayed, the replayed weeks moved by the whole
    # weeks that put the most of them there (whole weeks keep weekdays; the sessions'
    # first events are up to an hour before the payment, hence the margin).
    oldest = now - LATE_WINDOW + timedelta(hours=2)
    replayed = list(journey.baskets(options.replay_weeks, households))
    simulation = replace(
        simulation,
        shift_weeks=late_window_shift(
            simulation.shift_weeks, [b.at for b in replayed], oldest, now
        ),
    )
    baskets = [b for b in replayed if oldest <= simulation.moment(b.at) <= now]
    keys = replay_api_keys(env, simulation.retailers)
    tracker = LeakyTracker(HttpEventApi(env["INGEST_URL"], keys), options.leak_every, options.seed)
    experiences = HttpExperiencesApi(env["EXPERIENCES_URL"], keys)
    plays = HttpPlaysApi(env["PLAYS_URL"], keys)
    responding = RespondingReplay(
        tracker, experiences, ResponseModel(seed=options.seed), plays=plays
    )
    skip = suppressed_shoppers(env["GOOGLE_CLOUD_PROJECT"], simulation.retailers)
    shown = [0.0]

    def progress(summary: ReplaySummary) -> None:
        if time.monotonic() - shown[0] < 0.5:
            return
        shown[0] = time.monotonic()
        print(
            f"\r   sessions {summary.sessions:,}/{len(baskets):,}  events {summary.sent:,}  "
            f"{summary.events_per_s:,.0f} events/s  rejected {summary.rejected:,}  "
            f"experiences fetched {len(experiences.latencies_s):,} ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    summary = responding.run(
        without_shoppers(sessions(baskets, journey.products(), simulation, now), skip),
        progress=progress,
    )
    print(file=sys.stderr)
    truth = responding.truth
    print(
        f"   responding shoppers: {sum(t.displayed for t in truth.campaigns.values()):,} "
        f"experiences displayed, {sum(t.clicked for t in truth.campaigns.values()):,} clicked, "
        f"{sum(t.additions for t in truth.campaigns.values()):,} additions to baskets "
        f"({experiences.unanswered} fetches unanswered)"
    )
    return summary, tracker.leaked, list(experiences.latencies_s), truth


def _create_game(
    options: DemoOptions, simulation: Any, env: dict[str, str], now: datetime
) -> str | None:
    """The CSM's game, created through the campaigns API on the replay's retailers: the
    brand most bought in the baskets about to be replayed. Its id (None: no CSM key)."""
    from shared.demo.game import create_game, favourite_brand
    from shared.journey import dataset as journey
    from shared.journey.replay_keys import replay_api_keys

    if not env.get("CAMPAIGNS_URL") or not env.get("DEMO_CSM_KEY"):
        return None
    replay_api_keys(env, simulation.retailers)  # the retailers exist (their keys) first
    households = journey.sample_households(
        options.replay_weeks, options.households, options.sample_seed or options.seed
    )
    brand = favourite_brand(journey.baskets(options.replay_weeks, households), journey.products())
    rules = options.game
    created = create_game(env, list(simulation.retailers), brand, now, rules)
    print(
        f'   a CSM creates the game {created["campaign_id"]}: "{created["name"]}", at least '
        f"{rules.min_spend} of the brand's products in the order, odds {rules.win_probability}, "
        f"prize {rules.prize_value}, budget {rules.budget}, {rules.control_share:.0%} held "
        "out; live in seconds"
    )
    return str(created["campaign_id"])


def _game_figures(env: dict[str, str], campaign_id: str, truth: Any) -> Any:
    """The game read back from the stores, once the plays the replay made are frozen
    (the replay's count is only waited for, never reported as the store's)."""
    from shared.demo.game import game_figures

    told = truth.campaigns.get(campaign_id) if truth is not None else None
    played = told.played if told is not None else 0
    deadline = time.monotonic() + 120
    while True:
        figures = game_figures(env, campaign_id, datetime.now(UTC))
        if figures.participation["plays"] >= played or time.monotonic() > deadline:
            return figures
        time.sleep(2)


def _true_vs_measured(figures: Any, truth: dict[str, Any], env: dict[str, str]) -> None:
    """The campaign report's own uplift beside the injected truth, per campaign."""
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.campaigns.report import measured_uplifts
    from shared.demo.report import TrueVsMeasured
    from shared.freezer.read_models import DATASET
    from shared.platform import clients
    from shared.platform.bigquery_warehouse import BigQueryWarehouse

    project = env["GOOGLE_CLOUD_PROJECT"]
    warehouse = BigQueryWarehouse(
        clients.bigquery_client(project, env.get("BIGQUERY_EMULATOR_HOST")), project, DATASET, ()
    )
    campaigns = FirestoreCampaignStore(clients.firestore_client(project))
    figures.responding = truth["effects"]
    now = datetime.now(UTC)
    for campaign_id, told in truth["campaigns"].items():
        campaign = campaigns.get(campaign_id)
        if campaign is None:
            continue
        measured = measured_uplifts(campaign, warehouse, project, DATASET, now)
        figures.true_vs_measured.append(TrueVsMeasured(campaign_id, told, measured))


def _progress_line(total_sessions: int, results: Any) -> Callable[..., None]:
    shown = [0.0]

    def progress(summary: ReplaySummary, final: bool = False) -> None:
        if not final and time.monotonic() - shown[0] < 0.5:
            return
        shown[0] = time.monotonic()
        fetched = list(results.latencies_s.get(0, []))
        print(
            f"\r   sessions {summary.sessions:,}/{total_sessions:,}  events {summary.sent:,}  "
            f"{summary.events_per_s:,.0f} events/s  rejected {summary.rejected:,}  "
            f"experiences fetched {len(fetched):,}  p95 "
            f"{1000 * percentile(fetched, 0.95):,.0f} ms ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return progress


def _report(
    options: DemoOptions,
    env: dict[str, str],
    since: datetime,
    retailers: tuple[str, ...],
    run_id: str | None,
    accepted: int,
) -> Any:
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.demo.stores import DemoStores
    from shared.freezer.read_models import DATASET
    from shared.ingestion.bigtable_events import BigtableRejectedEventStore
    from shared.platform import clients
    from shared.platform.bigquery_warehouse import BigQueryWarehouse
    from shared.system.resources import BIGTABLE_INSTANCE

    project = env["GOOGLE_CLOUD_PROJECT"]
    stores = DemoStores(
        BigQueryWarehouse(
            clients.bigquery_client(project, env.get("BIGQUERY_EMULATOR_HOST")),
            project,
            DATASET,
            (),
        ),
        project,
        BigtableRejectedEventStore(clients.bigtable_client(project), BIGTABLE_INSTANCE),
        FirestoreCampaignStore(clients.firestore_client(project)),
    )
    # The freezers catch up with the stream: wait until every accepted event is a row of
    # the read models and has its decision (or until nothing moves for a while).
    deadline = time.monotonic() + 300
    last, still = (-1, -1), 0
    while time.monotonic() < deadline:
        frozen = (sum(stores.ingested_by_type(since).values()), stores.decisions(since))
        print(
            f"\r   frozen: {frozen[0]:,} of {accepted:,} events, {frozen[1]:,} decisions ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if frozen[0] >= accepted and frozen[1] >= accepted:
            break
        still = still + 1 if frozen == last else 0
        if still >= 10:
            break
        last = frozen
        time.sleep(3)
    print(file=sys.stderr)
    return stores.figures(since, datetime.now(UTC), list(retailers), run_id)
