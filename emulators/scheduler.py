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
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from croniter import croniter

from emulators.config import StackSettings, function_ports
from shared.logs import configure
from shared.resources import SYSTEM, SchedulerJob, SystemResources

log = logging.getLogger("cartwise.scheduler")


def job_url(settings: StackSettings, system: SystemResources, job: SchedulerJob) -> str:
    port = function_ports(settings, [f.name for f in system.functions])[job.function]
    return f"http://{settings.host}:{port}{job.path}"


def fire(url: str, job: SchedulerJob, timeout_s: float = 300) -> int:
    """Call the job's target once, as Cloud Scheduler does; return the HTTP status."""
    request = urllib.request.Request(  # noqa: S310 - loopback URL built from settings
        url,
        data=job.body.encode() if job.method == "POST" else None,
        method=job.method,
        headers={"Content-Type": "application/json", "X-CloudScheduler-JobName": job.name},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    log.info("job fired", extra={"job": job.name, "url": url, "status": status})
    return status


def next_fire_times(jobs: Sequence[SchedulerJob], now: datetime) -> dict[str, datetime]:
    return {
        job.name: croniter(job.schedule, now.astimezone(ZoneInfo(job.time_zone))).get_next(datetime)
        for job in jobs
    }


def run(
    settings: StackSettings, system: SystemResources, heartbeat: Path, tick_s: float = 1.0
) -> None:
    jobs = {job.name: job for job in system.scheduler_jobs}
    due = next_fire_times(list(jobs.values()), datetime.now(UTC))
    log.info("scheduler started", extra={"jobs": {k: v.isoformat() for k, v in due.items()}})
    while True:
        heartbeat.write_text(
            json.dumps({"at": time.time(), "next": {k: v.isoformat() for k, v in due.items()}})
        )
        now = datetime.now(UTC)
        for name, when in list(due.items()):
            if when <= now:
                try:
                    fire(job_url(settings, system, jobs[name]), jobs[name])
                except OSError:
                    log.exception("job failed", extra={"job": name})
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
        jobs = {job.name: job for job in SYSTEM.scheduler_jobs}
        if args.fire not in jobs:
            print(f"unknown job {args.fire!r}; known: {sorted(jobs)}", file=sys.stderr)
            return 2
        status = fire(job_url(settings, SYSTEM, jobs[args.fire]), jobs[args.fire])
        return 0 if status < 300 else 1
    heartbeat = args.heartbeat or settings.local_dir / "scheduler.heartbeat"
    run(settings, SYSTEM, heartbeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
