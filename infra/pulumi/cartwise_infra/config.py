"""A stack's configuration (``Pulumi.<stack>.yaml``), typed; read only by ``__main__``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class BigtableConfig(_Config):
    zone: str
    storage_type: str = Field(default="SSD", alias="storageType")
    min_nodes: int = Field(default=1, alias="minNodes")
    max_nodes: int = Field(default=3, alias="maxNodes")
    cpu_target: int = Field(default=60, alias="cpuTarget")
    replica_zone: str | None = Field(
        default=None,
        alias="replicaZone",
        description="a second cluster (replication) in this zone: a standby the components' "
        "single-cluster app profile can be pointed at (docs/DEPLOY.md, Bigtable replication)",
    )
    backup_every_hours: int = Field(default=24, alias="backupEveryHours")
    backup_retention_days: int = Field(default=7, alias="backupRetentionDays")


class StackConfig(_Config):
    """Everything that differs between stacks; the resources themselves come from SYSTEM."""

    project: str
    region: str
    bigquery_location: str = Field(alias="bigqueryLocation")
    firestore_location: str = Field(alias="firestoreLocation")
    bigtable: BigtableConfig
    max_instances: int | None = Field(
        default=None,
        alias="maxInstances",
        description="cap on every function's max instances and worker pool's instances",
    )
    min_instances: int | None = Field(
        default=None, alias="minInstances", description="cap on min instances (dev: 0)"
    )
    retention_days: dict[str, int] = Field(
        default_factory=dict,
        alias="retentionDays",
        description="per BigQuery dataset: cap on its partitions' expiration, in days",
    )
    deletion_protection: bool = Field(default=True, alias="deletionProtection")
    credential_issuers: tuple[str, ...] = Field(
        default=(),
        alias="credentialIssuers",
        description="IAM members (user:, group:, serviceAccount:) who issue and revoke API "
        "keys and CSM accounts with the CLI: the only writers of the databases no deployed "
        "component may write (the credentials database)",
    )
    log_level: str = Field(default="INFO", alias="logLevel")
    alert_emails: tuple[str, ...] = Field(
        default=(),
        alias="alertEmails",
        description="where alerts are sent (e-mail notification channels)",
    )
    public_access: Literal["allUsers", "loadBalancer"] = Field(
        default="allUsers",
        alias="publicAccess",
        description="how the public functions are reached: allUsers invokers, or (under a "
        "domain-restricted-sharing org policy) an external load balancer with serverless "
        "NEGs and Cloud Armor (docs/DEPLOY.md)",
    )
    domain: str | None = Field(
        default=None,
        description="loadBalancer: each public function is served at <function>.<domain>",
    )
    rate_limit_per_minute: int = Field(
        default=1200,
        alias="rateLimitPerMinute",
        description="loadBalancer: Cloud Armor's limit per client IP (requests a minute)",
    )
    point_in_time_recovery: bool = Field(
        default=True,
        alias="pointInTimeRecovery",
        description="Firestore point-in-time recovery (7 days of versions) on every database",
    )

    @model_validator(mode="after")
    def _front_door(self) -> StackConfig:
        if self.public_access == "loadBalancer" and not self.domain:
            raise ValueError("publicAccess loadBalancer needs a domain")
        return self


CONFIG_KEYS = tuple(
    field.alias or name for name, field in StackConfig.model_fields.items() if name != "project"
)


def config_value(raw: str | None) -> object:
    """A Pulumi config value: objects, numbers and booleans are stored as JSON, text as is."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def stack_config(project: str, values: Mapping[str, object]) -> StackConfig:
    """From the ``cartwise:`` keys of a stack (without the prefix) and ``gcp:project``."""
    unknown = sorted(set(values) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown cartwise: configuration keys {unknown}")
    present = {key: value for key, value in values.items() if value is not None}
    return StackConfig.model_validate({"project": project, **present})


def stack_file(path: Path) -> StackConfig:
    """A stack's configuration from its ``Pulumi.<stack>.yaml``, parsed as ``__main__``
    parses it (for the mock runs: tests and ``make plan``)."""
    import yaml

    values = yaml.safe_load(path.read_text())["config"]
    cartwise = {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("cartwise:")}
    return stack_config(values["gcp:project"], cartwise)
