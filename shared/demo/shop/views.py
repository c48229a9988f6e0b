"""The shop over HTTP (Flask): its pages, the shopper's session, the order confirmation.

- ``GET /``: the shop (``static/index.html``, ``shop.js``, ``shop.css``, and ``widget.js``:
  an experience's markup, creative included, which the back office can load alone), under a
  Content-Security-Policy that lets its scripts reach only itself and the three cartwise
  APIs; ``GET /tracker/cartwise.min.js``: the tracker's browser build (``tracker/dist``),
  or, before it is built, its ES modules (``/tracker/src/*.mjs``).
- ``GET /api/products``: the catalogue.
- ``GET /api/session``: signs the shopper in (demo: the shopper id of ``?shopper=``, else
  the cookie's, else a new one; kept in an HttpOnly cookie) and answers what the page's
  tracker needs: the shopper id, its signature (HMAC-SHA256 with the identity secret,
  computed here: the secret never leaves the back end), the publishable key and the URLs.
- ``POST /api/checkout``: confirms the basket of the signed-in shopper (``orders``), and
  answers the order id and the event id to wait for.
- ``GET /healthz``.

Logs name paths, never query strings or shopper ids.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, request, send_from_directory
from pydantic import ValidationError

from shared.contract.events import IDENTIFIER
from shared.demo.shop.catalogue import Product
from shared.demo.shop.orders import (
    Checkout,
    OrderEvents,
    OrderRefusedError,
    UnknownProductError,
    confirm_order,
)
from shared.demo.shop.settings import SettingsSource, ShopSettings
from shared.retailers.identity import shopper_signature

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
TRACKER = Path(__file__).resolve().parents[3] / "tracker"
COOKIE = "demo_shopper"
_SHOPPER = re.compile(IDENTIFIER)
MAX_BODY_BYTES = 64 * 1024


def _problem(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


def create_app(
    settings: SettingsSource,
    products: Mapping[str, Product],
    order_events: Callable[[ShopSettings], OrderEvents],
) -> Flask:
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.before_request
    def _started() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _logged(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,  # never the query string (?shopper=)
                "status": response.status_code,
                "ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1e3),
            },
        )
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"ok": True, "configured": settings.current() is not None})

    @app.get("/")
    def index() -> Response:
        current = settings.current()
        apis = (
            " ".join((current.ingest_url, current.experiences_url, current.plays_url))
            if current
            else ""
        )
        response = send_from_directory(STATIC, "index.html", max_age=0)
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; connect-src 'self' {apis}; img-src 'self' https: data:; "
            "script-src 'self'; style-src 'self'; base-uri 'none'; form-action 'self'"
        )
        return response

    @app.get("/tracker/<path:name>")
    def tracker(name: str) -> Response:
        """The tracker's build, or its modules when it is not built yet."""
        if name == "cartwise.min.js" and (TRACKER / "dist" / name).is_file():
            return send_from_directory(TRACKER / "dist", name, max_age=0)
        if name.startswith("src/") and name.endswith(".mjs"):
            response = send_from_directory(TRACKER, name, max_age=0)
            response.mimetype = "text/javascript"
            return response
        return Response("not found", status=404, mimetype="text/plain")

    @app.get("/api/products")
    def catalogue() -> Response:
        return jsonify([p.model_dump(mode="json") for p in products.values()])

    @app.get("/api/session")
    def session() -> Response | tuple[Response, int]:
        current = settings.current()
        if current is None:
            return _problem(503, "not_configured", "the stack is still starting")
        wanted = request.args.get("shopper") or request.cookies.get(COOKIE)
        if wanted is not None and not _SHOPPER.fullmatch(wanted):
            return _problem(400, "invalid_shopper_id", "a shopper id is a customer identifier")
        shopper_id = wanted or f"shopper-{uuid.uuid4().hex[:12]}"
        built = (TRACKER / "dist" / "cartwise.min.js").is_file()
        response = jsonify(
            {
                "shopper_id": shopper_id,
                "shopper_signature": shopper_signature(
                    current.identity_secret.get_secret_value(), shopper_id
                ),
                "key": current.publishable_key,
                "eventsUrl": current.ingest_url,
                "experiencesUrl": current.experiences_url,
                "playsUrl": current.plays_url,
                "tracker": {
                    "src": "/tracker/cartwise.min.js" if built else "/tracker/src/browser.mjs",
                    "module": not built,
                },
            }
        )
        response.headers["Cache-Control"] = "no-store"
        response.set_cookie(COOKIE, shopper_id, httponly=True, samesite="Strict")
        return response

    @app.post("/api/checkout")
    def checkout() -> Response | tuple[Response, int]:
        current = settings.current()
        if current is None:
            return _problem(503, "not_configured", "the stack is still starting")
        shopper_id = request.cookies.get(COOKIE)
        if not shopper_id or not _SHOPPER.fullmatch(shopper_id):
            return _problem(401, "not_signed_in", "open /api/session first")
        try:
            basket = Checkout.model_validate_json(request.get_data())
        except ValidationError as exc:
            return _problem(400, "invalid_basket", f"{exc.error_count()} problem(s) in the basket")
        try:
            confirmed = confirm_order(shopper_id, basket, products, order_events(current))
        except UnknownProductError as exc:
            return _problem(400, "unknown_product", f"no product {exc}")
        except OrderRefusedError as exc:
            log.warning("order refused", extra={"code": exc.code})
            return _problem(502, exc.code, str(exc))
        log.info(
            "order confirmed",
            extra={"order_id": confirmed.order_id, "lines": len(basket.lines)},
        )
        answer: dict[str, Any] = {
            "order_id": confirmed.order_id,
            "event_id": confirmed.event_id,
            "total": format(confirmed.total, "f"),
        }
        return jsonify(answer)

    return app
