"""BigQuery adapter of ``ReadModelSink`` for the landing tables: Storage Write API appends.

The freezer appends each batch's rows to ``cartwise_landing.landing_<read model>`` through
the Storage Write API's default stream (at-least-once; no DML, so no DML quota and no
table-level write concurrency limit), with ``landed_at`` stamped just before the append.
The call returns once BigQuery answered the append: the rows are durable and committed,
and only then does the worker acknowledge the batch. A failed or timed-out append raises
``TransientSinkError``: Pub/Sub redelivers the batch, and the copy that lands again carries
a later ``landed_at`` (the compaction de-duplicates on ``row_id``, docs/FREEZER.md).

Rows travel as protocol buffers built from the table declaration (the Storage Write API's
documented format; its Arrow format is allow-listed only): STRING and NUMERIC as strings,
INT64 as int64, TIMESTAMP as int64 microseconds since the epoch, which is what the API
takes for those types (https://cloud.google.com/bigquery/docs/write-api#data_type_conversions).
Requests stay under the API's 10 MB per ``AppendRows`` request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from google.api_core.exceptions import GoogleAPIError
from google.cloud.bigquery.retry import DEFAULT_RETRY
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from shared.freezer.read_models import LANDED_AT, Row
from shared.platform.resource_model import BigQueryTable, Column
from shared.platform.sinks import TransientSinkError

# Bounded: LandingSettings.compaction_lag_s must exceed it (an append that outlives its
# deadline is redelivered, and the copy that lands again is the one the compaction sees).
APPEND_TIMEOUT_S = 10.0
MAX_REQUEST_BYTES = 8 * 1024 * 1024  # under the API's 10 MB per AppendRows request

_PROTO_TYPES = {
    "STRING": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "NUMERIC": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "INT64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "TIMESTAMP": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
}


def _micros(value: str | datetime) -> int:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def row_descriptor(table: BigQueryTable) -> descriptor_pb2.DescriptorProto:
    """The proto2 message of one row of ``table`` (every field optional: NULL = absent)."""
    message = descriptor_pb2.DescriptorProto(name=f"Row_{table.name}")
    for number, column in enumerate(table.columns, start=1):
        message.field.add(
            name=column.name,
            number=number,
            type=_PROTO_TYPES[column.type],
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    return message


def _message_class(descriptor: descriptor_pb2.DescriptorProto) -> Any:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(
        descriptor_pb2.FileDescriptorProto(
            name=f"{descriptor.name}.proto", syntax="proto2", message_type=[descriptor]
        )
    )
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(descriptor.name))


def _converter(column: Column) -> Callable[[Any], Any]:
    if column.type == "TIMESTAMP":
        return _micros
    if column.type == "INT64":
        return int
    return str


class StorageWriteLanding:
    """``write(read_model, rows)``: appends the rows to the read model's landing table."""

    def __init__(
        self,
        write_client: Any,
        project: str,
        landings: dict[str, BigQueryTable],
        clock: Callable[[], datetime],
        timeout_s: float = APPEND_TIMEOUT_S,
    ) -> None:
        from google.cloud.bigquery_storage_v1 import types

        self._types = types
        self._client = write_client
        self._clock = clock
        self._timeout_s = timeout_s
        self._landings = landings
        self._streams = {
            name: f"projects/{project}/datasets/{t.dataset}/tables/{t.name}/streams/_default"
            for name, t in landings.items()
        }
        self._descriptors = {name: row_descriptor(t) for name, t in landings.items()}
        self._classes = {name: _message_class(d) for name, d in self._descriptors.items()}
        self._columns = {
            name: [(c.name, _converter(c)) for c in t.columns] for name, t in landings.items()
        }

    def _serialize(self, table: str, rows: Sequence[Row], landed_at: datetime) -> list[bytes]:
        cls = self._classes[table]
        columns = self._columns[table]
        out = []
        for row in rows:
            values = {**row, LANDED_AT.name: landed_at}
            message = cls(
                **{
                    name: convert(values[name])
                    for name, convert in columns
                    if values.get(name) is not None
                }
            )
            out.append(message.SerializeToString())
        return out

    def _requests(self, table: str, serialized: list[bytes]) -> Iterator[Any]:
        types = self._types
        schema = types.ProtoSchema(proto_descriptor=self._descriptors[table])
        chunk: list[bytes] = []
        size = 0
        first = True
        for row in [*serialized, None]:
            if row is None or (chunk and size + len(row) > MAX_REQUEST_BYTES):
                data = types.AppendRowsRequest.ProtoData(
                    rows=types.ProtoRows(serialized_rows=chunk),
                    writer_schema=schema if first else None,
                )
                yield types.AppendRowsRequest(write_stream=self._streams[table], proto_rows=data)
                first, chunk, size = False, [], 0
            if row is not None:
                chunk.append(row)
                size += len(row)

    def write(self, table: str, rows: Sequence[Row]) -> int:
        """Append the rows (``landed_at`` = now); return how many BigQuery acknowledged."""
        if not rows:
            return 0
        landed_at = self._clock()
        requests = list(self._requests(table, self._serialize(table, rows, landed_at)))
        deadline = time.monotonic() + self._timeout_s
        try:
            answers = self._client.append_rows(iter(requests), timeout=self._timeout_s)
            acknowledged = 0
            for answer in answers:
                if answer.error.code or answer.row_errors:
                    detail = answer.error.message or str(list(answer.row_errors)[:3])
                    raise TransientSinkError(f"landing {table}: append refused: {detail}")
                acknowledged += 1
                if acknowledged == len(requests):
                    break
        except (GoogleAPIError, TimeoutError, OSError) as exc:
            raise TransientSinkError(f"landing {table}: {exc}") from exc
        if acknowledged < len(requests) or time.monotonic() > deadline:
            # Not every request answered in time: the batch is redelivered (docs/FREEZER.md).
            raise TransientSinkError(f"landing {table}: {acknowledged}/{len(requests)} appends")
        return len(rows)


def write_client(grpc_host: str | None) -> Any:
    """The Storage Write API client: the emulator's gRPC port locally (plain text)."""
    from google.cloud.bigquery_storage_v1 import BigQueryWriteClient

    if grpc_host:
        import grpc
        from google.cloud.bigquery_storage_v1.services.big_query_write.transports import (
            BigQueryWriteGrpcTransport,
        )

        return BigQueryWriteClient(
            transport=BigQueryWriteGrpcTransport(channel=grpc.insecure_channel(grpc_host))
        )
    return BigQueryWriteClient()


class InsertAllLanding:
    """The local stack's landing path: ``tabledata.insertAll`` (append-only, at least once,
    no insertId), because bqemulator 1.4.0 hangs whole when Storage Write appends run
    beside queries (docs/EMULATORS.md). Same tables, same ``landed_at`` rule."""

    def __init__(
        self,
        client: Any,
        project: str,
        landings: dict[str, BigQueryTable],
        clock: Callable[[], datetime],
        timeout_s: float = APPEND_TIMEOUT_S,
    ) -> None:
        self._client = client
        self._clock = clock
        self._timeout_s = timeout_s
        self._refs = {n: f"{project}.{t.dataset}.{t.name}" for n, t in landings.items()}

    def write(self, table: str, rows: Sequence[Row]) -> int:
        if not rows:
            return 0
        landed_at = self._clock().isoformat()
        started = time.monotonic()
        try:
            errors = self._client.insert_rows_json(
                self._refs[table],
                [{**row, LANDED_AT.name: landed_at} for row in rows],
                row_ids=[None] * len(rows),
                timeout=self._timeout_s,
                # The library retries a 5xx for up to 10 minutes by default: the append's
                # whole deadline bounds the retries, so that an outage reaches the worker
                # (redelivery, then the dead-letter topic) instead of stalling the batch.
                retry=DEFAULT_RETRY.with_timeout(self._timeout_s),
            )
        except (GoogleAPIError, TimeoutError, OSError) as exc:
            raise TransientSinkError(f"landing {table}: {exc}") from exc
        if errors:
            raise TransientSinkError(f"landing {table}: append refused: {errors[:3]}")
        if time.monotonic() - started > self._timeout_s:
            raise TransientSinkError(f"landing {table}: append answered after its deadline")
        return len(rows)
