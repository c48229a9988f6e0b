from __future__ import annotations

import pytest

from tests.conftest import UnsafeStackError, guard

SAFE = {
    "GOOGLE_CLOUD_PROJECT": "demo-cartwise",
    "PUBSUB_EMULATOR_HOST": "127.0.0.1:8085",
    "BIGTABLE_EMULATOR_HOST": "localhost:8086",
    "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8087",
    "BIGQUERY_EMULATOR_HOST": "127.0.0.1:9050",
    "STORAGE_EMULATOR_HOST": "http://127.0.0.1:8089",
    "INGEST_URL": "http://127.0.0.1:8100",
}


def test_safe_environment_passes() -> None:
    guard(SAFE)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("GOOGLE_CLOUD_PROJECT", "cartwise-prod"),
        ("PUBSUB_EMULATOR_HOST", "10.0.0.5:8085"),
        ("BIGQUERY_EMULATOR_HOST", "bigquery.googleapis.com:443"),
        ("INGEST_URL", "https://ingest.example.com"),
        ("STORAGE_EMULATOR_HOST", "https://storage.googleapis.com"),
        ("STORAGE_EMULATOR_HOST", "10.0.0.5:8089"),
    ],
)
def test_unsafe_environment_is_refused(key: str, value: str) -> None:
    with pytest.raises(UnsafeStackError):
        guard({**SAFE, key: value})


@pytest.mark.parametrize("key", ["FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"])
def test_missing_emulator_host_is_refused(key: str) -> None:
    env = dict(SAFE)
    del env[key]
    with pytest.raises(UnsafeStackError):
        guard(env)
