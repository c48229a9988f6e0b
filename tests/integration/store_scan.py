"""Scan every table of every store for a string (a shopper id, an e-mail address).

Enumerated from ``shared.system.resources.SYSTEM``, so that a new table is covered without a
change here: every Bigtable table (keys and cell values), every BigQuery table (every
STRING column; ``dead_letters`` decoded from base64), every Firestore database (the
declared collections and any other found, sub-collections included), and every object
of every declared Cloud Storage bucket (the nightly's models, on the storage emulator).
"""

from __future__ import annotations

import base64
from typing import Any

from google.cloud import bigquery
from google.cloud.bigtable.row_filters import (
    RowFilterUnion,
    RowKeyRegexFilter,
    ValueRegexFilter,
)

from shared.platform import clients
from shared.system.resources import BIGTABLE_INSTANCE, SYSTEM


def _regex(text: str) -> bytes:
    import re

    return f"(?s).*{re.escape(text)}.*".encode()


def bigtable_hits(project: str, text: str) -> dict[str, int]:
    instance = clients.bigtable_client(project).instance(BIGTABLE_INSTANCE)
    hits: dict[str, int] = {}
    for declared in SYSTEM.bigtable_tables:
        table = instance.table(declared.name)
        union = RowFilterUnion(
            filters=[RowKeyRegexFilter(_regex(text)), ValueRegexFilter(_regex(text))]
        )
        found = sum(1 for _ in table.read_rows(filter_=union))
        hits[f"bigtable:{declared.name}"] = found
    return hits


def bigtable_counts(project: str) -> dict[str, int]:
    from google.cloud.bigtable.row_filters import CellsRowLimitFilter

    instance = clients.bigtable_client(project).instance(BIGTABLE_INSTANCE)
    return {
        f"bigtable:{t.name}": sum(
            1 for _ in instance.table(t.name).read_rows(filter_=CellsRowLimitFilter(1))
        )
        for t in SYSTEM.bigtable_tables
    }


def bigquery_hits(client: Any, project: str, text: str) -> dict[str, int]:
    hits: dict[str, int] = {}
    for table in SYSTEM.bigquery_tables:
        ref = f"`{project}.{table.dataset}.{table.name}`"
        strings = [c.name for c in table.columns if c.type == "STRING"]
        config = bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("t", "STRING", text)]
        )
        where = " OR ".join(f"STRPOS(IFNULL({c}, ''), @t) > 0" for c in strings)
        sql = f"SELECT COUNT(*) AS n FROM {ref} WHERE {where}"
        found = next(iter(client.query(sql, job_config=config).result(timeout=120))).n
        if "data_base64" in strings:
            rows = client.query(f"SELECT data_base64 FROM {ref}").result(timeout=120)
            found += sum(
                1 for r in rows if text in base64.b64decode(r.data_base64).decode(errors="replace")
            )
        hits[f"bigquery:{table.name}"] = int(found)
    return hits


def bigquery_counts(client: Any, project: str, text: str) -> dict[str, int]:
    """Rows per table NOT mentioning ``text`` in any STRING column (the others' rows);
    ``dead_letters``'s messages decoded from base64."""
    counts: dict[str, int] = {}
    for table in SYSTEM.bigquery_tables:
        ref = f"`{project}.{table.dataset}.{table.name}`"
        strings = [c.name for c in table.columns if c.type == "STRING"]
        where = " AND ".join(f"STRPOS(IFNULL({c}, ''), @t) = 0" for c in strings)
        config = bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("t", "STRING", text)]
        )
        if "data_base64" in strings:  # the message itself is encoded: decoded here
            sql = f"SELECT data_base64 FROM {ref} WHERE {where}"
            rows = client.query(sql, job_config=config).result(timeout=120)
            counts[f"bigquery:{table.name}"] = sum(
                1
                for r in rows
                if text not in base64.b64decode(r.data_base64).decode(errors="replace")
            )
            continue
        sql = f"SELECT COUNT(*) AS n FROM {ref} WHERE {where}"
        counts[f"bigquery:{table.name}"] = int(
            next(iter(client.query(sql, job_config=config).result(timeout=120))).n
        )
    return counts


def _documents(collection: Any) -> list[Any]:
    found = []
    for snapshot in collection.stream():
        found.append(snapshot)
        for sub in snapshot.reference.collections():
            found += _documents(sub)
    return found


def firestore_documents(project: str) -> dict[str, list[Any]]:
    """Every document of every database, by "database/collection"."""
    found: dict[str, list[Any]] = {}
    for database in SYSTEM.firestore_databases:
        client = clients.firestore_client(project, database.name)
        names = set(database.collections) | {c.id for c in client.collections()}
        for name in sorted(names):
            found[f"firestore:{database.name}/{name}"] = _documents(client.collection(name))
    return found


def firestore_hits(project: str, text: str) -> dict[str, int]:
    return {
        where: sum(1 for d in docs if text in d.id or text in str(d.to_dict()))
        for where, docs in firestore_documents(project).items()
    }


def firestore_counts(project: str, text: str) -> dict[str, int]:
    return {
        where: sum(1 for d in docs if text not in d.id and text not in str(d.to_dict()))
        for where, docs in firestore_documents(project).items()
    }


def bucket_hits(project: str, text: str) -> dict[str, int]:
    needle = text.encode()
    client = clients.storage_client(project)
    found: dict[str, int] = {}
    for declared in SYSTEM.buckets:
        blobs = client.list_blobs(declared.cloud_name(project))
        found[f"storage:{declared.name}"] = sum(
            1 for b in blobs if needle in b.name.encode() or needle in b.download_as_bytes()
        )
    return found


def scan(project: str, text: str) -> dict[str, int]:
    """Where ``text`` occurs: records per table, collection or directory (all listed)."""
    client = clients.bigquery_client(project, _bigquery_host())
    return {
        **bigtable_hits(project, text),
        **bigquery_hits(client, project, text),
        **firestore_hits(project, text),
        **bucket_hits(project, text),
    }


def others(project: str, text: str) -> dict[str, int]:
    """Records per table or collection that do NOT mention ``text`` (Bigtable: all rows)."""
    client = clients.bigquery_client(project, _bigquery_host())
    return {
        **bigquery_counts(client, project, text),
        **firestore_counts(project, text),
    }


def _bigquery_host() -> str | None:
    import os

    return os.environ.get("BIGQUERY_EMULATOR_HOST")
