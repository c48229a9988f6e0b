"""Tree compilation at the full year's scale: ``compile_trees`` and ``publish`` through the
nightly workflow on the local stack, from synthetic model outputs of the real shape.

    .venv/bin/python -m bench.nightly_compile --shoppers 2500 --scores 20

Writes, for a new run id, ``--scores`` ranked products per shopper (drawn from the
Complete Journey's own catalogue ids), ``--complements`` complement rows per retailer and
a spend profile per shopper, into the tables of ``shared.nightly.context``; then executes
the nightly workflow with the test-only ``skip_model_steps`` flag, so that only the tree
compilation and the publication run, and prints the workflow's per-step durations and
the compilation summary (tree sizes, with the live campaigns of the stack's Firestore).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import urllib.request
import uuid
from typing import Any

from emulators.config import StackSettings

RETAILERS = ("freshmart", "greenbasket", "citygrocer")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.nightly_compile")
    parser.add_argument("--shoppers", type=int, default=2500)
    parser.add_argument("--scores", type=int, default=20)
    parser.add_argument("--complements", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="write the summary here too")
    args = parser.parse_args(argv)

    from google.cloud import bigquery

    from shared.nightly.shards import fill_buckets_sql
    from shared.platform import clients
    from shared.system.resources import BIGQUERY_DATASET
    from tests.integration.test_nightly import OUTPUT_TABLES

    env = dict(
        line.split("=", 1)
        for line in StackSettings().env_file.read_text().splitlines()
        if "=" in line
    )
    os.environ.update(env)
    project = env["GOOGLE_CLOUD_PROJECT"]
    client = clients.bigquery_client(project, env["BIGQUERY_EMULATOR_HOST"])
    for name, columns in OUTPUT_TABLES.items():
        client.create_table(
            bigquery.Table(
                f"{project}.{BIGQUERY_DATASET}.{name}",
                schema=[bigquery.SchemaField(c, t) for c, t in columns],
            ),
            exists_ok=True,
        )
    rng = random.Random(args.seed)
    products = [str(800000 + i) for i in range(5000)]
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    shoppers = [(RETAILERS[i % 3], f"hh-{i}") for i in range(args.shoppers)]
    scores = [
        {"retailer_id": r, "shopper_id": s, "product_id": p, "rank": k, "score": 1 / k}
        for r, s in shoppers
        for k, p in enumerate(rng.sample(products[:800], args.scores), start=1)
    ]
    complements = [
        {
            "retailer_id": r,
            "product_id": rng.choice(products[:800]),
            "complement_id": rng.choice(products),
            "lift": round(rng.uniform(0.8, 6), 2),
            "support": rng.randint(5, 200),
        }
        for r in RETAILERS
        for _ in range(args.complements)
    ]
    profiles = []
    for r, s in shoppers:
        p50 = rng.uniform(15, 80)
        profiles.append(
            {
                "retailer_id": r,
                "shopper_id": s,
                "baskets": rng.randint(1, 120),
                "value_p25": p50 * 0.6,
                "value_p50": p50,
                "value_p75": p50 * rng.uniform(1.05, 1.6),
                "value_p90": p50 * rng.uniform(1.6, 2.5),
                "visits_per_week": rng.uniform(0.2, 3),
            }
        )
    started = time.monotonic()
    for table, rows in (
        ("shopper_product_scores", scores),
        ("product_complements", complements),
        ("shopper_spend_profiles", profiles),
    ):
        for i in range(0, len(rows), 10_000):
            chunk = [{"run_id": run_id, **row} for row in rows[i : i + 10_000]]
            errors = client.insert_rows_json(
                f"{project}.{BIGQUERY_DATASET}.{table}", chunk, timeout=120
            )
            assert not errors, errors[:3]
        if table != "product_complements":  # the features step would write the buckets
            client.query(
                fill_buckets_sql(f"`{project}.{BIGQUERY_DATASET}.{table}`"),
                job_config=bigquery.QueryJobConfig(
                    query_parameters=[bigquery.ScalarQueryParameter("run_id", "STRING", run_id)]
                ),
            ).result(timeout=600)
    seeded_s = time.monotonic() - started
    request = urllib.request.Request(  # noqa: S310 - loopback URL from stack.env
        f"{env['WORKFLOWS_EMULATOR_URL']}/v1/projects/{project}/locations/europe-west1"
        "/workflows/nightly/executions",
        data=json.dumps(
            {"argument": json.dumps({"run_id": run_id, "skip_model_steps": True})}
        ).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=1800) as response:  # noqa: S310
        summary: dict[str, Any] = json.loads(response.read())
    workflow_s = time.monotonic() - started
    compiled = summary["steps"]["compile_trees"]
    result = {
        "run_id": run_id,
        "shoppers": args.shoppers,
        "score_rows": len(scores),
        "complement_rows": len(complements),
        "seed_seconds": round(seeded_s, 1),
        "workflow_seconds": round(workflow_s, 1),
        "compile_trees_seconds": round(compiled["seconds"], 1),
        "publish_seconds": round(summary["steps"]["publish"]["seconds"], 2),
        "trees_per_s": round(compiled["summary"]["trees_written"] / compiled["seconds"]),
        "compile": {
            k: v
            for k, v in compiled["summary"].items()
            if k not in {"retailers", "compiled_at", "valid_until", "run_id", "step"}
        },
    }
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as out:  # noqa: PTH123
            json.dump(result, out, indent=1)
    return 0 if summary["outcome"] == "published" else 1


if __name__ == "__main__":
    sys.exit(main())
