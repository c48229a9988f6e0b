"""The campaigns' commands: ``cartwise report`` (a campaign's performance) and
``cartwise csm-key`` (a back-office access key)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime

from shared.platform.terminal import environment


def report_command(args: argparse.Namespace) -> int:
    from shared.campaigns.firestore_campaigns import FirestoreCampaignStore
    from shared.campaigns.report import campaign_report, format_report
    from shared.freezer.read_models import DATASET
    from shared.platform import clients
    from shared.platform.bigquery_warehouse import BigQueryWarehouse

    project = environment()
    campaign = FirestoreCampaignStore(clients.firestore_client(project)).get(args.campaign)
    if campaign is None:
        print(f"no campaign {args.campaign}", file=sys.stderr)
        return 1
    bigquery = clients.bigquery_client(project, os.environ.get("BIGQUERY_EMULATOR_HOST"))
    warehouse = BigQueryWarehouse(bigquery, project, DATASET, ())
    report = campaign_report(campaign, warehouse, project, DATASET, datetime.now(UTC))
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


def csm_key_command(args: argparse.Namespace) -> int:
    from shared.campaigns.admin import issue_csm_key
    from shared.campaigns.firestore_admin import FirestoreCsmAccounts
    from shared.platform import clients
    from shared.system.resources import CREDENTIALS_DATABASE

    project = environment()
    try:
        key = issue_csm_key(
            FirestoreCsmAccounts(clients.firestore_client(project, CREDENTIALS_DATABASE)),
            args.csm_id,
            args.role,
            args.retailer,
            datetime.now(UTC),
        )
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(key)
    return 0


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``report``, ``csm-key``."""
    report = subcommands.add_parser(
        "report", help="a campaign's performance, computed in BigQuery (docs/CAMPAIGNS.md)"
    )
    report.add_argument("campaign", help="the campaign id, e.g. cj-18")
    report.add_argument("--json", action="store_true", help="the API's JSON document")
    report.set_defaults(run=report_command)
    csm = subcommands.add_parser("csm-key", help="issue a back-office access key (printed once)")
    csm.add_argument("--csm-id", required=True)
    csm.add_argument("--role", choices=("admin", "csm", "analyst"), required=True)
    csm.add_argument(
        "--retailer", action="append", help="scope (repeat); required for the csm role"
    )
    csm.set_defaults(run=csm_key_command)
