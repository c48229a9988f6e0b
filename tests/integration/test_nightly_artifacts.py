"""The nightly's models in Cloud Storage (the stack's fake-gcs-server, the official client).

- the emulator serves google-cloud-storage: upload with metadata, download, list, 404;
- two runs never overwrite each other's files: each run's store writes under its own
  prefix and refuses any other;
- a run whose ``evaluate`` and ``score`` are served by another process than ``train``
  (another working directory, ``train``'s process stopped first), and a task of the shard
  job (a third process), find the models, as in the cloud where the steps land on
  different instances.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from google.api_core.exceptions import NotFound

from emulators.config import ROOT, StackSettings
from shared.nightly.firestore_runs import FirestoreNightlyRuns
from shared.nightly.storage_artifacts import ArtifactOutsideRunError, GcsArtifactStore
from shared.platform import clients
from shared.platform.resource_model import bucket_name
from shared.system.resources import NIGHTLY_ARTIFACTS_BUCKET
from tests.integration.owned_data import owned_dataset
from tests.integration.serving import PRODUCT_FUNCTIONS, serve_function

pytestmark = pytest.mark.integration


def _bucket(stack: dict[str, str]) -> str:
    return bucket_name(stack["GOOGLE_CLOUD_PROJECT"], NIGHTLY_ARTIFACTS_BUCKET)


def test_the_storage_emulator_serves_the_official_client(stack: dict[str, str]) -> None:
    client = clients.storage_client(stack["GOOGLE_CLOUD_PROJECT"])
    assert client.get_bucket(_bucket(stack)).name == _bucket(stack)  # created by `up`
    name = f"nightly/check-{uuid.uuid4().hex[:8]}/probe.bin"
    blob = client.bucket(_bucket(stack)).blob(name)
    blob.metadata = {"run_id": "check"}
    payload = bytes(range(256)) * 4096  # 1 MiB, every byte value
    blob.upload_from_string(payload)
    fetched = client.bucket(_bucket(stack)).get_blob(name)
    assert fetched is not None and fetched.size == len(payload)
    assert fetched.metadata == {"run_id": "check"}
    assert fetched.download_as_bytes() == payload
    assert name in {b.name for b in client.list_blobs(_bucket(stack), prefix="nightly/check-")}
    fetched.delete()
    with pytest.raises(NotFound):
        client.bucket(_bucket(stack)).blob(name).download_as_bytes()


def test_two_runs_never_overwrite_each_other(stack: dict[str, str]) -> None:
    client = clients.storage_client(stack["GOOGLE_CLOUD_PROJECT"])
    first, second = (f"run-{uuid.uuid4().hex[:8]}" for _ in range(2))
    a = GcsArtifactStore(client, _bucket(stack), first)
    b = GcsArtifactStore(client, _bucket(stack), second)
    a.put(f"nightly/{first}/ranker.txt", b"model of the first run")
    b.put(f"nightly/{second}/ranker.txt", b"model of the second run")
    a.put(f"nightly/{first}/ranker.txt", b"the first run, its train step retried")
    assert a.get(f"nightly/{first}/ranker.txt") == b"the first run, its train step retried"
    assert b.get(f"nightly/{second}/ranker.txt") == b"model of the second run"
    for name in (
        f"nightly/{second}/ranker.txt",
        f"nightly/{first}/../{second}/ranker.txt",
        f"nightly/{first}x/ranker.txt",
    ):
        with pytest.raises(ArtifactOutsideRunError):
            a.put(name, b"not mine")
    assert b.get(f"nightly/{second}/ranker.txt") == b"model of the second run"
    with pytest.raises(KeyError):
        a.get(f"nightly/{first}/missing.txt")
    blob = client.bucket(_bucket(stack)).get_blob(f"nightly/{second}/ranker.txt")
    assert blob is not None and blob.metadata == {"run_id": second}


@pytest.fixture(scope="module")
def small_dataset(stack: dict[str, str]) -> Iterator[str]:
    with owned_dataset(stack, "44-53", 80) as name:
        yield name


def _post(base: str, path: str, body: dict[str, object]) -> dict[str, object]:
    response = requests.post(f"{base}{path}", json=body, timeout=600)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


@pytest.mark.heavy
def test_score_on_another_process_finds_the_model_train_wrote(
    stack: dict[str, str], small_dataset: str, tmp_path: Path
) -> None:
    settings = StackSettings()
    project = stack["GOOGLE_CLOUD_PROJECT"]
    bigquery = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
    (end,) = bigquery.query(
        f"SELECT DATE(MAX(occurred_at)) AS day FROM `{project}.{small_dataset}.orders`"
    ).result()
    run_id = f"test-{uuid.uuid4().hex[:8]}"
    env = {"NIGHTLY_DATASET": small_dataset}
    trainer_dir, scorer_dir = tmp_path / "trainer", tmp_path / "scorer"
    trainer_dir.mkdir()
    scorer_dir.mkdir()

    def serve(cwd: Path) -> object:
        return serve_function(
            settings, "nightly_steps", "nightly_steps", "http", env, PRODUCT_FUNCTIONS, cwd
        )

    runs = FirestoreNightlyRuns(clients.firestore_client(project))
    try:
        with serve(trainer_dir) as trainer:  # type: ignore[attr-defined]
            _post(trainer, "/runs", {"run_id": run_id, "cutoff": end["day"].isoformat()})
            _post(trainer, "/steps/features", {"run_id": run_id})
            trained = _post(trainer, "/steps/train", {"run_id": run_id})
            assert isinstance(trained["positives"], int) and trained["positives"] > 0
        # The trainer is gone, and left nothing on its disk: the models are in the bucket.
        assert not any(trainer_dir.rglob("*"))
        store = GcsArtifactStore(clients.storage_client(project), _bucket(stack), run_id)
        assert {n.rsplit("/", 1)[1] for n in store.names()} == {
            "ranker.txt",
            "basket_value.txt",
            "training.json",
        }
        assert json.loads(store.get(f"nightly/{run_id}/training.json"))["positives"] > 0

        with serve(scorer_dir) as scorer:  # type: ignore[attr-defined]
            evaluated = _post(scorer, "/steps/evaluate", {"run_id": run_id})  # both models
            assert evaluated["table"]
            _post(scorer, "/steps/score", {"run_id": run_id})
        # A task of the shard job, yet another process: scores its shard with the ranker.
        task = subprocess.run(
            [str(settings.venv_bin / "python"), "-m", "functions.nightly_shards.job"],
            cwd=ROOT,
            env={
                **os.environ,
                **env,
                "NIGHTLY_RUN_ID": run_id,
                "CLOUD_RUN_TASK_INDEX": "0",
                "CLOUD_RUN_TASK_COUNT": "4",
            },
            capture_output=True,
            timeout=600,
            check=False,
        )
        assert task.returncode == 0, task.stdout[-2000:]
        (shard,) = (
            s.summary
            for name, s in runs.get(run_id).steps.items()  # type: ignore[union-attr]
            if name == "shard_0_of_4"
        )
        assert shard is not None and shard["scoring"]["shopper_product_scores"] > 0
        assert not any(scorer_dir.rglob("*")) and not any(trainer_dir.rglob("*"))
    finally:
        # A run left "running" would hold every erasure of the stack for its maximum
        # duration (an erasure's last pass waits for the nightly in progress): end it, as
        # the workflow does.
        if runs.get(run_id) is not None:
            runs.finish(run_id, "failed", datetime.now(UTC), None)
