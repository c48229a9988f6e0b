"""The retailers' credentials on the command line (docs/INGEST.md, "Keys").

- ``cartwise api-key issue --retailer R [--publishable --origin URL ...]``: a new key,
  printed once (only its hash is stored);
- ``cartwise api-key list --retailer R``: the retailer's keys (hash prefix, kind, origins,
  created, revoked) — never a key itself;
- ``cartwise api-key revoke --retailer R --hash PREFIX``: refused everywhere within the
  APIs' key cache (60 s);
- ``cartwise credentials migrate``: API keys and CSM accounts written to ``(default)``
  before the credentials database existed, moved there (idempotent; docs/DEPLOY.md);
- ``cartwise identity-secret --retailer R [--rotate --grace-hours H]``: the secret the
  retailer's back end signs its shoppers with; ``--rotate`` makes a new one current and
  keeps the previous one valid for the grace period. Needs ``SHOPPER_IDENTITY_KEY`` (the
  local stack's ``stack.env`` has it; Secret Manager in the cloud).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from shared.platform.terminal import environment
from shared.system.resources import CREDENTIALS_DATABASE


def _origin(text: str) -> str:
    """``scheme://host[:port]`` exactly as a browser sends it in ``Origin``."""
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
        raise argparse.ArgumentTypeError(f"not an origin (scheme://host[:port]): {text}")
    return f"{parts.scheme}://{parts.netloc}".lower()


def issue_command(args: argparse.Namespace) -> int:
    from shared.platform import clients
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.keys import KeyKind, issue_api_key

    store = FirestoreApiKeyStore(clients.firestore_client(environment(), CREDENTIALS_DATABASE))
    kind: KeyKind = "publishable" if args.publishable else "secret"
    if args.origin and not args.publishable:
        print("refused: only a publishable key lists origins", file=sys.stderr)
        return 2
    try:
        key = issue_api_key(store, args.retailer, datetime.now(UTC), kind, tuple(args.origin))
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(key)
    return 0


def list_command(args: argparse.Namespace) -> int:
    from shared.platform import clients
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore

    store = FirestoreApiKeyStore(clients.firestore_client(environment(), CREDENTIALS_DATABASE))
    for key in sorted(store.of_retailer(args.retailer), key=lambda k: k.created_at):
        state = "revoked" if key.revoked else "active"
        origins = " ".join(key.origins) or "-"
        print(
            f"{key.key_hash[:12]}  {key.kind:<11}  {state:<7}  {key.created_at:%Y-%m-%d}  {origins}"
        )
    return 0


def revoke_command(args: argparse.Namespace) -> int:
    from shared.platform import clients
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore

    store = FirestoreApiKeyStore(clients.firestore_client(environment(), CREDENTIALS_DATABASE))
    matches = [k for k in store.of_retailer(args.retailer) if k.key_hash.startswith(args.hash)]
    if len(matches) != 1:
        print(f"refused: {len(matches)} keys of {args.retailer} match {args.hash}", file=sys.stderr)
        return 2
    store.put(matches[0].model_copy(update={"revoked": True}))
    print(f"revoked {matches[0].key_hash[:12]} ({matches[0].kind})")
    return 0


def identity_command(args: argparse.Namespace) -> int:
    from shared.platform import clients
    from shared.retailers.firestore_retailers import FirestoreIdentityVersions
    from shared.retailers.identity import identity_secret

    versions = FirestoreIdentityVersions(clients.firestore_client(environment()))
    master = os.environ.get("SHOPPER_IDENTITY_KEY")
    if not master:
        print("set SHOPPER_IDENTITY_KEY (Secret Manager: shopper-identity-key)", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    if args.rotate:
        current = versions.rotate(args.retailer, timedelta(hours=args.grace_hours), now)
        print(
            f"version {current.current} is current; {current.previous} valid until "
            f"{current.previous_until:%Y-%m-%d %H:%M} UTC",
            file=sys.stderr,
        )
    else:
        current = versions.versions(args.retailer)
    print(identity_secret(master, args.retailer, current.current))
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    from shared.platform import clients
    from shared.retailers.firestore_migration import move_documents
    from shared.system.resources import (
        API_KEYS_COLLECTION,
        CSM_ACCOUNTS_COLLECTION,
        DEFAULT_DATABASE,
    )

    project = environment()
    moved = move_documents(
        clients.firestore_client(project, DEFAULT_DATABASE),
        clients.firestore_client(project, CREDENTIALS_DATABASE),
        (API_KEYS_COLLECTION, CSM_ACCOUNTS_COLLECTION),
    )
    for collection, count in moved.items():
        print(f"{collection}: {count} moved from {DEFAULT_DATABASE} to {CREDENTIALS_DATABASE}")
    return 0


def register(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``api-key issue|list|revoke``, ``credentials migrate``, ``identity-secret``."""
    keys = subcommands.add_parser("api-key", help="issue, list, revoke a retailer's API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    issue = actions.add_parser("issue", help="a new key, printed once")
    issue.add_argument("--retailer", required=True)
    issue.add_argument(
        "--publishable", action="store_true", help="for web pages: behaviour, signed shoppers"
    )
    issue.add_argument(
        "--origin", action="append", default=[], type=_origin, help="a page origin (repeat)"
    )
    issue.set_defaults(run=issue_command)
    listing = actions.add_parser("list", help="the retailer's keys (hashes, never keys)")
    listing.add_argument("--retailer", required=True)
    listing.set_defaults(run=list_command)
    revoke = actions.add_parser("revoke", help="revoke one key by its hash prefix")
    revoke.add_argument("--retailer", required=True)
    revoke.add_argument("--hash", required=True, help="a prefix of the key's hash (list shows it)")
    revoke.set_defaults(run=revoke_command)
    credentials = subcommands.add_parser(
        "credentials", help="the credentials database (API keys, CSM accounts)"
    )
    credential_actions = credentials.add_subparsers(dest="action", required=True)
    migrate = credential_actions.add_parser(
        "migrate", help="move keys and accounts still in (default) to the credentials database"
    )
    migrate.set_defaults(run=migrate_command)
    identity = subcommands.add_parser(
        "identity-secret", help="the secret a retailer's back end signs its shoppers with"
    )
    identity.add_argument("--retailer", required=True)
    identity.add_argument("--rotate", action="store_true", help="a new secret becomes current")
    identity.add_argument("--grace-hours", type=float, default=24.0)
    identity.set_defaults(run=identity_command)
