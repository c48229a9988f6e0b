"""Settings of each function: one frozen pydantic-settings object, prefixed env names."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.resources import (
    BIGTABLE_INSTANCE,
    REJECTED_EVENTS_TOPIC,
    SHOPPER_EVENTS_TOPIC,
)


class CloudSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    project: str = Field(validation_alias=AliasChoices("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT"))
    bigquery_emulator_host: str | None = Field(
        default=None, validation_alias="BIGQUERY_EMULATOR_HOST"
    )
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")


class IngestSettings(CloudSettings):
    """Settings of ``ingest_events`` (env prefix ``INGEST_``)."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", frozen=True, extra="ignore")

    bigtable_instance: str = BIGTABLE_INSTANCE
    events_topic: str = SHOPPER_EVENTS_TOPIC
    rejected_topic: str = REJECTED_EVENTS_TOPIC
    default_rate_limit_per_s: float = 20_000.0
    api_key_cache_ttl_s: float = 60.0
    publish_timeout_s: float = 10.0
