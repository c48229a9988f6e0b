"""Local stand-in for Cloud Scheduler: fires the declared jobs on their cron schedules.

It reads the same ``SchedulerJob`` declarations that the Pulumi program deploys, and calls
the same targets (a function's URL and path, method and body). ``--fire NAME`` fires one
job now and exits (what ``gcloud scheduler jobs run`` does in the cloud).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from croniter import croniter

from emulators.config import StackSettings, function_ports
from shared.platform.logs import configure
from shared.system.resources import SYSTEM, SchedulerJob, SystemResources

log = logging.getLogger("cartwise.scheduler")


LOCATION = "europe-west1"


def job_url(settings: StackSettings, system: SystemResources, job: SchedulerJob) -> str:
    if job.workflow is not None:
        return (
            f"http://{settings.host}:{settings.workflows_port}/v1/projects/{settings.project}"
            f"/locations/{LOCATION}/workflows/{job.workflow}/executions"
        )
    assert job.function is not None
    port = function_ports(settings, [f.name for f in system.functions])[job.function]
    return f"http://{settings.host}:{port}{job.path}"


def job_body(job: SchedulerJob) -> bytes | None:
    """What the target receives: the body, or for a workflow a new execution whose
    argument is the body (Cloud Scheduler's Workflows target)."""
    if job.workflow is not None:
        return json.dumps({"argument": job.body}).encode()
    return job.body.encode() if job.method == "POST" else None


def fire(url: str, job: SchedulerJob, timeout_s: float = 300) -> int:
    """Call the job's target once, as Cloud Scheduler does; return the HTTP status.

    The local workflows emulator answers when the execution ends (the cloud answers when
    it starts): the caller of a workflow job fires it from a thread (``fire_in_background``).
    """
    request = urllib.request.Request(  # noqa: S310 - loopback URL built from settings
        url,
        data=job_body(job),
        method="POST" if job.workflow is not None else job.method,
        headers={"Content-Type": "application/json", "X-CloudScheduler-JobName": job.name},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    log.info("job fired", extra={"job": job.name, "url": url, "status": status})
    return status


def fire_in_background(url: str, job: SchedulerJob) -> threading.Thread:
    """A job whose target may run for a while (a workflow execution; the compaction's
    minute of passes): the scheduler keeps ticking, the other jobs keep their times."""

    def run() -> None:
        try:
            fire(url, job, timeout_s=3600)
        except OSError:
            log.exception("job failed", extra={"job": job.name})

    thread = threading.Thread(target=run, name=f"job-{job.name}", daemon=True)
    thread.start()
    return thread


def next_fire_times(jobs: Sequence[SchedulerJob], now: datetime) -> dict[str, datetime]:
    return {
        job.name: croniter(job.schedule, now.astimezone(ZoneInfo(job.time_zone))).get_next(datetime)
        for job in jobs
    }


def run(
    settings: StackSettings, system: SystemResources, heartbeat: Path, tick_s: float = 1.0
) -> None:
    jobs = {job.name: job for job in system.schedules()}
    due = next_fire_times(list(jobs.values()), datetime.now(UTC))
    log.info("scheduler started", extra={"jobs": {k: v.isoformat() for k, v in due.items()}})
    # A function job still running when it is due again is skipped (one in flight per job,
    # as when the scheduler waited for each; a slow job no longer delays the others).
    running: dict[str, threading.Thread] = {}
    while True:
        heartbeat.write_text(
            json.dumps({"at": time.time(), "next": {k: v.isoformat() for k, v in due.items()}})
        )
        now = datetime.now(UTC)
        for name, when in list(due.items()):
            if when <= now:
                if jobs[name].workflow is not None:
                    fire_in_background(job_url(settings, system, jobs[name]), jobs[name])
                elif name in running and running[name].is_alive():
                    log.info("job still running: skipped", extra={"job": name})
                else:
                    running[name] = fire_in_background(
                        job_url(settings, system, jobs[name]), jobs[name]
                    )
                due[name] = next_fire_times([jobs[name]], now)[name]
        time.sleep(tick_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emulators.scheduler", description=__doc__)
    parser.add_argument("--heartbeat", type=Path)
    parser.add_argument("--fire", metavar="JOB", help="fire one job now and exit")
    args = parser.parse_args(argv)
    configure()
    settings = StackSettings()
    if args.fire:
        jobs = {job.name: job for job in SYSTEM.schedules()}
        if args.fire not in jobs:
            print(f"unknown job {args.fire!r}; known: {sorted(jobs)}", file=sys.stderr)
            return 2
        job = jobs[args.fire]
        status = fire(job_url(settings, SYSTEM, job), job, timeout_s=3600)
        return 0 if status < 300 else 1
    heartbeat = args.heartbeat or settings.local_dir / "scheduler.heartbeat"
    run(settings, SYSTEM, heartbeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
