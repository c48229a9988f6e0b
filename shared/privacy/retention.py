"""Retention as configuration: a contractual period per retailer and per data class.

Each data class has a default period and a ceiling (the longest period any contract may
set). The ceiling is what the infrastructure enforces on its own (BigQuery partition
expiration, Bigtable GC rules: a backstop); a retailer's own, shorter periods are applied
by the scheduled purge (``shared.privacy.service.purge``). Pure: no cloud API here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DataClass(StrEnum):
    """What a store holds about shoppers, for retention and erasure receipts."""

    RAW_EVENTS = "raw_events"  # Bigtable shopper_events, event_ids, rejected_events
    READ_MODELS = "read_models"  # BigQuery read models frozen from events
    HOT_STATE = "hot_state"  # Bigtable shopper_state and personal experience trees
    DECISIONS = "decisions"  # BigQuery decisions, decision_experiences
    FEATURES = "features"  # nightly features and predictions (BigQuery nightly tables)
    REWARDS = "rewards"  # plays and the rewards vault (winners' e-mail addresses)


class RetentionDefaults(BaseModel):
    """The system-wide rule: per data class, the default period and the ceiling (days)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_days: dict[DataClass, int]
    ceiling_days: dict[DataClass, int]

    @model_validator(mode="after")
    def _complete_and_consistent(self) -> RetentionDefaults:
        for mapping_name, mapping in (
            ("default_days", self.default_days),
            ("ceiling_days", self.ceiling_days),
        ):
            missing = set(DataClass) - set(mapping)
            if missing:
                raise ValueError(f"{mapping_name} misses {sorted(missing)}")
            if any(days < 1 for days in mapping.values()):
                raise ValueError(f"{mapping_name}: a period is at least one day")
        for data_class, days in self.default_days.items():
            if days > self.ceiling_days[data_class]:
                raise ValueError(f"{data_class}: default {days} days exceeds the ceiling")
        return self


class RetailerRetention(BaseModel):
    """One retailer's contractual periods (days), per data class; absent: the default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retailer_id: str
    days: dict[DataClass, int] = Field(default_factory=dict)


class RetentionError(ValueError):
    """A retention setting the system cannot honour (e.g. longer than the ceiling)."""


def validate_periods(defaults: RetentionDefaults, days: Mapping[str, int]) -> dict[DataClass, int]:
    """A retailer's periods, checked: known classes, 1 day at least, never over the ceiling."""
    checked: dict[DataClass, int] = {}
    for name, value in days.items():
        try:
            data_class = DataClass(name)
        except ValueError:
            raise RetentionError(
                f"unknown data class {name!r}; known: {[c.value for c in DataClass]}"
            ) from None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise RetentionError(f"{name}: a period is a whole number of days, at least 1")
        if value > defaults.ceiling_days[data_class]:
            raise RetentionError(
                f"{name}: {value} days exceeds the ceiling of "
                f"{defaults.ceiling_days[data_class]} days"
            )
        checked[data_class] = value
    return checked


def periods(defaults: RetentionDefaults, retailer: RetailerRetention) -> dict[DataClass, int]:
    """The retailer's effective period of every data class."""
    return {c: retailer.days.get(c, defaults.default_days[c]) for c in DataClass}


def cutoffs(
    defaults: RetentionDefaults, retailer: RetailerRetention, now: datetime
) -> dict[DataClass, datetime]:
    """Per data class, the moment before which the retailer's data is deleted."""
    return {c: now - timedelta(days=d) for c, d in periods(defaults, retailer).items()}
