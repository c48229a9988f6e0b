"""``OrderEvents`` over HTTP: ``POST $INGEST_URL/v1/events`` with the secret key, from the
back end (no ``Origin``: a secret key sent by a browser is refused)."""

from __future__ import annotations

import json
from typing import Any

import requests

from shared.demo.shop.orders import OrderRefusedError


class HttpOrderEvents:
    def __init__(self, ingest_url: str, api_key: str, timeout_s: float = 10.0) -> None:
        self._url = ingest_url.rstrip("/") + "/v1/events"
        self._api_key = api_key
        self._timeout_s = timeout_s

    def confirm(self, event: dict[str, Any]) -> None:
        try:
            response = requests.post(
                self._url,
                data=json.dumps({"events": [event]}),
                headers={"Content-Type": "application/json", "X-Api-Key": self._api_key},
                timeout=self._timeout_s,
            )
        except requests.RequestException as exc:
            raise OrderRefusedError("ingest_unreachable", str(exc)) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 202 or not isinstance(body, dict):
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise OrderRefusedError(
                str(error.get("code", f"http_{response.status_code}")),
                str(error.get("message", response.text[:200])),
            )
        for rejected in body.get("rejected", []):
            reasons = rejected.get("reasons") or [{}]
            raise OrderRefusedError(
                str(reasons[0].get("code", "rejected")),
                str(reasons[0].get("message", "the order event was rejected")),
            )
