"""The simulated retailers' API keys on the local stack, for replays through the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime


def replay_api_keys(env: dict[str, str], retailers: tuple[str, ...]) -> dict[str, str]:
    """The simulated retailers' keys on the local stack: chosen once, registered each run."""
    from emulators.config import StackSettings
    from shared.platform.clients import firestore_client
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.keys import new_api_key, register_api_key
    from shared.system.resources import CREDENTIALS_DATABASE

    path = StackSettings().local_dir / "replay-api-keys.json"
    keys: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    for retailer in retailers:
        keys.setdefault(retailer, new_api_key())
    path.write_text(json.dumps(keys, indent=1))
    path.chmod(0o600)
    store = FirestoreApiKeyStore(
        firestore_client(env["GOOGLE_CLOUD_PROJECT"], CREDENTIALS_DATABASE)
    )
    for retailer in retailers:
        register_api_key(store, retailer, keys[retailer], datetime.now(UTC))
    return {retailer: keys[retailer] for retailer in retailers}
