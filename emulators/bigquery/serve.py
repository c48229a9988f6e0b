"""Run the bqemulator BigQuery emulator offline, in the foreground.

Run with the isolated venv's interpreter (``.local/venvs/bigquery/bin/python``)::

    serve.py [--project demo-cartwise] [--host 127.0.0.1] [--port 9050]
             [--grpc-port 9060] [--data-dir DIR] [--log-level info]
             [--log-format json|console]

Without ``--data-dir`` the emulator is ephemeral (DuckDB ``:memory:``); with it,
state is kept in ``DIR/bqemulator.duckdb`` and survives restarts.

bqemulator runs ``INSTALL spatial`` / ``INSTALL avro`` at boot, which would
download from extensions.duckdb.org. We first install both extensions from the
``duckdb-extension-*`` wheels into DuckDB's local extension directory, so the
emulator's own ``INSTALL`` is a no-op and nothing is fetched. Ready when
``GET http://HOST:PORT/readyz`` answers 200 (gRPC binds a moment later).
SIGINT/SIGTERM shut it down cleanly.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import duckdb
from bqemulator.config import LogFormat, LogLevel, PersistenceMode, Settings
from bqemulator.observability.logging_ import configure_logging, get_logger
from duckdb_extensions import import_extension  # type: ignore[import-untyped]

EXTENSIONS: tuple[str, ...] = ("spatial", "avro")

log = get_logger("serve")


def install_bundled_extensions(names: Sequence[str] = EXTENSIONS) -> None:
    """Install (and test-load) DuckDB extensions from their pip packages."""
    con = duckdb.connect(":memory:")
    try:
        for name in names:
            import_extension(name, con=con)
            con.execute(f"LOAD {name}")
    finally:
        con.close()


def disable_automatic_snapshots() -> None:
    """No copy of the whole table after every write (``FOR SYSTEM_TIME AS OF`` goes).

    bqemulator 1.4.0 snapshots a table after each DML, load or insert (``CREATE TABLE
    ... AS SELECT *`` into ``_bqemulator_snapshots``, kept 7 days) to serve time travel.
    Every write then costs a copy of the whole table, in memory: a year of backfill
    (3.7 million rows) took the emulator to 18 GB, and the freezer's MERGEs slowed as its
    tables grew. cartwise never reads the past of a table, so automatic snapshots are
    off; ``CREATE SNAPSHOT TABLE`` (``kind="USER"``) still works.
    """
    from bqemulator.versioning.snapshots import SnapshotManager

    capture = SnapshotManager.capture

    def capture_user_snapshots_only(
        self: SnapshotManager, *args: object, kind: str = "AUTO", **kwargs: object
    ) -> object:
        if kind == "AUTO":
            return None
        return capture(self, *args, kind=kind, **kwargs)  # type: ignore[arg-type]

    SnapshotManager.capture = capture_user_snapshots_only  # type: ignore[assignment,method-assign]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="demo-cartwise", help="default project id")
    parser.add_argument("--host", default="127.0.0.1", help="bind host for REST and gRPC")
    parser.add_argument("--port", type=int, default=9050, help="REST port")
    parser.add_argument("--grpc-port", type=int, default=9060, help="gRPC (Storage API) port")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="persist here (default: in memory)"
    )
    parser.add_argument(
        "--time-travel",
        action="store_true",
        help="keep bqemulator's snapshot of every table after every write (slow, memory)",
    )
    parser.add_argument("--log-level", default="info", choices=[v.value for v in LogLevel])
    parser.add_argument("--log-format", default="json", choices=[v.value for v in LogFormat])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = Settings(
        rest_host=args.host,
        rest_port=args.port,
        grpc_host=args.host,
        grpc_port=args.grpc_port,
        default_project_id=args.project,
        persistence_mode=PersistenceMode.PERSISTENT if args.data_dir else PersistenceMode.EPHEMERAL,
        data_dir=args.data_dir,
        log_level=LogLevel(args.log_level),
        log_format=LogFormat(args.log_format),
    )
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    install_bundled_extensions()
    if not args.time_travel:
        disable_automatic_snapshots()
    log.info("serve.extensions_ready", duckdb=duckdb.__version__, extensions=list(EXTENSIONS))
    from bqemulator.server import run_forever  # imported late: it logs at import time

    run_forever(settings)


if __name__ == "__main__":
    main()
