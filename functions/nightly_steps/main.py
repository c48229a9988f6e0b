"""nightly_steps: the nightly workflow's steps over HTTP. Parse, call, answer."""

from __future__ import annotations

import functools
import json
from datetime import date, timedelta
from typing import Any

import flask
import functions_framework

from shared import logs
from shared.nightly.context import StepContext
from shared.nightly.service import NightlyDependencies
from shared.nightly.steps_api import handle
from shared.settings import NightlyStepsSettings
from shared.tree_compiler import PersonalRules


@functools.cache
def dependencies() -> NightlyDependencies:
    from shared.adapters import clients
    from shared.adapters.bigquery_nightly_outputs import BigQueryNightlyOutputs
    from shared.adapters.bigtable_decisions import BigtableTrees
    from shared.adapters.firestore_campaigns import FirestoreCampaignStore
    from shared.adapters.firestore_nightly_runs import FirestoreNightlyRuns
    from shared.adapters.transient import is_transient

    settings = NightlyStepsSettings()
    logs.configure(settings.log_level)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    firestore = clients.firestore_client(settings.project)
    return NightlyDependencies(
        runs=FirestoreNightlyRuns(firestore),
        outputs=BigQueryNightlyOutputs(bigquery, settings.project, settings.dataset),
        campaigns=FirestoreCampaignStore(firestore),
        trees=BigtableTrees(clients.bigtable_client(settings.project), settings.bigtable_instance),
        model_context=functools.partial(model_context, settings),
        is_transient=is_transient,
        rules=PersonalRules(
            basket_reward=settings.basket_reward,
            validity=timedelta(hours=settings.tree_validity_hours),
        ),
        write_batch=settings.write_batch,
    )


def model_context(settings: NightlyStepsSettings, run_id: str, cutoff: date) -> StepContext:
    """The model steps' context, with the modelling half's adapters (imported when needed)."""
    from pathlib import Path

    from shared.adapters import clients
    from shared.adapters.bigquery_warehouse import BigQueryWarehouse
    from shared.adapters.local_artifacts import LocalArtifactStore
    from shared.nightly.tables import NIGHTLY_TABLES

    client = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    return StepContext(
        run_id=run_id,
        cutoff=cutoff,
        project=settings.project,
        dataset=settings.dataset,
        warehouse=BigQueryWarehouse(client, settings.project, settings.dataset, NIGHTLY_TABLES),
        artifacts=LocalArtifactStore(Path(settings.artifacts_dir)),
    )


@functions_framework.http
def nightly_steps(request: flask.Request) -> Any:
    response = handle(request.method, request.path, request.get_data(), dependencies)
    return flask.Response(
        json.dumps(response.body),
        status=response.status,
        headers=response.headers,
        mimetype="application/json",
    )
