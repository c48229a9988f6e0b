"""Lazily built Google Cloud clients, pointed at the emulators when their hosts are set.

The official libraries honour ``PUBSUB_EMULATOR_HOST``, ``BIGTABLE_EMULATOR_HOST``,
``FIRESTORE_EMULATOR_HOST`` and ``STORAGE_EMULATOR_HOST`` themselves; BigQuery has no such
variable, so ``BIGQUERY_EMULATOR_HOST`` is read here and turned into an endpoint with
anonymous credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud import bigquery, bigtable, firestore
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient
    from google.cloud.storage import Client as StorageClient


def bigquery_client(project: str, emulator_host: str | None) -> bigquery.Client:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    if emulator_host:
        return bigquery.Client(
            project=project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=f"http://{emulator_host}"),
        )
    return bigquery.Client(project=project)


def storage_client(project: str) -> StorageClient:
    """Cloud Storage; the library itself honours ``STORAGE_EMULATOR_HOST`` (anonymous
    credentials against the emulator)."""
    from google.cloud.storage import Client

    return Client(project=project)


def bigtable_client(
    project: str, *, admin: bool = False, app_profile_id: str | None = None
) -> bigtable.Client:
    """``app_profile_id``: the app profile every table opened through this client names
    in its requests (None: the instance's default profile). The components name the
    declared single-cluster profile (docs/DEPLOY.md, "Bigtable replication")."""
    from google.cloud import bigtable

    if app_profile_id is None:
        return bigtable.Client(project=project, admin=admin)
    return _profiled_bigtable_client(project, admin, app_profile_id)


def _profiled_bigtable_client(project: str, admin: bool, app_profile_id: str) -> bigtable.Client:
    # The library takes the app profile per table (``Instance.table(..., app_profile_id)``),
    # not per client: these two subclasses give it to every table this client opens, so
    # that no adapter has to carry it (and none can forget it).
    from google.cloud import bigtable
    from google.cloud.bigtable.instance import Instance
    from google.cloud.bigtable.table import Table

    class ProfiledInstance(Instance):
        def table(
            self, table_id: str, mutation_timeout: Any = None, app_profile_id: str | None = None
        ) -> Table:
            profile = app_profile_id or self._client.app_profile_id
            return Table(table_id, self, mutation_timeout, profile)

    class ProfiledClient(bigtable.Client):
        def __init__(self, app_profile_id: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.app_profile_id = app_profile_id

        def instance(self, instance_id: str, *args: Any, **kwargs: Any) -> Instance:
            return ProfiledInstance(instance_id, self, *args, **kwargs)

    return ProfiledClient(app_profile_id, project=project, admin=admin)


def firestore_client(project: str, database: str = "(default)") -> firestore.Client:
    from google.cloud import firestore

    return firestore.Client(project=project, database=database)


def publisher_client() -> PublisherClient:
    """The high-level publisher, for admin calls (topics); events go via publisher_api()."""
    from google.cloud.pubsub_v1 import PublisherClient

    return PublisherClient()


def publisher_api() -> Any:
    """The GAPIC publisher: synchronous ``publish(topic, messages)`` RPCs, no batcher."""
    import os

    from google.pubsub_v1.services.publisher import PublisherClient as Gapic

    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if host:
        import grpc
        from google.auth.credentials import AnonymousCredentials
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

        return Gapic(
            transport=PublisherGrpcTransport(
                channel=grpc.insecure_channel(host), credentials=AnonymousCredentials()
            )
        )
    return Gapic()


def topic_path(project: str, topic: str) -> str:
    return f"projects/{project}/topics/{topic}"


def subscriber_client() -> SubscriberClient:
    from google.cloud.pubsub_v1 import SubscriberClient

    return SubscriberClient()


def bigquery_read_client(grpc_host: str | None) -> Any:
    """The BigQuery Storage Read API client: the emulator's gRPC port locally (plain text,
    ``BIGQUERY_STORAGE_EMULATOR_HOST``), the service's own endpoint in the cloud."""
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

    if grpc_host:
        import grpc
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
            BigQueryReadGrpcTransport,
        )

        # As the client's own channel does: read responses carry whole record batches,
        # far above gRPC's 4 MiB default receive limit.
        channel = grpc.insecure_channel(
            grpc_host, options=[("grpc.max_receive_message_length", -1)]
        )
        return BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel))
    return BigQueryReadClient()
