"""The record of nightly runs: which steps ran, how long, what they said; which run is live.

One record per run (Firestore ``nightly_runs/{run_id}``): its cut-off, its status
(``running``, ``published``, ``refused_by_gate``, ``failed``), each step's status, start,
duration and summary as the step service saw them, and at the end the workflow's own
summary (durations including retries). ``nightly/current`` names the run whose trees are
live (written by the ``publish`` step). ``cartwise nightly`` follows a run's progress from
its record.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["running", "published", "refused_by_gate", "failed"]
StepStatus = Literal["running", "succeeded", "failed"]
Outcome = Literal["published", "refused_by_gate", "failed"]

RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


class StepRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: StepStatus
    started_at: datetime
    seconds: float | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None


class RunRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str = Field(pattern=RUN_ID)
    cutoff: date
    status: RunStatus = "running"
    started_at: datetime
    finished_at: datetime | None = None
    steps: dict[str, StepRecord] = {}
    workflow_summary: dict[str, Any] | None = None


class CurrentRun(BaseModel):
    """The run whose trees are live."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    cutoff: date
    published_at: datetime
    trees: dict[str, Any]
    evaluation: dict[str, Any] | None = None


class NightlyRunStore(Protocol):
    def begin(self, record: RunRecord) -> None:
        """Create the run's record (a re-begun run keeps the steps it already ran)."""
        ...

    def get(self, run_id: str) -> RunRecord | None: ...

    def record_step(self, run_id: str, step: str, record: StepRecord) -> None: ...

    def finish(
        self,
        run_id: str,
        status: RunStatus,
        finished_at: datetime,
        workflow_summary: dict[str, Any] | None,
    ) -> None: ...

    def set_current(self, current: CurrentRun) -> CurrentRun | None:
        """Make ``current`` the live run; return the one it replaces."""
        ...

    def current(self) -> CurrentRun | None: ...
