"""The composition root of ``campaigns`` (``functions/campaigns/main.py``).

``campaigns()`` builds the function's dependencies once per process: its settings, its
Firestore and BigQuery clients (created on first use, never at import), the back office's
stores (CSM accounts read from the credentials database, sessions in the back-office
database), its login throttle, the campaign report, and the publisher of campaign changes.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from shared.campaigns.api import CampaignsDependencies
from shared.platform import logs
from shared.system.settings import CampaignsSettings


@functools.cache
def campaigns() -> CampaignsDependencies:
    """Built once per instance, on first use: clients are reused across requests."""
    from shared.campaigns.admin import AdminDependencies
    from shared.campaigns.bigquery_catalog import BigQueryCatalogue
    from shared.campaigns.firestore_admin import (
        FirestoreAuditLog,
        FirestoreCsmAccounts,
        FirestoreRetailerDirectory,
    )
    from shared.campaigns.firestore_campaigns import (
        CachedCampaigns,
        FirestoreCampaignStats,
        FirestoreCampaignStore,
    )
    from shared.campaigns.firestore_sessions import FirestoreSessions
    from shared.campaigns.model import Campaign
    from shared.campaigns.pubsub_changes import PubSubCampaignChanges
    from shared.campaigns.report import campaign_report
    from shared.campaigns.sessions import LoginThrottle, SessionPolicy
    from shared.decisions.previews import samples
    from shared.platform import clients
    from shared.platform.bigquery_warehouse import BigQueryWarehouse

    settings = CampaignsSettings()
    logs.configure(settings.log_level)
    firestore = clients.firestore_client(settings.project)
    credentials = clients.firestore_client(settings.project, settings.credentials_database)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    warehouse = BigQueryWarehouse(bigquery, settings.project, settings.dataset, ())

    def report(campaign: Campaign, now: datetime) -> dict[str, Any]:
        return campaign_report(campaign, warehouse, settings.project, settings.dataset, now)

    return CampaignsDependencies(
        admin=AdminDependencies(
            accounts=FirestoreCsmAccounts(credentials, settings.account_cache_ttl_s),
            campaigns=CachedCampaigns(FirestoreCampaignStore(firestore)),
            audit=FirestoreAuditLog(firestore),
            retailers=FirestoreRetailerDirectory(firestore, credentials),
            products=BigQueryCatalogue(bigquery, settings.project, settings.dataset),
            changes=PubSubCampaignChanges(
                clients.publisher_api(),
                clients.topic_path(settings.project, settings.changes_topic),
            ),
        ),
        report=report,
        sessions=FirestoreSessions(
            clients.firestore_client(settings.project, settings.back_office_database)
        ),
        session_policy=SessionPolicy(
            absolute_s=settings.session_absolute_s, idle_s=settings.session_idle_s
        ),
        login_throttle=LoginThrottle(settings.login_max_failures, settings.login_window_s),
        stats=FirestoreCampaignStats(firestore, settings.stats_cache_ttl_s),
        preview=samples,
    )


@functools.cache
def _stats_job() -> tuple[Any, Any, Any, Any]:
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStats, FirestoreCampaignStore
    from shared.platform import clients
    from shared.platform.bigquery_warehouse import BigQueryWarehouse
    from shared.system.settings import CampaignStatsSettings

    settings = CampaignStatsSettings()
    logs.configure(settings.log_level)
    firestore = clients.firestore_client(settings.project)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    warehouse = BigQueryWarehouse(bigquery, settings.project, settings.dataset, ())
    return (
        settings,
        FirestoreCampaignStore(firestore),
        FirestoreCampaignStats(firestore, ttl_s=0),
        warehouse,
    )


def refresh_stats(now: datetime) -> dict[str, Any]:
    """Compute and save every non-archived campaign's figures (``refresh_campaign_stats``)."""
    import time

    from shared.campaigns.stats import compute_stats

    settings, campaigns, stats, warehouse = _stats_job()
    clock = time.perf_counter()
    # An archived campaign's figures stay as they were last saved.
    chosen = [c for c in campaigns.all() if c.status != "archived"]
    computed = compute_stats(chosen, warehouse, settings.project, settings.dataset, now)
    stats.put_many(computed)
    return {
        "campaigns": len(computed),
        "computed_at": now.isoformat(),
        "seconds": round(time.perf_counter() - clock, 3),
    }
