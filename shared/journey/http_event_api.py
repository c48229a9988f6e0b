"""HTTP adapter of ``EventApi``: POST /v1/events with each retailer's key, one keep-alive
session per thread."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import requests

from shared.journey.replay import Answer

TIMEOUT_S = 60.0


class ThreadSessions:
    """One keep-alive ``requests.Session`` per thread (a Session is not thread-safe)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session


class HttpEventApi(ThreadSessions):
    def __init__(self, url: str, api_keys: dict[str, str]) -> None:
        super().__init__()
        self._url = url.rstrip("/") + "/v1/events"
        self._api_keys = api_keys

    def post(self, retailer_id: str, events: list[dict[str, Any]]) -> Answer:
        started = time.perf_counter()
        try:
            response = self._session().post(
                self._url,
                data=json.dumps({"events": events}, separators=(",", ":")),
                headers={
                    "Content-Type": "application/json",
                    "X-Api-Key": self._api_keys[retailer_id],
                },
                timeout=TIMEOUT_S,
            )
        except requests.RequestException as exc:
            # Not reached or no answer: as retryable as a 503 (the API is idempotent).
            return Answer(503, {"error": str(exc)}, None, time.perf_counter() - started)
        latency = time.perf_counter() - started
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:500]}
        retry_after = response.headers.get("Retry-After")
        return Answer(
            response.status_code,
            body if isinstance(body, dict) else {"body": body},
            float(retry_after) if retry_after else None,
            latency,
        )
