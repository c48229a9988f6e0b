"""The rewards game: one draw per qualifying order, within the campaign's budget.

Pure domain logic (no ``google.*``): the draw, the budget slots, the ledger arithmetic,
the play's life (played, claimed, voided, paid) and the ports the adapters implement.
docs/REWARDS.md describes the design; in short:

- A play is keyed by ``play_id`` = hash(retailer, campaign, order): one play per order and
  campaign, whatever the retries. It is created *pending* with its draw already made (the
  draw happens once, with ``secrets``); finishing it (claiming a budget slot for a win)
  is idempotent and resumable, so a retry or a crash never draws twice.
- The budget is pre-split into ``floor(budget / prize_value)`` slot documents; a win
  claims one with a create-if-absent write, so concurrent plays never contend on one
  document and the budget can never pay more than ``slots x prize_value``.
- The slots are the ledger: one entry per win, unpaid (owed) or paid; a voided win's slot
  is deleted (released), so the budget can pay another winner.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.campaigns.model import Campaign
from shared.decisions.play_tokens import VALIDITY, InvalidTokenError, PlayGrant, verify
from shared.privacy_marks.marks import Gate

log = logging.getLogger(__name__)

# The draw's resolution: odds are exact to 1e-9 (a float win_probability has ~1e-16).
DRAW_RESOLUTION = 1_000_000_000
# Statuses of ``order_status_changed`` that void an unpaid win.
VOIDING_STATUSES = frozenset({"cancelled", "returned"})
EMAIL = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$"
)
MAX_EMAIL_LENGTH = 254


# --- the draw and the budget (pure) ---------------------------------------------------


def draw(win_probability: float, randbelow: Callable[[int], int] = secrets.randbelow) -> bool:
    """One draw at the campaign's odds, from a cryptographic random source by default."""
    if not 0 < win_probability <= 1:
        raise ValueError("win_probability must be in (0, 1]")
    return randbelow(DRAW_RESOLUTION) < round(win_probability * DRAW_RESOLUTION)


def slot_count(budget: Decimal, prize_value: Decimal) -> int:
    """How many prizes the budget pays: each win takes one slot."""
    if prize_value <= 0:
        raise ValueError("prize_value must be positive")
    return max(int(budget // prize_value), 0)


def play_id_of(retailer_id: str, campaign_id: str, order_id: str) -> str:
    """One play per (retailer, campaign, order): the id every retry lands on."""
    digest = hashlib.sha256(f"{retailer_id}\x1f{campaign_id}\x1f{order_id}".encode()).hexdigest()
    return f"play-{digest[:32]}"


def order_key_of(signing_key: bytes, play_id: str) -> str:
    """A keyed hash of the order a play is for (never of the shopper): what is kept of a
    play an erasure deleted, so that the same order is never drawn twice."""
    return hmac.new(signing_key, f"played-order:{play_id}".encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_email(address: str) -> bool:
    return len(address) <= MAX_EMAIL_LENGTH and EMAIL.fullmatch(address) is not None


class Ledger(BaseModel):
    """What a campaign owes and has paid (from its win entries), against its budget."""

    model_config = ConfigDict(frozen=True)

    campaign_id: str
    budget: Decimal
    prize_value: Decimal
    slots: int
    wins_owed: int
    wins_paid: int
    owed: Decimal
    paid: Decimal

    @property
    def committed(self) -> Decimal:
        return self.owed + self.paid

    @property
    def remaining(self) -> Decimal:
        return self.budget - self.committed

    @property
    def exhausted(self) -> bool:
        """The remaining budget cannot pay one more prize."""
        return self.remaining < self.prize_value or self.wins_owed + self.wins_paid >= self.slots


def ledger_of(campaign: Campaign, entries: list[WinEntry]) -> Ledger:
    if campaign.budget is None or campaign.prize_value is None:
        raise ValueError(f"campaign {campaign.campaign_id} has no budget or prize")
    owed = [e for e in entries if not e.paid]
    paid = [e for e in entries if e.paid]
    return Ledger(
        campaign_id=campaign.campaign_id,
        budget=campaign.budget,
        prize_value=campaign.prize_value,
        slots=slot_count(campaign.budget, campaign.prize_value),
        wins_owed=len(owed),
        wins_paid=len(paid),
        owed=sum((e.prize_value for e in owed), Decimal(0)),
        paid=sum((e.prize_value for e in paid), Decimal(0)),
    )


# --- records --------------------------------------------------------------------------


class Play(BaseModel):
    """One play (never an e-mail address). ``won`` is None while the play is pending."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    play_id: str
    retailer_id: str
    shopper_id: str
    campaign_id: str
    experience_id: str
    order_id: str
    token_sha256: str
    played_at: AwareDatetime
    drawn: bool = Field(description="the draw's result (a win if the budget allows)")
    won: bool | None = None
    slot: int | None = None
    prize_value: Decimal = Decimal(0)
    reason: Literal["drawn", "budget_exhausted"] | None = None
    claimed: bool = False
    voided: bool = False
    voided_at: AwareDatetime | None = None
    paid: bool = False
    paid_at: AwareDatetime | None = None
    # order_key_of(the signing key, play_id): kept as a tombstone when the play is erased.
    order_key: str | None = None

    @property
    def pending(self) -> bool:
        return self.won is None


class WinEntry(BaseModel):
    """A ledger entry: one budget slot taken by one win."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign_id: str
    slot: int
    play_id: str
    prize_value: Decimal
    won_at: AwareDatetime
    paid: bool = False
    paid_at: AwareDatetime | None = None


def play_row(play: Play) -> dict[str, object]:
    """The BigQuery ``plays`` row (shared/rewards/read_models.py): no e-mail, ever."""
    return {
        "play_id": play.play_id,
        "retailer_id": play.retailer_id,
        "shopper_id": play.shopper_id,
        "campaign_id": play.campaign_id,
        "order_id": play.order_id,
        "played_at": play.played_at.isoformat(),
        "won": bool(play.won),
        "prize_value": str(play.prize_value),
        "voided": play.voided,
        "voided_at": play.voided_at.isoformat() if play.voided_at else None,
        "paid": play.paid,
    }


# --- ports ------------------------------------------------------------------------------


class PlayStore(Protocol):
    def create(self, play: Play) -> object | None:
        """Store a new play and return its version; None (nothing written) if its
        play_id exists."""
        ...

    def get(self, play_id: str) -> tuple[Play, object] | None:
        """The play and its version."""
        ...

    def replace(self, play: Play, version: object) -> bool:
        """Write ``play`` if it is still at ``version``; False if it changed meanwhile."""
        ...

    def for_order(self, retailer_id: str, order_id: str) -> list[Play]: ...

    def played_before(self, order_key: str) -> bool:
        """Whether a play of this order was erased (its tombstone: the keyed order hash)."""
        ...


class BudgetSlots(Protocol):
    def claim(self, entry: WinEntry, slots: int, crowded: bool = False) -> int | None:
        """Take a free slot among ``range(slots)`` for ``entry`` (its ``slot`` ignored);
        the slot taken, or None when every slot is taken. ``crowded``: few slots are
        likely free (skip the random probes, look at the free ones straight away)."""
        ...

    def slot_of(self, campaign_id: str, play_id: str) -> int | None: ...

    def release(self, campaign_id: str, slot: int, play_id: str) -> None:
        """Free the slot if ``play_id`` holds it."""
        ...

    def mark_paid(self, campaign_id: str, slot: int, paid_at: datetime) -> None: ...

    def entries(self, campaign_id: str) -> list[WinEntry]: ...

    def count(self, campaign_id: str) -> int:
        """How many slots are taken."""
        ...


class Campaigns(Protocol):
    def get(self, campaign_id: str) -> Campaign | None: ...


class BudgetFlags(Protocol):
    def set_exhausted(self, campaign_id: str, exhausted: bool) -> None:
        """Campaign.budget_exhausted, read by the decision engine (FirestoreBudgetGate)."""
        ...


class PlayPublisher(Protocol):
    def publish(self, plays: list[Play]) -> None:
        """Each play's current state, towards the BigQuery ``plays`` table."""
        ...


class VoidedOrders(Protocol):
    def mark(self, retailer_id: str, order_id: str, at: datetime) -> None: ...

    def voided(self, retailer_id: str, order_id: str) -> bool: ...


class RewardsVault(Protocol):
    """Winners' e-mail addresses: the rewards database only."""

    def put_claim(self, play: Play, email: str, claimed_at: datetime) -> str:
        """Record the address for the play; the address already recorded if there was one."""
        ...

    def email_for(self, play_id: str) -> str | None: ...


@dataclass
class RewardsDependencies:
    plays: PlayStore
    slots: BudgetSlots
    campaigns: Campaigns
    flags: BudgetFlags
    publisher: PlayPublisher
    voided_orders: VoidedOrders
    signing_key: bytes


# --- errors -----------------------------------------------------------------------------


class PlayRefusedError(Exception):
    """A refusal with its HTTP status, machine-readable code and reason."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def check_token(token: str, key: bytes, retailer_id: str, now: datetime) -> PlayGrant:
    """The grant of a token presented with ``retailer_id``'s API key, or a refusal."""
    try:
        grant = verify(token, key, now)
    except InvalidTokenError as exc:
        reason = str(exc)
        if reason == "expired":
            raise PlayRefusedError(403, "expired_token", "the play token has expired") from exc
        if reason == "bad signature":
            raise PlayRefusedError(
                403, "forged_token", "the play token's signature does not match"
            ) from exc
        raise PlayRefusedError(400, "invalid_token", f"not a play token: {reason}") from exc
    if grant.retailer_id != retailer_id:
        raise PlayRefusedError(
            403, "wrong_retailer", "the play token was issued for another retailer"
        )
    return grant


# --- the service ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlayOutcome:
    play: Play
    created: bool  # False: a retry, answered with the original outcome


def _playable(campaign: Campaign | None, grant: PlayGrant, at: datetime) -> Campaign:
    if campaign is None:
        raise PlayRefusedError(409, "campaign_not_playable", "the campaign no longer exists")
    if campaign.status != "active" or not campaign.starts_at <= at < campaign.ends_at:
        raise PlayRefusedError(
            409,
            "campaign_not_playable",
            f"the campaign is {campaign.status}"
            + ("" if campaign.status != "active" else ", outside its period"),
        )
    if (
        campaign.experience_type != "gamified_promotion"
        or campaign.win_probability is None
        or campaign.prize_value is None
        or campaign.budget is None
        or grant.retailer_id not in campaign.retailer_ids
    ):
        raise PlayRefusedError(
            409,
            "campaign_not_playable",
            "the campaign is not a gamified promotion with odds, prize and budget here",
        )
    return campaign


def _for_shopper(grant: PlayGrant, shopper_id: str | None) -> None:
    if shopper_id is not None and grant.shopper_id != shopper_id:
        raise PlayRefusedError(403, "token_not_for_shopper", "the token is another shopper's")


def play(
    deps: RewardsDependencies,
    retailer_id: str,
    token: str,
    now: datetime,
    *,
    privacy: Gate,
    shopper_id: str | None = None,
) -> PlayOutcome:
    """Play the order the token grants: draw once, finish idempotently, publish. With
    ``shopper_id`` (a browser's signed shopper), only a token granted to that shopper.
    Refused for a shopper who objects, and for a token granted before the shopper's
    erasure (its order's time is the token's expiry minus its validity)."""
    grant = check_token(token, deps.signing_key, retailer_id, now)
    _for_shopper(grant, shopper_id)
    if privacy.blocks(grant.retailer_id, grant.shopper_id, grant.expires_at - VALIDITY):
        raise PlayRefusedError(
            403, "shopper_suppressed", "this shopper objected to processing or was erased"
        )
    play_id = play_id_of(grant.retailer_id, grant.campaign_id, grant.order_id)
    digest = token_hash(token)
    found = deps.plays.get(play_id)
    created = False
    if found is None:
        campaign = _playable(deps.campaigns.get(grant.campaign_id), grant, now)
        order_key = order_key_of(deps.signing_key, play_id)
        if deps.plays.played_before(order_key):
            raise PlayRefusedError(
                409, "order_already_played", "this order was played before (then erased)"
            )
        if deps.voided_orders.voided(grant.retailer_id, grant.order_id):
            raise PlayRefusedError(409, "order_voided", "the order was cancelled or returned")
        assert campaign.win_probability is not None
        pending = Play(
            play_id=play_id,
            retailer_id=grant.retailer_id,
            shopper_id=grant.shopper_id,
            campaign_id=grant.campaign_id,
            experience_id=grant.experience_id,
            order_id=grant.order_id,
            token_sha256=digest,
            played_at=now,
            drawn=draw(campaign.win_probability),
            order_key=order_key,
        )
        written = deps.plays.create(pending)
        created = written is not None
        found = (pending, written) if written is not None else deps.plays.get(play_id)
        if found is None:  # pragma: no cover - created or existing a moment ago
            raise PlayRefusedError(503, "unavailable", "the play could not be read back")
    stored, version = found
    if stored.token_sha256 != digest:
        raise PlayRefusedError(
            409, "order_already_played", "another token already played this order"
        )
    if stored.pending:
        stored = _finish(deps, stored, version)
    deps.publisher.publish([stored])  # every answer re-publishes: the export is idempotent
    return PlayOutcome(stored, created)


def _finish(deps: RewardsDependencies, pending: Play, version: object) -> Play:
    """Turn a pending play into its outcome; safe to run concurrently or after a crash."""
    for _ in range(5):
        campaign = _playable(
            deps.campaigns.get(pending.campaign_id), _grant_of(pending), pending.played_at
        )
        assert campaign.prize_value is not None and campaign.budget is not None
        slot: int | None = None
        claimed_here = False
        exhausted = False
        if pending.drawn:
            slot = deps.slots.slot_of(pending.campaign_id, pending.play_id)
            if slot is None:
                slots = slot_count(campaign.budget, campaign.prize_value)
                slot = deps.slots.claim(
                    WinEntry(
                        campaign_id=pending.campaign_id,
                        slot=-1,
                        play_id=pending.play_id,
                        prize_value=campaign.prize_value,
                        won_at=pending.played_at,
                    ),
                    slots,
                    crowded=campaign.budget_exhausted,  # a hint; the slots decide
                )
                claimed_here = slot is not None
                exhausted = slot is None or slot_is_last(deps, campaign, slots)
        won = slot is not None
        final = pending.model_copy(
            update={
                "won": won,
                "slot": slot,
                "prize_value": campaign.prize_value if won else Decimal(0),
                "reason": "drawn" if won or not pending.drawn else "budget_exhausted",
            }
        )
        if deps.plays.replace(final, version):
            if exhausted:
                deps.flags.set_exhausted(pending.campaign_id, True)
                # Counted by the "campaign budget exhausted" alert (docs/DEPLOY.md).
                log.warning(
                    "campaign budget exhausted",
                    extra={"campaign_id": pending.campaign_id, "retailer_id": pending.retailer_id},
                )
            return final
        current = deps.plays.get(pending.play_id)  # another attempt finished it first
        if current is None:  # pragma: no cover - plays are not deleted while played
            raise PlayRefusedError(503, "unavailable", "the play vanished")
        if claimed_here and slot is not None and current[0].slot != slot:
            deps.slots.release(pending.campaign_id, slot, pending.play_id)
        if not current[0].pending:
            return current[0]
        pending, version = current
    raise PlayRefusedError(503, "unavailable", "the play could not be finished; retry")


def slot_is_last(deps: RewardsDependencies, campaign: Campaign, slots: int) -> bool:
    return deps.slots.count(campaign.campaign_id) >= slots


def _grant_of(play: Play) -> PlayGrant:
    return PlayGrant(
        retailer_id=play.retailer_id,
        shopper_id=play.shopper_id,
        order_id=play.order_id,
        campaign_id=play.campaign_id,
        experience_id=play.experience_id,
        expires_at=play.played_at,
    )


def claim(
    deps: RewardsDependencies,
    vault: RewardsVault,
    retailer_id: str,
    play_id: str,
    token: str,
    email: str,
    now: datetime,
    shopper_id: str | None = None,
) -> Play:
    """A winner gives the address to be paid at; only the rewards vault keeps it."""
    grant = check_token(token, deps.signing_key, retailer_id, now)
    _for_shopper(grant, shopper_id)
    if play_id_of(grant.retailer_id, grant.campaign_id, grant.order_id) != play_id:
        raise PlayRefusedError(403, "token_mismatch", "the token is not this play's")
    if not valid_email(email):
        raise PlayRefusedError(400, "invalid_email", "not an e-mail address")
    found = deps.plays.get(play_id)
    if found is None:
        raise PlayRefusedError(404, "not_found", "no such play")
    stored, version = found
    if stored.token_sha256 != token_hash(token):
        raise PlayRefusedError(403, "token_mismatch", "the token is not this play's")
    if not stored.won:
        raise PlayRefusedError(409, "not_a_win", "only a win can be claimed")
    if stored.voided:
        raise PlayRefusedError(409, "voided", "the order was cancelled or returned")
    kept = vault.put_claim(stored, email, now)
    if kept != email:
        raise PlayRefusedError(409, "already_claimed", "this win was claimed with another address")
    if not stored.claimed:
        deps.plays.replace(stored.model_copy(update={"claimed": True}), version)
        stored = stored.model_copy(update={"claimed": True})
    return stored


def void_order(
    deps: RewardsDependencies, retailer_id: str, order_id: str, at: datetime
) -> list[Play]:
    """A cancelled or returned order voids its unpaid wins and frees their budget slots.

    Idempotent: a redelivered status event finds the plays already voided.
    """
    deps.voided_orders.mark(retailer_id, order_id, at)
    changed: list[Play] = []
    for stored in deps.plays.for_order(retailer_id, order_id):
        found = deps.plays.get(stored.play_id)
        if found is None:
            continue
        current, version = found
        if not current.won or current.paid:
            continue  # a loss costs nothing; a paid win stays paid (recovered elsewhere)
        if not current.voided:
            voided = current.model_copy(update={"voided": True, "voided_at": at})
            if not deps.plays.replace(voided, version):
                raise TransientVoidError(f"play {current.play_id} changed while voiding")
            current = voided
        if current.slot is not None:
            deps.slots.release(current.campaign_id, current.slot, current.play_id)
            deps.flags.set_exhausted(current.campaign_id, False)
        changed.append(current)
    if changed:
        deps.publisher.publish(changed)
    return changed


class TransientVoidError(RuntimeError):
    """Retry the batch: a play changed under the void."""


def pay(deps: RewardsDependencies, vault: RewardsVault, play_id: str, now: datetime) -> Play:
    """Mark a claimed, unvoided win paid (the operator paid it to the claimed address)."""
    found = deps.plays.get(play_id)
    if found is None:
        raise PlayRefusedError(404, "not_found", "no such play")
    stored, version = found
    slot = stored.slot
    if not stored.won or slot is None:
        raise PlayRefusedError(409, "not_a_win", "only a win can be paid")
    if stored.voided:
        raise PlayRefusedError(409, "voided", "a voided win is not paid")
    if not stored.paid:
        if vault.email_for(play_id) is None:
            raise PlayRefusedError(409, "not_claimed", "the winner has not given an address yet")
        paid = stored.model_copy(update={"paid": True, "paid_at": now})
        if not deps.plays.replace(paid, version):
            raise PlayRefusedError(409, "conflict", "the play changed meanwhile; retry")
        stored = paid
    deps.slots.mark_paid(stored.campaign_id, slot, stored.paid_at or now)  # idempotent
    deps.publisher.publish([stored])
    return stored


def ledger(deps: RewardsDependencies, campaign_id: str) -> Ledger:
    campaign = deps.campaigns.get(campaign_id)
    if campaign is None:
        raise PlayRefusedError(404, "not_found", "no such campaign")
    return ledger_of(campaign, deps.slots.entries(campaign_id))
