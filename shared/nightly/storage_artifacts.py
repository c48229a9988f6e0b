"""``ArtifactStore`` on Cloud Storage: one run's models and metadata under its own prefix.

Every step of a run may land on another instance (or a restarted one) than the step that
wrote its models: nothing is kept on the instance's disk. A store is opened for one run
(``nightly/{run_id}/``) and refuses a name outside that prefix, so two runs never write
over each other's files; within a run a retried step rewrites its own files (idempotent).
Each object carries the run id in its metadata. Locally the same client talks to the
Cloud Storage emulator (``STORAGE_EMULATOR_HOST``, fake-gcs-server).
"""

from __future__ import annotations

from typing import Any

RUN_PREFIX = "nightly"


def run_prefix(run_id: str) -> str:
    return f"{RUN_PREFIX}/{run_id}/"


class ArtifactOutsideRunError(ValueError):
    pass


class GcsArtifactStore:
    """Objects of one run in a bucket (``client`` is a ``google.cloud.storage.Client``)."""

    def __init__(self, client: Any, bucket: str, run_id: str) -> None:
        self._bucket = client.bucket(bucket)
        self._run_id = run_id
        self._prefix = run_prefix(run_id)

    def _blob(self, name: str) -> Any:
        if not name.startswith(self._prefix) or ".." in name.split("/"):
            raise ArtifactOutsideRunError(
                f"artifact {name!r} is outside run {self._run_id}'s prefix {self._prefix}"
            )
        return self._bucket.blob(name)

    def put(self, name: str, data: bytes) -> None:
        """One upload (a reader sees the whole object or the previous one, never half)."""
        blob = self._blob(name)
        blob.metadata = {"run_id": self._run_id}
        blob.upload_from_string(data, content_type="application/octet-stream")

    def get(self, name: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            data: bytes = self._blob(name).download_as_bytes()
        except NotFound:
            raise KeyError(name) from None
        return data

    def names(self) -> list[str]:
        """The run's objects, by name."""
        blobs = self._bucket.client.list_blobs(self._bucket, prefix=self._prefix)
        return sorted(b.name for b in blobs)
