"""Session fixtures: the local stack (started once, or reused), and the safety guard."""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from emulators import stack as local_stack
from emulators.config import StackSettings

LOOPBACK_KEYS = (
    "PUBSUB_EMULATOR_HOST",
    "BIGTABLE_EMULATOR_HOST",
    "FIRESTORE_EMULATOR_HOST",
    "BIGQUERY_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",  # unset, the storage client would reach Cloud Storage itself
)


class UnsafeStackError(RuntimeError):
    pass


# The per-test timeout of tests marked ``heavy``, above every wait inside them (the longest:
# a nightly workflow execution waited on for up to 600 s, after a backfill). Others keep
# pyproject's 300 s.
HEAVY_TIMEOUT_S = 1200


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("heavy") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(HEAVY_TIMEOUT_S))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except OSError:
        return False


def guard(env: dict[str, str]) -> None:
    """Refuse anything but loopback emulators and a demo project: tests never touch GCP."""
    project = env.get("GOOGLE_CLOUD_PROJECT", "")
    if not project.startswith("demo-"):
        raise UnsafeStackError(f"project {project!r} is not a demo- project")
    for key in LOOPBACK_KEYS:
        value = env.get(key)
        if not value:
            raise UnsafeStackError(f"{key} is not set")
        host = urlsplit(value if "://" in value else f"//{value}").hostname or ""
        if not _is_loopback(host):
            raise UnsafeStackError(f"{key}={value} is not a loopback address")
    for key, value in env.items():
        if key.endswith("_URL") and not _is_loopback(urlsplit(value).hostname or ""):
            raise UnsafeStackError(f"{key}={value} is not a loopback URL")


def read_env_file(settings: StackSettings) -> dict[str, str]:
    values = {}
    for line in settings.env_file.read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


@pytest.fixture(scope="session")
def stack_settings() -> StackSettings:
    return StackSettings()


@pytest.fixture(scope="session")
def stack(stack_settings: StackSettings) -> Iterator[dict[str, str]]:
    """The whole local stack: reused when already healthy, else started and stopped here."""
    guard(stack_settings.emulator_env())  # before anything is started or reused
    rows = local_stack.status(stack_settings)
    started_here = not (stack_settings.env_file.exists() and any(r.alive for r in rows))
    if started_here:
        # A stack the tests start neither loads nor saves data (README: what survives
        # `make down`): every test run starts empty and leaves `make demo`'s data alone.
        stack_settings = stack_settings.model_copy(update={"persist_data": False})
    if not all(r.healthy for r in rows):
        local_stack.up(stack_settings)  # starts it, or repairs it (restarts changed functions)
    env = read_env_file(stack_settings)
    guard(env)
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if started_here:
            local_stack.down(stack_settings)


@pytest.fixture
def unique() -> str:
    """A fresh suffix for resource names owned by one test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def retailer_key(stack: dict[str, str]) -> Iterator[Callable[[str], str]]:
    """``issue(retailer_id)``: a new API key of a retailer the test owns; the keys, the
    retailers' documents and their suppression entries are deleted afterwards (the purge
    visits every retailer with a key: leftovers would make later runs of a long-lived
    stack slower)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared.platform import clients
    from shared.privacy.firestore_records import SUPPRESSIONS
    from shared.retailers.firestore_api_keys import COLLECTION as API_KEYS
    from shared.retailers.firestore_api_keys import FirestoreApiKeyStore
    from shared.retailers.keys import hash_api_key, issue_api_key
    from shared.system.resources import CREDENTIALS_DATABASE

    firestore = clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"])
    credentials = clients.firestore_client(stack["GOOGLE_CLOUD_PROJECT"], CREDENTIALS_DATABASE)
    issued: list[tuple[str, str]] = []

    def issue(retailer_id: str) -> str:
        key = issue_api_key(FirestoreApiKeyStore(credentials), retailer_id, datetime.now(UTC))
        issued.append((retailer_id, key))
        return key

    yield issue
    for retailer_id, key in issued:
        credentials.collection(API_KEYS).document(hash_api_key(key)).delete()
        firestore.collection("retailers").document(retailer_id).delete()
        entries = firestore.collection(SUPPRESSIONS).where(
            filter=FieldFilter("retailer_id", "==", retailer_id)
        )
        for entry in entries.stream():
            entry.reference.delete()
