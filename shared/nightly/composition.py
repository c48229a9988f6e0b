"""The composition root of ``nightly_steps`` (``functions/nightly_steps/main.py``).

``nightly_steps()`` builds the function's dependencies once per process: its settings,
its clients (created on first use, never at import), the run records, the nightly
outputs, the campaigns and the tree store; ``model_context`` builds the model steps'
context (the warehouse and the run's models in the artifacts bucket) when a model step runs.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta
from typing import Any

from shared.decisions.compiler import PersonalRules
from shared.nightly.context import StepContext
from shared.nightly.service import NightlyDependencies
from shared.platform import logs
from shared.system.settings import NightlyShardSettings, NightlyStepsSettings


@functools.cache
def nightly_steps() -> NightlyDependencies:
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.decisions.bigtable_state import BigtableTrees
    from shared.nightly.bigquery_outputs import BigQueryNightlyOutputs
    from shared.nightly.firestore_runs import FirestoreNightlyRuns
    from shared.platform import clients
    from shared.platform.transient import is_transient
    from shared.privacy_marks.bigtable_marks import privacy_gate

    settings = NightlyStepsSettings()
    logs.configure(settings.log_level)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    firestore = clients.firestore_client(settings.project)
    bigtable = clients.bigtable_client(
        settings.project, app_profile_id=settings.bigtable_app_profile
    )
    return NightlyDependencies(
        runs=FirestoreNightlyRuns(firestore),
        outputs=BigQueryNightlyOutputs(
            bigquery,
            settings.project,
            settings.dataset,
            clients.bigquery_read_client(settings.bigquery_storage_emulator_host),
        ),
        campaigns=FirestoreCampaignStore(firestore),
        trees=BigtableTrees(bigtable, settings.bigtable_instance),
        model_context=functools.partial(model_context, settings),
        is_transient=is_transient,
        privacy=privacy_gate(settings, bigtable),
        rules=PersonalRules(
            basket_reward=settings.basket_reward,
            validity=timedelta(hours=settings.tree_validity_hours),
        ),
        write_batch=settings.write_batch,
        compile_batch=settings.shard_batch_shoppers,
        shard_tasks=settings.shard_tasks,
    )


def model_context(settings: NightlyStepsSettings, run_id: str, cutoff: date) -> StepContext:
    """The model steps' context, with the modelling half's adapters (imported when needed);
    the models go to the run's prefix in the artifacts bucket, never to the instance's disk."""
    from shared.nightly.storage_artifacts import GcsArtifactStore
    from shared.nightly.tables import NIGHTLY_TABLES
    from shared.platform import clients
    from shared.platform.bigquery_warehouse import BigQueryWarehouse

    client = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    return StepContext(
        run_id=run_id,
        cutoff=cutoff,
        project=settings.project,
        dataset=settings.dataset,
        warehouse=BigQueryWarehouse(
            client,
            settings.project,
            settings.dataset,
            NIGHTLY_TABLES,
            clients.bigquery_read_client(settings.bigquery_storage_emulator_host),
        ),
        artifacts=GcsArtifactStore(storage(settings.project), settings.bucket, run_id),
        gate_min_lift=settings.gate_min_lift,
        train_shoppers=settings.train_shoppers,
        evaluate_shoppers=settings.evaluate_shoppers,
        batch_shoppers=settings.shard_batch_shoppers,
        neighbour_pool=settings.neighbour_pool,
    )


def nightly_shard(settings: NightlyShardSettings | None = None) -> dict[str, Any]:
    """One task of the ``nightly_shards`` job: its shard scored, its trees compiled."""
    from shared.nightly.scoring import score_shard
    from shared.nightly.service import run_shard
    from shared.nightly.shards import Shard

    settings = settings or NightlyShardSettings()
    shard = Shard(settings.task_index, settings.task_count)
    logs.configure(settings.log_level)
    return run_shard(
        nightly_steps(),
        settings.run_id,
        shard,
        None if settings.skip_scoring else score_shard,
    )


@functools.cache
def storage(project: str) -> Any:
    """One Cloud Storage client per process, created on first use."""
    from shared.platform import clients

    return clients.storage_client(project)
