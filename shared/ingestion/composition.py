"""The composition root of ``ingest_events`` (``functions/ingest_events/main.py``).

``ingest()`` builds the function's dependencies once per process: its settings, its
clients (created on first use, never at import) and the adapters of the ports
``api.handle`` and ``service.ingest`` call.
"""

from __future__ import annotations

import functools

from shared.ingestion.api import IngestDependencies
from shared.platform import logs
from shared.retailers.keys import CachedApiKeys
from shared.system.settings import IngestSettings


@functools.cache
def ingest() -> IngestDependencies:
    """Built once per instance, on first use: clients are reused across requests."""
    from shared.ingestion.bigtable_events import BigtableEventStore, BigtableRejectedEventStore
    from shared.ingestion.bigtable_rate_limits import BigtableRateLimiter
    from shared.ingestion.pubsub_publisher import (
        PubSubEventPublisher,
        PubSubRejectedEventPublisher,
        RejectedEventFanout,
    )
    from shared.platform import clients
    from shared.privacy.firestore_records import FirestoreSuppressionList
    from shared.privacy.service import SuppressionFilter
    from shared.privacy_marks.marks import ShopperHasher
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.firestore_retailers import FirestoreRetailerRates

    settings = IngestSettings()
    logs.configure(settings.log_level)
    bigtable = clients.bigtable_client(
        settings.project, app_profile_id=settings.bigtable_app_profile
    )
    publisher = clients.publisher_api()
    firestore = clients.firestore_client(settings.project)
    return IngestDependencies(
        store=BigtableEventStore(bigtable, settings.bigtable_instance),
        publisher=PubSubEventPublisher(
            publisher,
            clients.topic_path(settings.project, settings.events_topic),
            settings.publish_timeout_s,
        ),
        rejected_sink=RejectedEventFanout(
            BigtableRejectedEventStore(bigtable, settings.bigtable_instance),
            PubSubRejectedEventPublisher(
                publisher,
                clients.topic_path(settings.project, settings.rejected_topic),
                settings.publish_timeout_s,
            ),
        ),
        api_keys=CachedApiKeys(
            FirestoreApiKeyStore(
                clients.firestore_client(settings.project, settings.credentials_database)
            ),
            settings.api_key_cache_ttl_s,
        ),
        rate_limiter=BigtableRateLimiter(bigtable, settings.bigtable_instance),
        rate_limit_per_s=FirestoreRetailerRates(
            firestore, settings.default_rate_limit_per_s, settings.api_key_cache_ttl_s
        ),
        suppressed=SuppressionFilter(
            FirestoreSuppressionList(firestore),
            ShopperHasher(settings.shopper_hash_key.encode()),
            reasons=("objected",),
            ttl_s=settings.suppression_cache_ttl_s,
        ),
    )
