"""The shop's one settings object, with the names ``.local/stack.env`` gives them.

The variables come from the environment first, then from the stack's env file
(``--env-file``, ``.local/stack.env``): the demo retailer's keys and identity secret are
created by ``make up`` after the emulators start (``emulators.stack._provision``) and
written to that file once the functions and the shop are healthy, so the shop reads the
file when a shopper first needs them, and again whenever it changes, not at start.
"""

from __future__ import annotations

import threading
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class ShopSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    ingest_url: str = Field(validation_alias="INGEST_URL")
    experiences_url: str = Field(validation_alias="EXPERIENCES_URL")
    plays_url: str = Field(validation_alias="PLAYS_URL")
    retailer_id: str = Field(validation_alias="DEMO_RETAILER_ID")
    # The retailer's back end's key: it confirms orders; never sent to a page.
    api_key: SecretStr = Field(validation_alias="DEMO_API_KEY")
    # The pages' key (cwpk_): public, bound to the shop's origin.
    publishable_key: str = Field(validation_alias="DEMO_PUBLISHABLE_KEY")
    # What the back end signs its shoppers with (HMAC-SHA256); never sent to a page.
    identity_secret: SecretStr = Field(validation_alias="DEMO_IDENTITY_SECRET")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    ingest_timeout_s: float = Field(
        default=10.0, gt=0, validation_alias="DEMO_SHOP_INGEST_TIMEOUT_S"
    )


class SettingsSource:
    """``ShopSettings`` from the environment and ``env_file``, re-read when the file
    changes; ``None`` while they are incomplete (the stack still starting)."""

    def __init__(self, env_file: Path | None) -> None:
        self._env_file = env_file
        self._lock = threading.Lock()
        self._stamp: object = object()
        self._settings: ShopSettings | None = None

    def _file_stamp(self) -> int | None:
        try:
            return self._env_file.stat().st_mtime_ns if self._env_file else None
        except OSError:
            return None

    def current(self) -> ShopSettings | None:
        stamp = self._file_stamp()
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._settings = ShopSettings(
                        _env_file=self._env_file if stamp is not None else None
                    )
                except ValidationError:
                    self._settings = None
                self._stamp = stamp
            return self._settings
