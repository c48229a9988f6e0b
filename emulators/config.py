"""Settings of the local stack: ports, paths and project, from ``CARTWISE_*`` variables."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARTWISE_", frozen=True, extra="ignore")

    project: str = "demo-cartwise"
    host: str = "127.0.0.1"
    pubsub_port: int = 8085
    bigtable_port: int = 8086
    firestore_port: int = 8087
    bigquery_port: int = 9050
    bigquery_grpc_port: int = 9060
    workflows_port: int = 8088
    storage_port: int = 8089  # Cloud Storage (fake-gcs-server)
    functions_base_port: int = 8100
    # The demo web shop (tracker installed); its origin is the demo publishable key's.
    # Unless set, 10 below the functions' ports (8090): a stack on other ports (the tests'
    # second stack) has its shop beside its own functions, not on this one's port.
    demo_shop_port: int = 8090
    local_dir: Path = ROOT / ".local"
    venvs_dir: Path = ROOT / ".local" / "venvs"
    start_timeout_s: float = 120.0
    # The Bigtable emulator keeps every row in a Go heap: with Go's default GOGC=100 its
    # garbage collector walks that heap again and again as it grows, and its CPU per
    # written row doubles over a few hundred thousand rows. Collect 10x less often, within
    # a soft memory limit (docs/LOCAL_STACK.md).
    bigtable_gogc: int = 1000
    bigtable_memory_limit: str = "4GiB"
    # DuckDB's memory limit inside bqemulator (it spills to disk beyond, but not every
    # operator can): a 200,000-shopper nightly's `features` needs more than the default
    # (docs/NIGHTLY.md); the process itself grows past it (docs/LOCAL_STACK.md).
    bigquery_memory_limit: str = "8GiB"
    # Firestore and BigQuery keep their data under ``data_dir`` across `down` / `up`
    # (README, "The local stack"); false: both start empty and nothing is saved.
    persist_data: bool = True
    # `down` exports each Firestore database over the emulator's HTTP API before it stops
    # the process; one database's export (or import at `up`) may take this long.
    firestore_export_timeout_s: float = 300.0
    # SIGTERM, then SIGKILL after this long; the BigQuery emulator closes its DuckDB file
    # on SIGTERM (a checkpoint; the WAL would replay after a SIGKILL anyway).
    stop_timeout_s: float = 15.0
    bigquery_stop_timeout_s: float = 60.0

    @model_validator(mode="before")
    @classmethod
    def _shop_beside_the_functions(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("demo_shop_port") is None:
            base = data.get("functions_base_port")
            if base is not None:
                return {**data, "demo_shop_port": int(base) - 10}
        return data

    @cached_property
    def logs_dir(self) -> Path:
        return self.local_dir / "logs"

    @cached_property
    def data_dir(self) -> Path:
        """What the emulators keep across restarts; under ``local_dir``, so a stack with
        another ``local_dir`` (the tests' second stack) never sees this one's data."""
        return self.local_dir / "data"

    @cached_property
    def firestore_data_dir(self) -> Path:
        """One export per Firestore database, ``<database>/<database>.overall_export_metadata``."""
        return self.data_dir / "firestore"

    @cached_property
    def storage_data_dir(self) -> Path:
        """fake-gcs-server's filesystem backend: one directory per bucket."""
        return self.data_dir / "storage"

    @property
    def storage_url(self) -> str:
        return f"http://{self.host}:{self.storage_port}"

    @cached_property
    def bigquery_data_dir(self) -> Path:
        """bqemulator's DuckDB file, ``bqemulator.duckdb`` (its name is fixed by bqemulator)."""
        return self.data_dir / "bigquery"

    @cached_property
    def state_file(self) -> Path:
        return self.local_dir / "stack.json"

    @cached_property
    def env_file(self) -> Path:
        return self.local_dir / "stack.env"

    @cached_property
    def venv_bin(self) -> Path:
        return ROOT / ".venv" / "bin"

    @cached_property
    def bigquery_python(self) -> Path:
        return self.venvs_dir / "bigquery" / "bin" / "python"

    @property
    def demo_shop_url(self) -> str:
        return f"http://{self.host}:{self.demo_shop_port}"

    @cached_property
    def workflows_bin(self) -> Path:
        return self.venvs_dir / "workflows" / "bin"

    def emulator_env(self) -> dict[str, str]:
        """The variables every client library and function needs to reach the emulators."""
        return {
            "GOOGLE_CLOUD_PROJECT": self.project,
            "PUBSUB_EMULATOR_HOST": f"{self.host}:{self.pubsub_port}",
            "BIGTABLE_EMULATOR_HOST": f"{self.host}:{self.bigtable_port}",
            "FIRESTORE_EMULATOR_HOST": f"{self.host}:{self.firestore_port}",
            "BIGQUERY_EMULATOR_HOST": f"{self.host}:{self.bigquery_port}",
            # The Storage Write API (gRPC): the freezer's appends to the landing tables.
            "BIGQUERY_STORAGE_EMULATOR_HOST": f"{self.host}:{self.bigquery_grpc_port}",
            # ... which hangs bqemulator 1.4.0 beside concurrent queries: the local freezer
            # appends with tabledata.insertAll instead (docs/EMULATORS.md).
            "FREEZER_LANDING_API": "insert_all",
            # A compaction pass every 5 s within each minute's run (the cloud: one a minute).
            "COMPACTION_PASS_INTERVAL_S": "5",
            "COMPACTION_RUN_FOR_S": "50",
            # The local simulations replay the data set's weeks at their shifted dates
            # (up to ~54 weeks back) through the real API; the cloud parks beyond 3 days.
            "FREEZER_LATE_WINDOW_DAYS": "400",
            "WORKFLOWS_EMULATOR_URL": f"http://{self.host}:{self.workflows_port}",
            # google-cloud-storage reads it itself (a URL, with its scheme).
            "STORAGE_EMULATOR_HOST": self.storage_url,
        }


def function_ports(settings: StackSettings, names: list[str]) -> dict[str, int]:
    """Each declared function's local port, in declaration order from the base port."""
    return {name: settings.functions_base_port + index for index, name in enumerate(names)}
