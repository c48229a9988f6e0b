"""Run the bqemulator BigQuery emulator offline, in the foreground.

Run with the isolated venv's interpreter (``.local/venvs/bigquery/bin/python``)::

    serve.py [--project demo-cartwise] [--host 127.0.0.1] [--port 9050]
             [--grpc-port 9060] [--data-dir DIR] [--memory-limit 8GiB] [--log-level info]
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


def limit_memory(memory_limit: str, temp_directory: Path | None) -> None:
    """DuckDB's ``memory_limit`` (its default is 80 % of the machine), and where it spills.

    The emulator's Python side (REST results as JSON, Arrow buffers of the Storage API)
    lives beside DuckDB in the same process: with DuckDB allowed 80 % of 24 GiB, the
    nightly on a 10,000-shopper population took the process past the machine's memory and
    the kernel killed it (docs/NIGHTLY.md). Bounded, DuckDB spills its joins and
    aggregations to ``temp_directory`` instead.
    """
    from bqemulator.storage.engine import DuckDBEngine

    apply = DuckDBEngine._apply_session_pragmas

    def apply_with_limit(self: DuckDBEngine) -> None:
        apply(self)
        assert self._connection is not None
        self._connection.execute(f"SET memory_limit = '{memory_limit}'")
        if temp_directory is not None:
            self._connection.execute(f"SET temp_directory = '{temp_directory}'")

    DuckDBEngine._apply_session_pragmas = apply_with_limit  # type: ignore[method-assign]


def uncap_read_responses() -> None:
    """Lets bqemulator send Storage Read responses larger than its append cap.

    bqemulator 1.4.0 caps every gRPC message it sends at its AppendRows cap + 1 MiB
    (11 MiB) and sends a read stream in record batches of 65,536 rows: a stream of wide
    rows (the nightly's packed candidates, one row per shopper) fails with "Sent message
    larger than max (122096272 vs. 11534336)". BigQuery's own read responses are not
    bounded by the append cap, and its client accepts any size
    (``grpc.max_receive_message_length`` -1); the receive cap, what the append limit is
    about, is kept.
    """
    import grpc.aio

    server = grpc.aio.server

    def server_with_uncapped_send(
        *args: object, options: Sequence[tuple[str, object]] = (), **kwargs: object
    ) -> object:
        uncapped = [
            (key, -1 if key == "grpc.max_send_message_length" else value) for key, value in options
        ]
        return server(*args, options=uncapped, **kwargs)  # type: ignore[arg-type]

    grpc.aio.server = server_with_uncapped_send  # type: ignore[assignment]


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
    parser.add_argument(
        "--memory-limit", default="8GiB", help="DuckDB's memory_limit (it spills beyond)"
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
    uncap_read_responses()
    limit_memory(args.memory_limit, args.data_dir / "spill" if args.data_dir else None)
    log.info("serve.extensions_ready", duckdb=duckdb.__version__, extensions=list(EXTENSIONS))
    from bqemulator.server import run_forever  # imported late: it logs at import time

    run_forever(settings)


if __name__ == "__main__":
    main()
