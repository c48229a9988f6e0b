"""experiences: what a tracker shows a shopper now (HTTP). Parse, call, answer."""

from __future__ import annotations

import functools
import json
from typing import Any

import flask
import functions_framework

from shared.decisions.experiences_api import ExperiencesDependencies, handle
from shared.platform import logs
from shared.retailers.keys import CachedApiKeys
from shared.system.settings import ExperiencesSettings


@functools.cache
def dependencies() -> ExperiencesDependencies:
    from shared.decisions.bigtable_state import BigtableShopperStates
    from shared.platform import clients
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore

    settings = ExperiencesSettings()
    logs.configure(settings.log_level)
    return ExperiencesDependencies(
        api_keys=CachedApiKeys(
            FirestoreApiKeyStore(clients.firestore_client(settings.project)),
            settings.api_key_cache_ttl_s,
        ),
        experiences=BigtableShopperStates(
            clients.bigtable_client(settings.project), settings.bigtable_instance
        ),
    )


@functions_framework.http
def experiences(request: flask.Request) -> Any:
    response = handle(request.method, request.path, dict(request.headers), dependencies)
    return flask.Response(
        json.dumps(response.body),
        status=response.status,
        headers=response.headers,
        mimetype="application/json",
    )
