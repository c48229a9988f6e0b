"""Firestore adapter of ``NightlyRunStore``: ``nightly_runs/{run_id}``, ``nightly/current``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.nightly.runs import CurrentRun, RunRecord, RunStatus, StepRecord

RUNS = "nightly_runs"
POINTER = ("nightly", "current")


class FirestoreNightlyRuns:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._runs = client.collection(RUNS)
        self._pointer = client.collection(POINTER[0]).document(POINTER[1])

    def begin(self, record: RunRecord) -> None:
        data = record.model_dump(mode="json", exclude={"steps"})
        self._runs.document(record.run_id).set(data, merge=True)

    def get(self, run_id: str) -> RunRecord | None:
        snapshot = self._runs.document(run_id).get()
        return RunRecord.model_validate(snapshot.to_dict()) if snapshot.exists else None

    def record_step(self, run_id: str, step: str, record: StepRecord) -> None:
        self._runs.document(run_id).update({f"steps.{step}": record.model_dump(mode="json")})

    def finish(
        self,
        run_id: str,
        status: RunStatus,
        finished_at: datetime,
        workflow_summary: dict[str, Any] | None,
    ) -> None:
        changes: dict[str, Any] = {"status": status, "finished_at": finished_at.isoformat()}
        if workflow_summary is not None:
            changes["workflow_summary"] = workflow_summary
        self._runs.document(run_id).update(changes)

    def set_current(self, current: CurrentRun) -> CurrentRun | None:
        previous = self.current()
        self._pointer.set(current.model_dump(mode="json"))
        return previous

    def current(self) -> CurrentRun | None:
        snapshot = self._pointer.get()
        return CurrentRun.model_validate(snapshot.to_dict()) if snapshot.exists else None
