"""campaigns: the CSMs' campaigns API, back office and reports (HTTP). Parse, call, answer."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import flask
import functions_framework

from shared.campaigns.api import CampaignsDependencies, HttpRequest, handle
from shared.platform import logs
from shared.system.settings import CampaignsSettings


@functools.cache
def dependencies() -> CampaignsDependencies:
    """Built once per instance, on first use: clients are reused across requests."""
    from shared.campaigns.admin import AdminDependencies
    from shared.campaigns.bigquery_catalog import BigQueryProductCatalog
    from shared.campaigns.firestore_admin import (
        FirestoreAuditLog,
        FirestoreCsmAccounts,
        FirestoreRetailerDirectory,
    )
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.campaigns.model import Campaign
    from shared.campaigns.report import campaign_report
    from shared.platform import clients
    from shared.platform.bigquery_warehouse import BigQueryWarehouse

    settings = CampaignsSettings()
    logs.configure(settings.log_level)
    firestore = clients.firestore_client(settings.project)
    bigquery = clients.bigquery_client(settings.project, settings.bigquery_emulator_host)
    warehouse = BigQueryWarehouse(bigquery, settings.project, settings.dataset, ())

    def report(campaign: Campaign, now: datetime) -> dict[str, Any]:
        return campaign_report(campaign, warehouse, settings.project, settings.dataset, now)

    return CampaignsDependencies(
        admin=AdminDependencies(
            accounts=FirestoreCsmAccounts(firestore, settings.account_cache_ttl_s),
            campaigns=FirestoreCampaignStore(firestore),
            audit=FirestoreAuditLog(firestore),
            retailers=FirestoreRetailerDirectory(firestore),
            products=BigQueryProductCatalog(bigquery, settings.project, settings.dataset),
        ),
        report=report,
    )


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


@functions_framework.http
def campaigns(request: flask.Request) -> Any:
    is_form = request.mimetype in _FORMS
    response = handle(
        HttpRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            body=b"" if is_form else request.get_data(),
            form=request.form.to_dict() if is_form else {},
            cookies=request.cookies.to_dict(),
        ),
        dependencies,
        datetime.now(UTC),
    )
    return flask.Response(
        response.body,
        status=response.status,
        headers=response.headers,
        content_type=response.content_type,
    )
