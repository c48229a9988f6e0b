"""A BigQuery dataset of one test's own: the read models and the nightly tables, a slice of
the Complete Journey backfilled into it, dropped afterwards. A test that trains or
evaluates on it gets the same figures and the same duration on a fresh stack and on a
developer's stack that holds a whole year."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence

from emulators.bootstrap import create_bigquery
from emulators.config import StackSettings
from shared import cli
from shared.decisions.read_models import DECISION_TABLES
from shared.freezer.read_models import DATASET, READ_MODELS
from shared.nightly.tables import NIGHTLY_TABLES
from shared.platform import clients
from shared.platform.resource_model import BigQueryTable
from shared.system.resources import SYSTEM


@contextlib.contextmanager
def empty_dataset(
    stack: dict[str, str], prefix: str, tables: Sequence[BigQueryTable]
) -> Iterator[str]:
    """A new dataset with ``tables`` (declared elsewhere in ``cartwise``), dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    system = SYSTEM.model_copy(
        update={
            "bigquery_datasets": [
                d.model_copy(update={"name": name})
                for d in SYSTEM.bigquery_datasets
                if d.name == DATASET
            ],
            "bigquery_tables": [t.model_copy(update={"dataset": name}) for t in tables],
        }
    )
    create_bigquery(StackSettings(), system)
    client = clients.bigquery_client(stack["GOOGLE_CLOUD_PROJECT"], stack["BIGQUERY_EMULATOR_HOST"])
    try:
        yield name
    finally:
        client.delete_dataset(name, delete_contents=True, not_found_ok=True)


@contextlib.contextmanager
def owned_dataset(stack: dict[str, str], weeks: str, households: int) -> Iterator[str]:
    """The dataset's name, once ``households`` households of ``weeks`` are backfilled. It
    holds every table the nightly reads, the decision read models too (empty: the offer
    policy step reads the decisions' logs once the gate has passed)."""
    with empty_dataset(stack, "owned", (*READ_MODELS, *DECISION_TABLES, *NIGHTLY_TABLES)) as name:
        backfill = ["backfill", "--weeks", weeks, "--households", str(households)]
        assert cli.main([*backfill, "--dataset", name, "--workers", "1"]) == 0
        yield name
