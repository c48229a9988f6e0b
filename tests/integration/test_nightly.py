"""The nightly workflow on the workflows emulator: its control flow (gate, retries,
failures), and, end to end on the stack, trees that change the decisions taken.

Test-only flag: ``skip_model_steps`` in the execution argument skips features, train,
evaluate and score; the trees are then compiled from scores, complements and spend
profiles this test writes itself for the run (the tables of ``shared.nightly.context``).
The model steps themselves run in ``test_the_whole_workflow_with_the_model_steps`` when
``shared.nightly.steps`` is part of the build (skipped otherwise, with the reason).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from emulators.config import ROOT, StackSettings
from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.decisions.bigtable_state import BigtableTrees
from shared.decisions.compiler import compile_default_tree
from shared.nightly.shards import BUCKET, fill_buckets_sql
from shared.nightly.tables import NIGHTLY_TABLES
from shared.platform import clients
from shared.system.resources import BIGQUERY_DATASET, BIGTABLE_INSTANCE, SYSTEM
from shared.system.workflow_render import environment
from tests.factories import event
from tests.integration.owned_data import owned_dataset
from tests.integration.serving import PRODUCT_FUNCTIONS, serve_function, serve_workflows
from tests.integration.test_decisions import experiences
from tests.integration.test_freezer import query
from tests.integration.test_ingest_api import post

pytestmark = pytest.mark.integration

# The model steps' outputs the tree compiler reads (seeded directly by these tests).
OUTPUT_TABLES: dict[str, list[tuple[str, str]]] = {
    t.name: [(c.name, c.type) for c in t.columns]
    for t in NIGHTLY_TABLES
    if t.name
    in (
        "shopper_product_scores",
        "shopper_new_products",
        "product_complements",
        "shopper_spend_profiles",
    )
}


def execute(
    base: str, project: str, argument: dict[str, Any], timeout_s: float = 120
) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{base}/v1/projects/{project}/locations/europe-west1/workflows/nightly/executions",
        data=json.dumps({"argument": json.dumps(argument)}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(autouse=True)
def _current_run_kept(stack: dict[str, str]) -> Iterator[None]:
    """The ``nightly/current`` pointer as it was before each test: a run these tests
    publish must not stay the stack's current run (``make demo`` and later runs read it).
    The trees the run wrote stay (the test's shoppers, and default trees recompiled from
    the campaigns then active, as any compilation writes them)."""
    from shared.nightly.firestore_runs import POINTER

    pointer = (
        clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"])
        .collection(POINTER[0])
        .document(POINTER[1])
    )
    before = pointer.get()
    yield
    if before.exists:
        pointer.set(before.to_dict() or {})
    else:
        pointer.delete()


# --- the workflow's control flow, against a scripted step service --------------------------


def workflows_on(
    steps_url: str, jobs: dict[str, Any] | None = None
) -> contextlib.AbstractContextManager[str]:
    """A workflows emulator serving the real workflow file, its rendered environment
    pointing at the step service ``steps_url``; its job stand-in runs ``jobs``, by default
    a scripted nightly-shards job whose tasks report to that service (retried once)."""
    env = environment(SYSTEM, {"nightly_steps": steps_url})
    settings = StackSettings()
    jobs = jobs or {
        "nightly-shards": {
            "command": [
                str(settings.venv_bin / "python"),
                "-m",
                "tests.integration.functions.scripted_nightly_steps.shard",
            ],
            "cwd": str(ROOT),
            "env": {"STEPS_URL": steps_url, "PATH": "/usr/bin:/bin"},
            "tasks": 1,
            "max_retries": 1,
            "timeout_s": 60,
            "log_dir": str(settings.logs_dir),
        }
    }
    return serve_workflows(ROOT / "workflows", env, name="nightly-workflows", jobs=jobs)


@pytest.fixture(scope="module")
def scripted(stack: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(workflows emulator URL, scripted steps URL): the real workflow file, served with its
    rendered environment pointing at a scripted step service."""
    settings = StackSettings()
    with (
        serve_function(
            settings, "scripted_nightly_steps", "scripted_nightly_steps", "http"
        ) as steps_url,
        workflows_on(steps_url) as workflows,
    ):
        yield workflows, steps_url


def calls(steps_url: str, run_id: str) -> list[str]:
    return list(requests.get(f"{steps_url}/calls/{run_id}", timeout=10).json()["calls"])


ALL_STEPS = [
    "features",
    "train",
    "evaluate",
    "offer_policy",
    "score",
    "compile_trees",
    "publish",
]
# The calls received, the job's task among them (one task: the run asks for none).
ALL_CALLS = [
    "features",
    "train",
    "evaluate",
    "offer_policy",
    "score",
    "shards",
    "compile_trees",
    "publish",
]


def test_the_workflow_runs_every_step_in_order_and_summarizes(
    stack: dict[str, str], scripted: tuple[str, str], unique: str
) -> None:
    workflows, steps_url = scripted
    run_id = f"ok-{unique}"
    status, summary = execute(workflows, stack["GOOGLE_CLOUD_PROJECT"], {"run_id": run_id})
    assert status == 200, summary
    assert calls(steps_url, run_id) == ["begin", *ALL_CALLS, "finish:published"]
    assert summary["outcome"] == "published" and summary["model_steps_skipped"] is False
    assert set(summary["steps"]) == {*ALL_STEPS, "shards"}
    execution = summary["steps"]["shards"]["summary"]
    assert (execution["taskCount"], execution["succeededCount"]) == (1, 1)
    for name in ALL_STEPS:
        assert summary["steps"][name]["summary"]["step"] == name
        assert summary["steps"][name]["seconds"] >= 0
    assert summary["seconds"] >= sum(s["seconds"] for s in summary["steps"].values())


def test_the_gate_stops_before_scoring_and_keeps_the_previous_trees(
    stack: dict[str, str], scripted: tuple[str, str], unique: str
) -> None:
    workflows, steps_url = scripted
    run_id = f"gate-{unique}"
    status, summary = execute(workflows, stack["GOOGLE_CLOUD_PROJECT"], {"run_id": run_id})
    assert status == 200, summary
    assert calls(steps_url, run_id) == [
        "begin",
        "features",
        "train",
        "evaluate",
        "finish:refused_by_gate",
    ]
    assert summary["outcome"] == "refused_by_gate"
    assert summary["steps"]["evaluate"]["summary"]["gate_passed"] is False
    assert summary["steps"]["compile_trees"] is None and summary["steps"]["publish"] is None


def test_a_transient_failure_is_retried_and_a_failed_step_is_not(
    stack: dict[str, str], scripted: tuple[str, str], unique: str
) -> None:
    workflows, steps_url = scripted
    project = stack["GOOGLE_CLOUD_PROJECT"]
    flaky = f"flaky-compile_trees-{unique}"
    status, summary = execute(workflows, project, {"run_id": flaky})
    assert status == 200, summary
    assert calls(steps_url, flaky).count("compile_trees") == 2  # a 503, then the retry
    assert summary["outcome"] == "published"

    broken = f"broken-train-{unique}"
    status, error = execute(workflows, project, {"run_id": broken})
    assert status == 500
    assert error["error"]["code"] == 500
    assert calls(steps_url, broken) == ["begin", "features", "train", "finish:failed"]


def test_the_shard_job_runs_its_tasks_retries_a_failed_one_alone_and_fails_the_run(
    stack: dict[str, str], scripted: tuple[str, str], unique: str
) -> None:
    workflows, steps_url = scripted
    project = stack["GOOGLE_CLOUD_PROJECT"]
    three = f"three-{unique}"
    status, summary = execute(workflows, project, {"run_id": three, "tasks": 3})
    assert status == 200, summary
    assert calls(steps_url, three).count("shards") == 3
    execution = summary["steps"]["shards"]["summary"]
    assert (execution["taskCount"], execution["succeededCount"], execution["retriedCount"]) == (
        3,
        3,
        0,
    )

    flaky = f"flaky-shards-{unique}"  # its first task attempt fails, the retry succeeds
    status, summary = execute(workflows, project, {"run_id": flaky})
    assert status == 200, summary
    assert calls(steps_url, flaky).count("shards") == 2
    assert summary["steps"]["shards"]["summary"]["retriedCount"] == 1
    assert summary["outcome"] == "published"

    broken = f"broken-shards-{unique}"  # fails on every attempt: 1 + max_retries
    status, error = execute(workflows, project, {"run_id": broken})
    assert status == 500, error
    assert "Task 0 failed after 2 attempt(s)" in error["error"]["message"]
    assert calls(steps_url, broken)[-3:] == ["shards", "shards", "finish:failed"]
    assert "compile_trees" not in calls(steps_url, broken)


# --- end to end on the stack: published trees change the decisions ----------------------


@pytest.fixture(scope="module")
def output_tables(stack: dict[str, str]) -> None:
    from google.cloud import bigquery

    project = stack["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    for name, columns in OUTPUT_TABLES.items():
        client.create_table(
            bigquery.Table(
                f"{project}.{BIGQUERY_DATASET}.{name}",
                schema=[bigquery.SchemaField(c, t) for c, t in columns],
            ),
            exists_ok=True,
        )


def seed_outputs(stack: dict[str, str], run_id: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    for table, table_rows in rows.items():
        errors = client.insert_rows_json(
            f"{project}.{BIGQUERY_DATASET}.{table}",
            [{"run_id": run_id, **row} for row in table_rows],
            timeout=30,
        )
        assert errors == [], errors
        if BUCKET in next(t for t in NIGHTLY_TABLES if t.name == table).column_names:
            # The features step writes each shopper's bucket; rows seeded here get theirs.
            sql = fill_buckets_sql(f"`{project}.{BIGQUERY_DATASET}.{table}`")
            client.query(sql, job_config=run_parameter(run_id)).result(timeout=60)


def run_parameter(run_id: str) -> Any:
    from google.cloud import bigquery

    return bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("run_id", "STRING", run_id)]
    )


def answer_to(stack: dict[str, str], shopper: str, raw: dict[str, Any]) -> dict[str, Any] | None:
    assert post(stack, [raw]).json()["accepted"] == 1
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        response = experiences(stack, shopper)
        if response.status_code == 200 and response.json()["event_id"] == raw["event_id"]:
            return dict(response.json())
        time.sleep(0.05)
    return None


def session(shopper: str, start: datetime, pasta: str) -> list[dict[str, Any]]:
    """A visit: the home page, then pasta into the basket (new ids each time)."""
    session_id = f"s-{uuid.uuid4().hex[:8]}"
    home = event("page_viewed", shopper, start)
    home["payload"] = {"url": "/", "page_type": "home"}
    add = event("product_added_to_basket", shopper, start + timedelta(seconds=20))
    add["payload"] = {"product_id": pasta, "quantity": 2, "unit_price": "1.50", "brand": "B"}
    for raw in (home, add):
        raw["session_id"] = session_id
    return [home, add]


def test_published_trees_change_the_decisions_taken_for_the_same_traffic(
    stack: dict[str, str], output_tables: None, unique: str
) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    retailer = stack["DEMO_RETAILER_ID"]
    shopper = f"nightly-{unique}"
    pasta, sauce, milk = f"pasta-{unique}", f"sauce-{unique}", f"milk-{unique}"
    parmesan, basil, olives = f"parmesan-{unique}", f"basil-{unique}", f"olives-{unique}"
    now = datetime.now(UTC)
    trees = BigtableTrees(clients.bigtable_client(project), BIGTABLE_INSTANCE)
    campaigns = FirestoreCampaignStore(clients.firestore_client(project)).active()
    trees.put([compile_default_tree(retailer, campaigns, now)])  # `cartwise compile-trees`

    # Before: the retailer's default tree decides (the decider may have cached "no default
    # tree" for up to 10 s: probe until a decision answers).
    deadline = time.monotonic() + 30
    before: dict[str, Any] | None = None
    while before is None and time.monotonic() < deadline:
        home, add = session(shopper, datetime.now(UTC) - timedelta(minutes=10), pasta)
        if answer_to(stack, shopper, home) is not None:
            before = answer_to(stack, shopper, add)
    assert before is not None, "no decision on the default tree"
    assert before["tree_version"].startswith("default-")
    assert not any(e["experience_id"].startswith("complement:") for e in before["experiences"])
    # The shopper changes their mind: the basket is empty again (baskets outlive sessions).
    undo = event("product_removed_from_basket", shopper, datetime.now(UTC) - timedelta(minutes=9))
    undo["payload"] = {"product_id": pasta, "quantity": 2, "unit_price": "1.50"}
    assert answer_to(stack, shopper, undo) is not None

    # The nightly run: the model's outputs for this shopper, compiled and published.
    run_id = f"it-{unique}"
    seed_outputs(
        stack,
        run_id,
        {
            "shopper_product_scores": [
                {
                    "retailer_id": retailer,
                    "shopper_id": shopper,
                    "product_id": p,
                    "rank": r,
                    "score": 1 / r,
                }
                for r, p in enumerate([pasta, milk], start=1)
            ],
            "shopper_new_products": [  # never bought: what shoppers like them buy
                {"retailer_id": retailer, "shopper_id": shopper, "product_id": p, "rank": r}
                for r, p in enumerate([parmesan, basil, olives], start=1)
            ],
            "product_complements": [
                {
                    "retailer_id": retailer,
                    "product_id": pasta,
                    "complement_id": sauce,
                    "lift": 3.5,
                    "support": 40,
                },
            ],
            "shopper_spend_profiles": [
                {
                    "retailer_id": retailer,
                    "shopper_id": shopper,
                    "baskets": 12,
                    "value_p25": 18.0,
                    "value_p50": 24.0,
                    "value_p75": 31.5,
                    "value_p90": 45.0,
                    "visits_per_week": 1.2,
                },
            ],
        },
    )
    started = time.monotonic()
    status, summary = execute(
        stack["WORKFLOWS_EMULATOR_URL"],
        project,
        {"run_id": run_id, "skip_model_steps": True},  # test only: see the module's docstring
    )
    assert status == 200, summary
    assert summary["outcome"] == "published" and summary["model_steps_skipped"] is True
    compiled = summary["steps"]["compile_trees"]["summary"]
    assert compiled["personal_trees"] == 1 and compiled["complement_nodes"] == 1
    # How long it takes is a benchmark's business (python -m bench.nightly_compile), not a test's.
    print(f"workflow without the model steps: {time.monotonic() - started:.1f}s")

    current = requests.get(f"{stack['NIGHTLY_STEPS_URL']}/runs/current", timeout=10).json()
    assert current["run_id"] == run_id
    record = requests.get(f"{stack['NIGHTLY_STEPS_URL']}/runs/{run_id}", timeout=10).json()
    assert record["status"] == "published"
    assert record["workflow_summary"]["outcome"] == "published"
    tree = trees.personal([(retailer, shopper)])[(retailer, shopper)]
    assert tree.tree_version.startswith(f"{run_id}:")
    assert tree.valid_until > datetime.now(UTC) + timedelta(hours=47)

    # After: the same traffic again, now decided along the shopper's own tree.
    home, add = session(shopper, datetime.now(UTC) - timedelta(minutes=5), pasta)
    at_home = answer_to(stack, shopper, home)
    assert at_home is not None and at_home["tree_version"] == tree.tree_version
    shown_home = {e["experience_id"]: e["details"] for e in at_home["experiences"]}
    assert {f"usual:{pasta}", f"usual:{milk}", "basket:tension"} <= set(shown_home)
    # The two best products new to the shopper, recommended at the root; not the third.
    assert shown_home[f"new:{parmesan}"] == {"product_id": parmesan, "because_of": None}
    assert f"new:{basil}" in shown_home and f"new:{olives}" not in shown_home
    assert shown_home["basket:tension"]["threshold"] == "32"  # above the usual 24
    after = answer_to(stack, shopper, add)
    assert after is not None
    assert (after["node_id"], after["tree_version"]) == (f"after:{pasta}", tree.tree_version)
    shown = {e["experience_id"]: e["details"] for e in after["experiences"]}
    assert shown[f"complement:{sauce}"] == {"product_id": sauce, "because_of": pasta}
    assert shown["basket:tension"]["missing"] == "29"  # 32 - 2 x 1.50
    assert before["node_id"] != after["node_id"]

    # The decisions, frozen into BigQuery, say which tree took them.
    wanted = {(before["node_id"], False), (f"after:{pasta}", True)}
    deadline = time.monotonic() + 30
    frozen: list[dict[str, Any]] = []
    while (
        time.monotonic() < deadline
        and not {(r["node_id"], r["personal_tree"]) for r in frozen} >= wanted
    ):
        frozen = query(
            stack,
            f"SELECT node_id, personal_tree FROM `{project}.{BIGQUERY_DATASET}.decisions` "
            "WHERE shopper_id = @s",
            s=shopper,
        )
        time.sleep(0.5)
    assert {(r["node_id"], r["personal_tree"]) for r in frozen} >= wanted


@contextlib.contextmanager
def own_nightly(
    stack: dict[str, str], settings: StackSettings, **env: str
) -> Iterator[tuple[str, str]]:
    """A workflows emulator (its URL, and the dataset's name) running the real workflow
    against a step service of the test's own (``env``: its extra settings), on a dataset of
    its own: 13 weeks of 30 households backfilled. Its job stand-in runs the real
    nightly-shards job with the same settings, for a run whose gate passes."""
    from emulators.stack import job_specs

    with owned_dataset(stack, "41-53", 30) as dataset:
        settings_env = {"NIGHTLY_DATASET": dataset, **env}
        jobs = job_specs(settings)
        for spec in jobs.values():
            spec["env"] = {**spec["env"], **settings_env}
        with (
            serve_function(
                settings, "nightly_steps", "nightly_steps", "http", settings_env, PRODUCT_FUNCTIONS
            ) as steps_url,
            workflows_on(steps_url, jobs) as workflows,
        ):
            yield workflows, dataset


@pytest.mark.heavy
def test_the_whole_workflow_with_the_model_steps(
    stack: dict[str, str], stack_settings: StackSettings, unique: str
) -> None:
    """The modelling half merged: every step runs for real, on a small backfill into a
    dataset of the test's own (a step service of its own reads it), so that neither its
    figures nor its duration depend on what the stack holds."""
    from shared.nightly.tables import WORK_TABLES

    run_id = f"full-{unique}"
    project = stack["GOOGLE_CLOUD_PROJECT"]
    with own_nightly(stack, stack_settings) as (workflows, dataset):
        status, summary = execute(workflows, project, {"run_id": run_id}, 600)
        client = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
        counts = (
            client.query(
                f"SELECT COUNT(*) AS n FROM `{project}.{dataset}.{t.name}` WHERE run_id = @run_id",
                job_config=run_parameter(run_id),
            ).result()
            for t in WORK_TABLES
        )
        left = {t.name: next(iter(rows))["n"] for t, rows in zip(WORK_TABLES, counts, strict=True)}
    assert status == 200, summary
    # Finished: the run's work rows are gone (its steps wrote some: features counts them).
    assert sum(summary["steps"]["features"]["summary"]["nightly_candidates"].values()) > 0
    assert left == {t.name: 0 for t in WORK_TABLES}, left
    assert summary["outcome"] in {"published", "refused_by_gate"}
    evaluation = summary["steps"]["evaluate"]["summary"]
    assert isinstance(evaluation["gate_passed"], bool) and "table" in evaluation
    assert evaluation["shoppers"] > 0, evaluation
    if summary["outcome"] == "published":
        assert summary["steps"]["compile_trees"]["summary"]["personal_trees"] > 0


@pytest.mark.heavy
def test_a_run_refused_by_the_gate_on_the_real_steps_changes_nothing_live(
    stack: dict[str, str], stack_settings: StackSettings, unique: str
) -> None:
    """The gate on the real step service: every step runs for real on a backfill into a
    dataset of the test's own, with a margin no model can reach (``NIGHTLY_GATE_MIN_LIFT``,
    +100,000 %), so the gate refuses; the run is recorded ``refused_by_gate``, neither
    scoring, tree compilation nor publication runs, the ``nightly/current`` pointer and the
    live default tree are what they were before."""
    from shared.nightly.firestore_runs import POINTER, RUNS

    project = stack["GOOGLE_CLOUD_PROJECT"]
    retailer = stack["DEMO_RETAILER_ID"]
    firestore = clients.firestore_client(project)
    pointer = firestore.collection(POINTER[0]).document(POINTER[1])
    trees = BigtableTrees(clients.bigtable_client(project), BIGTABLE_INSTANCE)
    live = compile_default_tree(
        retailer, FirestoreCampaignStore(firestore).active(), datetime.now(UTC)
    )
    trees.put([live])  # a known live tree (what `cartwise compile-trees` writes)
    pointer_before = pointer.get().to_dict()

    run_id = f"refused-{unique}"
    with own_nightly(stack, stack_settings, NIGHTLY_GATE_MIN_LIFT="1000") as (workflows, _):
        status, summary = execute(workflows, project, {"run_id": run_id}, 600)
    assert status == 200, summary
    assert summary["outcome"] == "refused_by_gate", summary
    evaluation = summary["steps"]["evaluate"]["summary"]
    assert evaluation["gate_passed"] is False and evaluation["min_lift"] == 1000, evaluation
    assert evaluation["shoppers"] > 0, evaluation  # refused on the margin, not on no data
    assert summary["steps"]["score"] is None
    assert summary["steps"]["compile_trees"] is None and summary["steps"]["publish"] is None
    assert pointer.get().to_dict() == pointer_before
    after = BigtableTrees(clients.bigtable_client(project), BIGTABLE_INSTANCE).default(retailer)
    assert after is not None and after.tree_version == live.tree_version
    run = firestore.collection(RUNS).document(run_id).get().to_dict() or {}
    assert run.get("status") == "refused_by_gate", run


def test_a_crashed_task_is_retried_alone_and_the_run_publishes_one_tree_per_shopper(
    stack: dict[str, str], output_tables: None, unique: str
) -> None:
    """Two tasks; task 1 dies on its first attempt after writing two trees. The stand-in
    retries it alone (task 0 runs once), and every scored shopper ends with exactly one
    tree of the run (Bigtable rows are keyed by shopper: a re-run rewrites them)."""
    from emulators.stack import function_urls, job_specs

    project = stack["GOOGLE_CLOUD_PROJECT"]
    retailer = stack["DEMO_RETAILER_ID"]
    settings = StackSettings()
    shoppers = [f"crash-{unique}-{i}" for i in range(12)]
    run_id = f"crash-{unique}"
    seed_outputs(
        stack,
        run_id,
        {
            "shopper_product_scores": [
                {
                    "retailer_id": retailer,
                    "shopper_id": s,
                    "product_id": p,
                    "rank": r,
                    "score": 1 / r,
                }
                for s in shoppers
                for r, p in enumerate([f"pasta-{unique}", f"milk-{unique}"], start=1)
            ],
        },
    )
    specs = job_specs(settings)
    specs["nightly-shards"]["command"] = [
        str(settings.venv_bin / "python"),
        "-m",
        "tests.integration.functions.crashing_shard",
    ]
    env = environment(SYSTEM, function_urls(settings))
    with serve_workflows(ROOT / "workflows", env, name="crash-workflows", jobs=specs) as wf:
        status, summary = execute(
            wf, project, {"run_id": run_id, "tasks": 2, "skip_model_steps": True}
        )
    assert status == 200, summary
    assert summary["outcome"] == "published"
    execution = summary["steps"]["shards"]["summary"]
    assert [t["attempts"] for t in execution["tasks"]] == [1, 2]  # task 1 alone, retried
    assert execution["tasks"][1]["exit_codes"] == [1, 0]
    assert (execution["succeededCount"], execution["retriedCount"]) == (2, 1)
    compiled = summary["steps"]["compile_trees"]["summary"]
    assert compiled["shards"] == 2 and compiled["personal_trees"] == len(shoppers)
    record = requests.get(f"{stack['NIGHTLY_STEPS_URL']}/runs/{run_id}", timeout=10).json()
    shard_trees = [record["steps"][f"shard_{i}_of_2"]["summary"]["personal_trees"] for i in (0, 1)]
    assert all(n > 0 for n in shard_trees) and sum(shard_trees) == len(shoppers)
    trees = BigtableTrees(clients.bigtable_client(project), BIGTABLE_INSTANCE)
    found = trees.personal([(retailer, s) for s in shoppers])
    assert sorted(s for _, s in found) == sorted(shoppers)
    assert all(t.tree_version.startswith(f"{run_id}:") for t in found.values())
