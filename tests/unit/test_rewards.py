"""The rewards game's pure logic: the draw's odds, budget slots, ledger arithmetic, token
checks, the plays export's monotone merge, and the HTTP layer's refusals."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.campaigns.model import Campaign
from shared.contract.messages import InboundMessage
from shared.decisions.play_tokens import VALIDITY, PlayGrant, sign
from shared.rewards.api import handle, openapi
from shared.rewards.game import (
    DRAW_RESOLUTION,
    Play,
    PlayRefusedError,
    WinEntry,
    check_token,
    draw,
    ledger_of,
    play_id_of,
    play_row,
    slot_count,
    valid_email,
)
from shared.rewards.play_freezer import transform_plays

KEY = b"k" * 32
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
# Two-sided alpha of the statistical tests: 1e-6 (z = 4.89), so a correct draw fails one
# run in a million. Over 100k draws at p=0.5 one standard error is 0.16 point: a draw off by
# 2 points (12.6 standard errors) fails surely; off by 1 point (6.3) only ~92% of the time.
Z = 4.8916


def wilson(successes: int, n: int, z: float = Z) -> tuple[float, float]:
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize("odds", [0.01, 0.1, 0.5, 0.9])
def test_the_draw_holds_its_odds_over_100k_draws(odds: float) -> None:
    n = 100_000
    wins = sum(draw(odds) for _ in range(n))
    low, high = wilson(wins, n)
    assert low <= odds <= high, (odds, wins / n, low, high)


def test_the_wilson_check_would_catch_a_biased_draw() -> None:
    n = 100_000
    wins = sum(draw(0.52) for _ in range(n))  # a draw 2 points too generous
    low, high = wilson(wins, n)
    assert not low <= 0.5 <= high


def test_the_draw_threshold_is_exact() -> None:
    threshold = round(0.25 * DRAW_RESOLUTION)
    assert draw(0.25, lambda _: threshold - 1)
    assert not draw(0.25, lambda _: threshold)
    assert draw(1.0, lambda _: DRAW_RESOLUTION - 1)
    with pytest.raises(ValueError):
        draw(0.0)
    with pytest.raises(ValueError):
        draw(1.5)


def test_slots_are_the_prizes_the_budget_pays_in_full() -> None:
    assert slot_count(Decimal(100), Decimal(10)) == 10
    assert slot_count(Decimal("99.99"), Decimal(10)) == 9
    assert slot_count(Decimal(5), Decimal(10)) == 0
    assert slot_count(Decimal("12.50"), Decimal("2.50")) == 5
    with pytest.raises(ValueError):
        slot_count(Decimal(10), Decimal(0))


def campaign(**changes: object) -> Campaign:
    base: dict[str, object] = {
        "campaign_id": "game-1",
        "name": "Play and win",
        "retailer_ids": ["r-1"],
        "experience_type": "gamified_promotion",
        "status": "active",
        "starts_at": NOW - timedelta(days=1),
        "ends_at": NOW + timedelta(days=30),
        "targeted_brands": ["B"],
        "budget": Decimal(100),
        "win_probability": 0.2,
        "prize_value": Decimal(30),
    }
    return Campaign.model_validate(base | changes)


def entry(slot: int, paid: bool = False, prize: Decimal = Decimal(30)) -> WinEntry:
    return WinEntry(
        campaign_id="game-1",
        slot=slot,
        play_id=f"p{slot}",
        prize_value=prize,
        won_at=NOW,
        paid=paid,
    )


def test_the_ledger_adds_what_is_owed_and_paid() -> None:
    ledger = ledger_of(campaign(), [entry(0), entry(1, paid=True)])
    assert (ledger.slots, ledger.wins_owed, ledger.wins_paid) == (3, 1, 1)
    assert (ledger.owed, ledger.paid, ledger.committed) == (Decimal(30), Decimal(30), Decimal(60))
    assert ledger.remaining == Decimal(40)
    assert not ledger.exhausted
    full = ledger_of(campaign(), [entry(0), entry(1, paid=True), entry(2)])
    assert full.remaining == Decimal(10) and full.exhausted  # 10 left cannot pay 30
    assert ledger_of(campaign(), []).remaining == Decimal(100)
    with pytest.raises(ValueError):
        ledger_of(campaign(budget=None, experience_type="personalized_promotion"), [])


def grant(**changes: object) -> PlayGrant:
    base: dict[str, object] = {
        "retailer_id": "r-1",
        "shopper_id": "s-1",
        "order_id": "o-1",
        "campaign_id": "game-1",
        "experience_id": "game-1:play",
        "expires_at": NOW + VALIDITY,
    }
    return PlayGrant.model_validate(base | changes)


def refusal(token: str, retailer: str = "r-1", now: datetime = NOW) -> str:
    with pytest.raises(PlayRefusedError) as caught:
        check_token(token, KEY, retailer, now)
    return caught.value.code


def test_token_checks_refuse_every_attack_by_name() -> None:
    token = sign(grant(), KEY)
    assert check_token(token, KEY, "r-1", NOW) == grant()
    payload, signature = token.split(".")
    other = sign(grant(order_id="o-2"), KEY).split(".")[0]
    assert refusal(f"{other}.{signature}") == "forged_token"  # tampered payload
    assert refusal(sign(grant(), b"x" * 32)) == "forged_token"  # forged with another key
    assert refusal(f"{payload}.{signature[:-2]}AA") == "forged_token"
    assert refusal(token, now=NOW + VALIDITY) == "expired_token"
    assert refusal(token, retailer="r-2") == "wrong_retailer"
    assert refusal("not-a-token") == "invalid_token"
    assert refusal("a.b.c") == "invalid_token"


def test_one_play_id_per_retailer_campaign_and_order() -> None:
    first = play_id_of("r-1", "game-1", "o-1")
    assert first == play_id_of("r-1", "game-1", "o-1")
    assert len({first, play_id_of("r-2", "game-1", "o-1"), play_id_of("r-1", "game-2", "o-1")}) == 3
    assert play_id_of("r-1", "game-1", "o-1") != play_id_of("r-1", "game-1", "o-11")


def test_email_validation() -> None:
    assert valid_email("winner@example.com")
    assert valid_email("a.b+c@sub.example.co.uk")
    for bad in ("winner", "a@b", "@example.com", "a b@example.com", "a@exa mple.com"):
        assert not valid_email(bad), bad
    assert not valid_email("a" * 250 + "@example.com")


def play(**changes: object) -> Play:
    base: dict[str, object] = {
        "play_id": "play-1",
        "retailer_id": "r-1",
        "shopper_id": "s-1",
        "campaign_id": "game-1",
        "experience_id": "game-1:play",
        "order_id": "o-1",
        "token_sha256": "0" * 64,
        "played_at": NOW,
        "drawn": True,
        "won": True,
        "slot": 3,
        "prize_value": Decimal(30),
        "reason": "drawn",
    }
    return Play.model_validate(base | changes)


def message(n: int, row: dict[str, object]) -> InboundMessage:
    return InboundMessage(message_id=str(n), data=json.dumps(row).encode())


def test_play_rows_carry_no_email_and_merge_forward_only() -> None:
    won = play_row(play())
    voided = play_row(play(voided=True, voided_at=NOW + timedelta(hours=1)))
    assert set(won) == {
        "play_id", "retailer_id", "shopper_id", "campaign_id", "order_id", "played_at",
        "won", "prize_value", "voided", "voided_at", "paid",
    }  # fmt: skip
    rows, poison = transform_plays([message(1, voided), message(2, won), message(3, {"x": 1})])
    assert len(rows) == 1 and rows[0]["voided"] is True  # a late older state undoes nothing
    assert rows[0]["voided_at"] == (NOW + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert [p.message_id for p in poison] == ["3"] and "not a play" in poison[0].reason
    with_email = {**won, "email": "winner@example.com"}
    assert transform_plays([message(4, with_email)])[1][0].message_id == "4"  # refused


def test_the_http_layer_refuses_bad_requests_before_any_store() -> None:
    def no_deps() -> object:
        raise AssertionError("a bad request must not reach the stores")

    assert handle("GET", "/v1/plays", {}, b"", no_deps).status == 405  # type: ignore[arg-type]
    assert handle("GET", "/nope", {}, b"", no_deps).status == 404  # type: ignore[arg-type]
    spec = handle("GET", "/openapi.json", {}, b"", no_deps)  # type: ignore[arg-type]
    assert spec.status == 200 and spec.body == openapi()
    assert set(spec.body["paths"]) == {"/v1/plays", "/v1/plays/{play_id}/claim", "/openapi.json"}
    assert "email" not in json.dumps(spec.body["components"]["schemas"]["PlayAnswer"])
