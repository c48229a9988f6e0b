"""Variants of SYSTEM for the Pulumi program's tests: what other issues will declare (a
push function, Cloud Run jobs, a scheduled workflow, the rewards code path)."""

from __future__ import annotations

from pathlib import Path

from shared.platform.resource_model import (
    Access,
    Bucket,
    Function,
    Job,
    SchedulerJob,
    SystemResources,
    Workflow,
)
from shared.system.resources import (
    BIGQUERY_DATASET,
    FREEZER_SUBSCRIPTION,
    REWARDS_DATABASE,
    SHOPPER_EVENTS_DEAD_LETTER_TOPIC,
    SYSTEM,
)

NIGHTLY_WORKFLOW = """\
main:
  params: [args]
  steps:
    - train:
        call: googleapis.run.v1.namespaces.jobs.run
        args:
          name: ${"namespaces/" + sys.get_env("GOOGLE_CLOUD_PROJECT_ID") + "/jobs/train"}
          location: ${sys.get_env("CARTWISE_REGION")}
    - warm:
        call: http.get
        args:
          url: ${sys.get_env("CARTWISE_EXPERIENCES_URL") + "/healthz"}
          auth: {type: OIDC}
"""


def with_changes(**changes: object) -> SystemResources:
    """SYSTEM with some fields replaced, validated again."""
    return SystemResources(**{**dict(SYSTEM), **changes})


def extended_system() -> SystemResources:
    """The freezer as a push function (its small-deployment shape), two jobs, a bucket,
    a scheduled workflow, a scheduled call, and the rewards path (``pay_winners``)."""
    subscriptions = tuple(
        sub.model_copy(update={"push_function": "freeze_events"})
        if sub.name == FREEZER_SUBSCRIPTION
        else sub
        for sub in SYSTEM.subscriptions
    )
    databases = tuple(
        db.model_copy(update={"reserved_for": (*(db.reserved_for or ()), "pay_winners")})
        if db.name == REWARDS_DATABASE
        else db
        for db in SYSTEM.firestore_databases
    )
    return with_changes(
        subscriptions=subscriptions,
        firestore_databases=databases,
        functions=(
            *SYSTEM.functions,
            Function(
                name="freeze_events",
                signature="cloudevent",
                entry_point="freeze_event",
                description="Freezer, push form",
                access=Access(
                    publishes=(SHOPPER_EVENTS_DEAD_LETTER_TOPIC,),
                    bigquery_writes=(BIGQUERY_DATASET,),
                ),
            ),
        ),
        workers=tuple(w for w in SYSTEM.workers if w.name != "freeze_events"),
        jobs=(
            Job(
                name="train",
                module="functions.nightly.train",
                access=Access(bigquery_writes=(BIGQUERY_DATASET,), bucket_writes=("artifacts",)),
            ),
            Job(
                name="pay_winners",
                module="functions.rewards.pay",
                access=Access(firestore_writes=(REWARDS_DATABASE,)),
            ),
        ),
        buckets=(*SYSTEM.buckets, Bucket(name="artifacts", delete_after_days=30)),
        workflows=(
            Workflow(
                name="nightly",
                schedule="0 2 * * *",
                time_zone="Europe/Paris",
                access=Access(invokes=("experiences",), runs_jobs=("train",)),
            ),
        ),
        scheduler_jobs=(
            SchedulerJob(name="purge", schedule="0 3 * * *", function="experiences", path="/p"),
        ),
    )


def nightly_workflows_dir(tmp: Path, text: str = NIGHTLY_WORKFLOW) -> Path:
    folder = tmp / "workflows"
    folder.mkdir(exist_ok=True)
    (folder / "nightly.workflows.yaml").write_text(text)
    return folder
