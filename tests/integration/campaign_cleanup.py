"""What a campaigns test leaves behind, removed: its campaigns, their audit, its CSM
accounts and retailers (Firestore), and its retailers' rows in the read models (BigQuery)."""

from __future__ import annotations

from collections.abc import Iterable

from google.cloud.firestore_v1.base_query import FieldFilter

from shared.campaigns.admin import hash_key
from shared.campaigns.firestore_admin import ACCOUNTS, AUDIT
from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
from shared.platform import clients
from shared.system.resources import CREDENTIALS_DATABASE

TABLES = (
    "sold_products",
    "orders",
    "page_views",
    "basket_changes",
    "decision_experiences",
    "experience_impressions",
    "experience_clicks",
    "plays",
)


def remove(
    stack: dict[str, str],
    *,
    campaign_ids: Iterable[str] = (),
    keys: Iterable[str] = (),
    retailers: Iterable[str] = (),
) -> None:
    project = stack["GOOGLE_CLOUD_PROJECT"]
    firestore = clients.firestore_client(project)
    for campaign_id in campaign_ids:
        FirestoreCampaignStore(firestore).delete(campaign_id)  # cached lists reload
        audit = firestore.collection(AUDIT).where(
            filter=FieldFilter("campaign_id", "==", campaign_id)
        )
        for snapshot in audit.stream():
            snapshot.reference.delete()
    credentials = clients.firestore_client(project, CREDENTIALS_DATABASE)
    for key in keys:
        credentials.collection(ACCOUNTS).document(hash_key(key)).delete()
    retailers = list(retailers)
    for retailer in retailers:
        firestore.collection("retailers").document(retailer).delete()
    if retailers:
        from google.cloud import bigquery

        bq = clients.bigquery_client(project, stack["BIGQUERY_EMULATOR_HOST"])
        config = bigquery.QueryJobConfig(
            query_parameters=[bigquery.ArrayQueryParameter("r", "STRING", retailers)]
        )
        for table in TABLES:
            bq.query(
                f"DELETE FROM `{project}.cartwise.{table}` WHERE retailer_id IN UNNEST(@r)",
                job_config=config,
            ).result(timeout=60)


def campaigns_ending_with(stack: dict[str, str], suffix: str) -> list[str]:
    """The campaigns whose id ends with ``suffix``, or holds it before the random digits
    added to the ids asked for by scoped accounts (``shared.campaigns.admin``)."""
    firestore = clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"])
    return [
        s.id
        for s in firestore.collection("campaigns").select([]).stream()
        if s.id.endswith(suffix) or f"{suffix}-" in s.id
    ]
