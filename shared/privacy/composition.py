"""Composition of the privacy path: the eraser registry and the maintenance function.

Kept apart from ``shared.freezer.composition`` on purpose: the registry reaches every
store, the rewards vault included, and the ingestion, freezing, decision and training
code paths import ``composition`` (tests/unit/test_privacy_imports.py keeps the vault
adapter out of their import graph).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from shared.platform import logs
from shared.privacy.api import ErasureApiDependencies, MaintenanceDependencies
from shared.privacy.service import StoreRegistry


def privacy_registry(
    project: str,
    bigtable_instance: str,
    bigquery_emulator_host: str | None,
    batch_size: int = 1000,
    app_profile_id: str | None = None,
) -> StoreRegistry:
    """The eraser of every store in ``shared.privacy.store_plan.store_plan()``.

    The rewards game's own adapters erase its stores in the rewards database: the vault
    (``shared.rewards.firestore_vault``: claims, the winners' e-mail addresses)
    and the plays store.
    """
    from shared.platform import clients
    from shared.privacy.bigquery_erasers import (
        BigQueryDeadLetters,
        BigQueryRunRows,
        BigQueryShopperRows,
    )
    from shared.privacy.bigtable_erasers import (
        BigtablePersonalTrees,
        BigtableRejectedEvents,
        BigtableShopperEvents,
        BigtableShopperStates,
    )
    from shared.privacy.firestore_records import FirestoreNightlyRunAges
    from shared.privacy.service import RegisteredStore, ShopperDataStore
    from shared.privacy.store_plan import store_plan
    from shared.rewards.firestore_plays import FirestorePlayStore
    from shared.rewards.firestore_vault import FirestoreRewardsVault
    from shared.system.resources import (
        EXPERIENCE_TREES_TABLE,
        REJECTED_EVENTS_TABLE,
        REWARDS_DATABASE,
        SHOPPER_EVENTS_TABLE,
        SHOPPER_STATE_TABLE,
        SYSTEM,
    )

    bigtable = clients.bigtable_client(project, app_profile_id=app_profile_id)
    bigquery = clients.bigquery_client(project, bigquery_emulator_host)
    default_db = clients.firestore_client(project)
    tables = {t.name: t for t in SYSTEM.bigquery_tables}
    bigtable_erasers: dict[str, ShopperDataStore] = {
        SHOPPER_EVENTS_TABLE: BigtableShopperEvents(
            bigtable, bigtable_instance, batch_size=batch_size
        ),
        SHOPPER_STATE_TABLE: BigtableShopperStates(
            bigtable, bigtable_instance, batch_size=batch_size
        ),
        EXPERIENCE_TREES_TABLE: BigtablePersonalTrees(
            bigtable, bigtable_instance, batch_size=batch_size
        ),
        REJECTED_EVENTS_TABLE: BigtableRejectedEvents(
            bigtable, bigtable_instance, batch_size=batch_size
        ),
    }
    registry = StoreRegistry()
    for planned in store_plan():
        store: ShopperDataStore
        if planned.kind == "bigtable":
            store = bigtable_erasers[planned.target]
        elif planned.kind == "bigquery":
            store = BigQueryShopperRows(bigquery, project, tables[planned.target])
        elif planned.kind == "bigquery_runs":
            store = BigQueryRunRows(
                bigquery, project, tables[planned.target], FirestoreNightlyRunAges(default_db)
            )
        elif planned.kind == "bigquery_dead_letters":
            store = BigQueryDeadLetters(bigquery, project, tables[planned.target])
        elif planned.target == f"{REWARDS_DATABASE}/claims":
            store = FirestoreRewardsVault(clients.firestore_client(project, REWARDS_DATABASE))
        elif planned.target == f"{REWARDS_DATABASE}/plays":
            store = FirestorePlayStore(clients.firestore_client(project, REWARDS_DATABASE))
        else:
            raise ValueError(f"{planned.name}: no eraser is wired for {planned.target}")
        registry.register(RegisteredStore(planned.name, planned.data_class, store))
    return registry


@functools.cache
def privacy_maintenance() -> MaintenanceDependencies:
    from shared.platform import clients
    from shared.platform.transient import is_transient
    from shared.privacy.firestore_records import (
        FirestoreAuditLog,
        FirestoreErasureRequests,
        FirestoreNightlyRunsInProgress,
        FirestoreRetention,
    )
    from shared.system.resources import RETENTION
    from shared.system.settings import PrivacySettings

    settings = PrivacySettings()
    logs.configure(settings.log_level)
    firestore = clients.firestore_client(settings.project)
    return MaintenanceDependencies(
        registry=privacy_registry(
            settings.project,
            settings.bigtable_instance,
            settings.bigquery_emulator_host,
            settings.batch_size,
            settings.bigtable_app_profile,
        ),
        requests=FirestoreErasureRequests(firestore),
        audit=FirestoreAuditLog(firestore),
        retention=FirestoreRetention(
            firestore,
            RETENTION,
            clients.firestore_client(settings.project, settings.credentials_database),
        ),
        defaults=RETENTION,
        is_transient=is_transient,
        requests_per_sweep=settings.requests_per_sweep,
        erasure_settle=timedelta(seconds=settings.erasure_settle_s),
        work_in_progress=FirestoreNightlyRunsInProgress(
            firestore, timedelta(seconds=settings.nightly_max_run_s), lambda: datetime.now(UTC)
        ),
    )


@functools.cache
def erasure_api() -> ErasureApiDependencies:
    from shared.platform import clients
    from shared.privacy.firestore_records import FirestoreErasureRequests, FirestoreSuppressionList
    from shared.privacy.store_plan import store_names
    from shared.privacy_marks.bigtable_marks import BigtablePrivacyMarks
    from shared.privacy_marks.marks import ShopperHasher
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.keys import CachedApiKeys
    from shared.system.settings import ErasureSettings

    settings = ErasureSettings()
    logs.configure(settings.log_level)
    firestore = clients.firestore_client(settings.project)
    names = store_names()
    return ErasureApiDependencies(
        api_keys=CachedApiKeys(
            FirestoreApiKeyStore(
                clients.firestore_client(settings.project, settings.credentials_database)
            ),
            settings.api_key_cache_ttl_s,
        ),
        requests=FirestoreErasureRequests(firestore),
        suppressions=FirestoreSuppressionList(firestore),
        marks=BigtablePrivacyMarks(
            clients.bigtable_client(settings.project, app_profile_id=settings.bigtable_app_profile),
            settings.bigtable_instance,
        ),
        hasher=ShopperHasher(settings.shopper_hash_key.encode()),
        store_names=lambda: list(names),
    )
