"""The replay with shoppers who respond: a tracker's loop, through the real APIs.

Each shopper's sessions are replayed in order, as a tracker on the shop's pages would send
them: the events up to a decision point (a product added to the basket, the basket page,
the validated cart) go to the Shopper Event API, then the tracker asks the experiences
API what the shopper is shown now (``GET /v1/experiences?after=<event>``, which answers
once that event is decided). Every campaign experience shown for the first time in the
session is reported as a tracker reports it (``experience_displayed``, and
``experience_clicked`` when the response model makes the shopper click), and the model
may make the shopper add to the basket (``shared/journey/response.py``); the validated
cart then carries the added units. Held-out shoppers are never shown the campaign, so
never respond. An invitation to play (a gamified promotion on a qualifying order the
retailer's back end confirmed) is played with the model's probability through the plays
API (``POST /v1/plays`` with the invitation's token), and a win is claimed with an e-mail
address, which goes to the rewards vault only (the truth keeps counts, never addresses).

What the model injected is kept as the truth, per campaign (``Truth``): the shoppers the
tracker saw the campaign shown to, and what each of them added because of it, per order
since it was first shown. The demo writes it beside its report; the campaign report's
code never reads it.
"""

from __future__ import annotations

import hashlib
import logging
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import requests

from shared.journey.http_event_api import ThreadSessions
from shared.journey.replay import EventApi, ReplaySummary
from shared.journey.response import BasketLine, ResponseModel
from shared.journey.tracker_simulator import Session, name_based_uuid

log = logging.getLogger(__name__)

WAIT_MS = 5000
ASKS = 3  # a 204 (not decided within WAIT_MS) is asked again, this many times in all


@dataclass(frozen=True)
class PlayResult:
    outcome: str  # won, lost; refused: the API refused the play (its code in ``reason``)
    reason: str
    claimed: bool = False


class PlaysApi(Protocol):
    def play(self, retailer_id: str, shopper_id: str, play_token: str) -> PlayResult:
        """Play the invitation; a win is claimed with the shopper's address."""
        ...


class HttpPlaysApi(ThreadSessions):
    """``POST /v1/plays`` then, for a win, ``POST /v1/plays/{id}/claim``, with the
    retailer's secret key (the back end's or the tracker's call, as the shop wires it)."""

    def __init__(self, url: str, api_keys: dict[str, str]) -> None:
        super().__init__()
        self._url = url.rstrip("/") + "/v1/plays"
        self._keys = api_keys

    def play(self, retailer_id: str, shopper_id: str, play_token: str) -> PlayResult:
        headers = {"X-Api-Key": self._keys[retailer_id], "X-Shopper-Id": shopper_id}
        played = self._session().post(
            self._url, json={"play_token": play_token}, headers=headers, timeout=30
        )
        body = played.json()
        if played.status_code not in (200, 201):
            return PlayResult("refused", str(body.get("error", {}).get("code", played.status_code)))
        if body["outcome"] != "won":
            return PlayResult(str(body["outcome"]), str(body["reason"]))
        # A demo address on a reserved domain, derived from the shopper: never kept here.
        digest = hashlib.sha256(f"{retailer_id}/{shopper_id}".encode()).hexdigest()[:12]
        claimed = self._session().post(
            f"{self._url}/{body['play_id']}/claim",
            json={"play_token": play_token, "email": f"winner-{digest}@example.com"},
            headers=headers,
            timeout=30,
        )
        return PlayResult("won", str(body["reason"]), claimed.status_code == 200)


class ExperiencesApi(Protocol):
    def after(self, retailer_id: str, shopper_id: str, event_id: str) -> list[dict[str, Any]]:
        """The shopper's shown experiences once ``event_id`` is decided ([] if none)."""
        ...


class HttpExperiencesApi(ThreadSessions):
    """``GET /v1/experiences`` with each retailer's key, one keep-alive session per thread."""

    def __init__(self, url: str, api_keys: dict[str, str]) -> None:
        super().__init__()
        self._url = url.rstrip("/") + "/v1/experiences"
        self._keys = api_keys
        self.latencies_s: list[float] = []
        self.unanswered = 0

    def after(self, retailer_id: str, shopper_id: str, event_id: str) -> list[dict[str, Any]]:
        started = time.monotonic()
        for _ in range(ASKS):
            try:
                response = self._session().get(
                    self._url,
                    params={"after": event_id, "wait_ms": str(WAIT_MS)},
                    headers={"X-Api-Key": self._keys[retailer_id], "X-Shopper-Id": shopper_id},
                    timeout=WAIT_MS / 1000 + 5,
                )
            except requests.RequestException:
                continue
            if response.status_code == 200:
                self.latencies_s.append(time.monotonic() - started)
                return list(response.json().get("experiences", []))
            if response.status_code == 404:
                return []
        self.unanswered += 1
        return []


@dataclass
class CampaignTruth:
    """What the model injected for one campaign."""

    displayed: int = 0
    clicked: int = 0
    additions: int = 0
    invited: int = 0  # a game's invitations (qualifying orders shown the play)
    played: int = 0
    won: int = 0
    claimed: int = 0
    refused: int = 0  # plays the API refused
    exposed: set[str] = field(default_factory=set)  # "retailer/shopper" shown the campaign
    added: dict[str, float] = field(default_factory=dict)  # per exposed shopper, all orders
    added_per_order: dict[str, list[float]] = field(default_factory=dict)  # since first shown

    def summary(self) -> dict[str, Any]:
        n = len(self.exposed)
        per_buyer = [statistics.fmean(v) for v in self.added_per_order.values() if v]
        return {
            "exposed_shoppers": n,
            "displayed": self.displayed,
            "clicked": self.clicked,
            "additions": self.additions,
            **(
                {
                    "invited": self.invited,
                    "played": self.played,
                    "won": self.won,
                    "claimed": self.claimed,
                    "refused": self.refused,
                }
                if self.invited
                else {}
            ),
            "added_amount": round(sum(self.added.values()), 2),
            "targeted_sales": round(sum(self.added.values()) / n, 4) if n else 0.0,
            "basket_value": round(statistics.fmean(per_buyer), 4) if per_buyer else 0.0,
        }


@dataclass
class Truth:
    model: ResponseModel
    campaigns: dict[str, CampaignTruth] = field(default_factory=lambda: defaultdict(CampaignTruth))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def as_dict(self) -> dict[str, Any]:
        return {
            "effects": self.model.stated(),
            "seed": self.model.seed,
            "definition": "per campaign, the amount the model made exposed shoppers add: per "
            "exposed shopper (targeted sales) and per exposed buyer, averaged over its orders "
            "since the campaign was first shown (basket value); exposed = shown the campaign "
            "at a decision point the tracker asked about",
            "campaigns": {c: t.summary() for c, t in sorted(self.campaigns.items())},
        }


def _line(payload: dict[str, Any]) -> BasketLine:
    return BasketLine(
        str(payload["product_id"]),
        int(payload["quantity"]),
        Decimal(str(payload["unit_price"])),
        payload.get("brand"),
        payload.get("category"),
    )


def _tracker_event(
    source: dict[str, Any], kind: str, n: int, payload: dict[str, Any]
) -> dict[str, Any]:
    at = datetime.fromisoformat(source["occurred_at"]) + timedelta(milliseconds=200 * n)
    return {
        "event_id": name_based_uuid(f"{source['event_id']}:{kind}:{n}"),
        "type": kind,
        "shopper_id": source["shopper_id"],
        "session_id": source["session_id"],
        "occurred_at": at.isoformat(),
        "schema_version": 1,
        "payload": payload,
    }


def _decision_point(event: dict[str, Any]) -> bool:
    kind = event["type"]
    return kind in ("product_added_to_basket", "cart_validated") or (
        kind == "page_viewed" and event["payload"].get("page_type") == "basket"
    )


class RespondingReplay:
    def __init__(
        self,
        events: EventApi,
        experiences: ExperiencesApi,
        model: ResponseModel,
        summary: ReplaySummary | None = None,
        plays: PlaysApi | None = None,
    ) -> None:
        self._events = events
        self._experiences = experiences
        self._plays = plays
        self.truth = Truth(model)
        self.summary = summary or ReplaySummary()
        self._lock = threading.Lock()

    def _post(self, retailer_id: str, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        for attempt in range(1, 11):
            answer = self._events.post(retailer_id, events)
            if answer.status in (429, 503) and attempt < 10:
                time.sleep(answer.retry_after_s or 0.5 * attempt)
                with self._lock:
                    self.summary.retries += 1
                continue
            break
        with self._lock:
            s = self.summary
            s.batches += 1
            s.sent += len(events)
            s.latencies_s.append(answer.latency_s)
            if answer.status == 202:
                s.accepted += int(answer.body.get("accepted", 0))
                s.duplicates += int(answer.body.get("duplicate_count", 0))
                s.rejected += int(answer.body.get("rejected_count", 0))
            else:
                s.failed_batches += 1
                s.failed_events += len(events)
                s.failures[answer.status] = s.failures.get(answer.status, 0) + 1
                log.warning("batch refused", extra={"status": answer.status})

    def session(self, session: Session, first_shown: dict[str, datetime]) -> None:
        """One session; ``first_shown`` (campaign -> moment) is the shopper's, across its
        sessions (they are replayed in order)."""
        model, retailer = self.truth.model, session.retailer_id
        basket: dict[str, BasketLine] = {}
        extra: dict[str, int] = defaultdict(int)  # product -> units added by the model
        added: dict[str, Decimal] = defaultdict(Decimal)  # campaign -> amount this session
        seen: set[str] = set()
        last_added: str | None = None
        pending: list[dict[str, Any]] = []
        for event in session.events:
            if event["type"] == "cart_validated" and extra:
                event = _with_additions(event, extra)
            pending.append(event)
            payload = event["payload"]
            if event["type"] in ("product_added_to_basket", "product_removed_from_basket"):
                line = _line(payload)
                sign = 1 if event["type"] == "product_added_to_basket" else -1
                old = basket.get(line.product_id)
                quantity = (old.quantity if old else 0) + sign * line.quantity
                if quantity > 0:
                    basket[line.product_id] = BasketLine(
                        line.product_id, quantity, line.unit_price, line.brand, line.category
                    )
                else:
                    basket.pop(line.product_id, None)
                last_added = line.product_id if sign > 0 else last_added
            if not _decision_point(event):
                continue
            self._post(retailer, pending)
            pending = []
            shopper = str(event["shopper_id"])
            key = f"{retailer}/{shopper}"
            n = 0
            for shown in self._experiences.after(retailer, shopper, str(event["event_id"])):
                campaign = shown.get("campaign_id")
                experience_id = str(shown.get("experience_id"))
                if campaign is None or experience_id in seen:
                    continue
                seen.add(experience_id)
                moment = datetime.fromisoformat(event["occurred_at"])
                first_shown.setdefault(campaign, moment)
                ids = {"experience_id": experience_id, "campaign_id": campaign}
                n += 1
                pending.append(_tracker_event(event, "experience_displayed", n, ids))
                reaction = (
                    model.respond(f"b-{session.basket_id}", shown, basket, last_added)
                    if event["type"] != "cart_validated"
                    else None
                )
                with self.truth.lock:
                    truth = self.truth.campaigns[campaign]
                    truth.displayed += 1
                    truth.exposed.add(key)
                    truth.added.setdefault(key, 0.0)
                    truth.clicked += bool(reaction and reaction.clicked)
                    truth.additions += bool(reaction and reaction.addition)
                invitation = (
                    event["type"] == "cart_validated" and shown.get("type") == "gamified_promotion"
                )
                if invitation and self._invitation(
                    retailer, shopper, f"b-{session.basket_id}", shown
                ):
                    n += 1  # the shopper clicked "play"
                    pending.append(_tracker_event(event, "experience_clicked", n, ids))
                if reaction and reaction.clicked:
                    n += 1
                    pending.append(_tracker_event(event, "experience_clicked", n, ids))
                if reaction and reaction.addition:
                    line = reaction.addition.line
                    n += 1
                    pending.append(
                        _tracker_event(
                            event,
                            "product_added_to_basket",
                            n,
                            {
                                "product_id": line.product_id,
                                "quantity": line.quantity,
                                "unit_price": str(line.unit_price),
                                **({"brand": line.brand} if line.brand else {}),
                                **({"category": line.category} if line.category else {}),
                            },
                        )
                    )
                    old = basket[line.product_id]
                    basket[line.product_id] = BasketLine(
                        old.product_id,
                        old.quantity + line.quantity,
                        old.unit_price,
                        old.brand,
                        old.category,
                    )
                    extra[line.product_id] += line.quantity
                    added[campaign] += reaction.addition.amount
            if event["type"] == "cart_validated":
                self._ordered(key, datetime.fromisoformat(event["occurred_at"]), first_shown, added)
        self._post(retailer, pending)
        with self._lock:
            self.summary.sessions += 1

    def _invitation(
        self, retailer: str, shopper: str, session_key: str, shown: dict[str, Any]
    ) -> bool:
        """An invitation to play: played with the model's probability; whether it was."""
        campaign = str(shown["campaign_id"])
        plays = self._plays is not None and self.truth.model.plays(session_key, shown)
        result = None
        if plays and self._plays is not None:
            result = self._plays.play(retailer, shopper, str(shown["details"]["play_token"]))
        with self.truth.lock:
            truth = self.truth.campaigns[campaign]
            truth.invited += 1
            if result is not None:
                truth.clicked += 1
                truth.played += result.outcome != "refused"
                truth.refused += result.outcome == "refused"
                truth.won += result.outcome == "won"
                truth.claimed += result.claimed
        return bool(plays)

    def _ordered(
        self,
        key: str,
        at: datetime,
        first_shown: dict[str, datetime],
        added: dict[str, Decimal],
    ) -> None:
        with self.truth.lock:
            for campaign, since in first_shown.items():
                if since <= at:
                    truth = self.truth.campaigns[campaign]
                    amount = float(added.get(campaign, Decimal(0)))
                    truth.added[key] = truth.added.get(key, 0.0) + amount
                    truth.added_per_order.setdefault(key, []).append(amount)

    def run(
        self,
        sessions: Iterable[Session],
        concurrency: int = 16,
        progress: Callable[[ReplaySummary], None] | None = None,
    ) -> ReplaySummary:
        """Every shopper's sessions in order; ``concurrency`` shoppers at a time."""
        by_shopper: dict[tuple[str, str], list[Session]] = defaultdict(list)
        for s in sessions:
            if s.events:
                by_shopper[(s.retailer_id, str(s.events[0]["shopper_id"]))].append(s)
        started = time.monotonic()

        def shopper(own: list[Session]) -> None:
            first_shown: dict[str, datetime] = {}
            for s in own:
                self.session(s, first_shown)
                self.summary.seconds = time.monotonic() - started
                if progress:
                    progress(self.summary)

        with ThreadPoolExecutor(concurrency) as pool:
            for future in [pool.submit(shopper, own) for own in by_shopper.values()]:
                future.result()
        self.summary.seconds = time.monotonic() - started
        return self.summary


def _with_additions(event: dict[str, Any], extra: dict[str, int]) -> dict[str, Any]:
    """The validated cart with the units the model added (the total follows)."""
    lines, total = [], Decimal(str(event["payload"]["total"]))
    for line in event["payload"]["lines"]:
        units = extra.get(str(line["product_id"]), 0)
        if units:
            quantity = min(10_000, int(line["quantity"]) + units)
            total += Decimal(str(line["unit_price"])) * (quantity - int(line["quantity"]))
            line = {**line, "quantity": quantity}
        lines.append(line)
    return {**event, "payload": {**event["payload"], "lines": lines, "total": str(total)}}
