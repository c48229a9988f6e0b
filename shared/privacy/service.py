"""GDPR: retention purges, erasure requests and the suppression (opt-out) list.

Every store that holds shopper data is one ``ShopperDataStore`` (an *eraser*), listed in
a registry (``StoreRegistry``) under a stable name and a data class. The purge and the
erasure walk the registry; a new store is covered by adding its eraser there.

Shoppers are only ever recorded here by a keyed hash: HMAC-SHA256 with a secret key
(Secret Manager ``shopper-hash-key``), first derived per retailer
(``HMAC(key, retailer_id)``), then applied to the shopper id. Without the key a hash
cannot be reversed to the customer identifier by trying candidate ids.

Pure domain logic: no cloud API here (adapters in ``shared/adapters/``).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from shared.platform.ttl_cache import TtlCache
from shared.privacy.retention import DataClass, RetailerRetention, RetentionDefaults, cutoffs
from shared.privacy_marks.marks import MarkWriter, ShopperHasher, SuppressionReason

log = logging.getLogger(__name__)

RequestStatus = Literal["running", "done"]


# --- the erasers -------------------------------------------------------------------------


class StorePendingError(RuntimeError):
    """The store cannot do this work yet (BigQuery rows still in the streaming buffer):
    the work stays pending and is retried, never skipped."""


class ShopperDataStore(Protocol):
    """One store holding shopper data (an *eraser*); both methods are idempotent and work
    in bounded batches. They return how many records (rows, documents) they deleted."""

    def erase_shopper(self, retailer_id: str, shopper_id: str) -> int:
        """Delete everything of one shopper of one retailer."""
        ...

    def purge_before(self, retailer_id: str, cutoff: datetime) -> int:
        """Delete the retailer's records older than ``cutoff``."""
        ...


@dataclass(frozen=True)
class RegisteredStore:
    name: str  # e.g. "bigquery:orders", "bigtable:shopper_state", "firestore:rewards/claims"
    data_class: DataClass
    store: ShopperDataStore


class StoreRegistry:
    """The erasers of every store, by name (order kept: the erasure's order)."""

    def __init__(self, stores: Iterable[RegisteredStore] = ()) -> None:
        self._stores: dict[str, RegisteredStore] = {}
        for store in stores:
            self.register(store)

    def register(self, store: RegisteredStore) -> None:
        if store.name in self._stores:
            raise ValueError(f"store {store.name!r} is registered twice")
        self._stores[store.name] = store

    def __iter__(self) -> Iterator[RegisteredStore]:
        return iter(list(self._stores.values()))

    def names(self) -> list[str]:
        return list(self._stores)

    def get(self, name: str) -> RegisteredStore:
        return self._stores[name]


# --- records -----------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StoreReceipt(_Model):
    status: Literal["pending", "done"]
    deleted: int = 0
    at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None


class ErasureRequest(_Model):
    request_id: str
    retailer_id: str
    shopper_hash: str
    # The customer identifier, needed to find the shopper's data: kept only while the
    # request runs, removed when it is done (then only the hash remains).
    shopper_id: str | None
    status: RequestStatus
    requested_at: datetime
    finished_at: datetime | None = None
    receipts: dict[str, StoreReceipt] = {}
    # Passes over every store so far; the last one starts ``settle`` after the request.
    passes: int = 0
    # Why the last pass waits beyond the settle (work that may still write the shopper's
    # data, e.g. a nightly run in progress); None when nothing holds it.
    waiting_for: str | None = None

    def public(self) -> dict[str, object]:
        """What the API answers: never the customer identifier."""
        return self.model_dump(mode="json", exclude={"shopper_id"})


class Suppression(_Model):
    retailer_id: str
    shopper_hash: str
    reason: SuppressionReason
    at: datetime


class AuditRecord(_Model):
    kind: Literal["purge", "erasure"]
    at: datetime
    retailer_id: str
    store: str
    deleted: int
    cutoff: datetime | None = None
    shopper_hash: str | None = None
    request_id: str | None = None


# --- ports -------------------------------------------------------------------------------


class ErasureRequestStore(Protocol):
    def put(self, request: ErasureRequest) -> None: ...

    def get(self, request_id: str) -> ErasureRequest | None: ...

    def running(self, limit: int) -> list[ErasureRequest]:
        """Requests not done yet, oldest first."""
        ...

    def running_for(self, retailer_id: str, shopper_hash: str) -> ErasureRequest | None:
        """The shopper's request not done yet, if any (a repeated request joins it)."""
        ...


class SuppressionList(Protocol):
    def add(self, suppression: Suppression) -> None: ...

    def hashes(self, retailer_id: str, reasons: Sequence[SuppressionReason]) -> frozenset[str]:
        """The retailer's suppressed shoppers' hashes, for these reasons."""
        ...


class AuditLog(Protocol):
    def record(self, records: Sequence[AuditRecord]) -> None: ...


class RetentionSource(Protocol):
    def retailers(self) -> list[str]:
        """Every retailer whose data the purge must look at."""
        ...

    def retention(self, retailer_id: str) -> RetailerRetention: ...


# --- suppression -------------------------------------------------------------------------


class SuppressionFilter:
    """Which shoppers of a retailer to skip, from the suppression list: each retailer's
    hashes are re-read at most every ``ttl_s`` (ingest), or once (a replay's run)."""

    def __init__(
        self,
        suppressions: SuppressionList,
        hasher: ShopperHasher,
        reasons: Sequence[SuppressionReason],
        ttl_s: float = float("inf"),
    ) -> None:
        self._suppressions = suppressions
        self._hasher = hasher
        self._reasons = tuple(reasons)
        self._cache: TtlCache[frozenset[str]] = TtlCache(ttl_s)

    def _load(self, retailer_id: str) -> frozenset[str]:
        return self._suppressions.hashes(retailer_id, self._reasons)

    def __call__(self, retailer_id: str, shopper_id: str) -> bool:
        """True if the shopper is suppressed (their data must not be processed)."""
        hashes = self._cache.get(retailer_id, self._load)
        return bool(hashes) and self._hasher(retailer_id, shopper_id) in hashes


class KnownSuppressions:
    """A snapshot of the suppressed hashes of some retailers (picklable: a backfill's
    worker processes each get one)."""

    def __init__(self, key: bytes, hashes: dict[str, frozenset[str]]) -> None:
        self._key = key
        self._hashes = hashes
        self._hasher: ShopperHasher | None = None

    @classmethod
    def load(
        cls,
        suppressions: SuppressionList,
        key: bytes,
        retailers: Iterable[str],
        reasons: Sequence[SuppressionReason] = ("erased", "objected"),
    ) -> KnownSuppressions:
        return cls(key, {r: suppressions.hashes(r, reasons) for r in retailers})

    def __call__(self, retailer_id: str, shopper_id: str) -> bool:
        hashes = self._hashes.get(retailer_id)
        if not hashes:
            return False
        if self._hasher is None:
            self._hasher = ShopperHasher(self._key)
        return self._hasher(retailer_id, shopper_id) in hashes

    def __len__(self) -> int:
        return sum(len(h) for h in self._hashes.values())


def object_to_processing(
    suppressions: SuppressionList,
    marks: MarkWriter,
    hasher: ShopperHasher,
    retailer_id: str,
    shopper_id: str,
    now: datetime,
) -> Suppression:
    """The shopper objects to processing: the mark stops every writer and the experiences
    API at once; their future events are refused at ingest."""
    suppression = Suppression(
        retailer_id=retailer_id,
        shopper_hash=hasher(retailer_id, shopper_id),
        reason="objected",
        at=now,
    )
    marks.put(retailer_id, suppression.shopper_hash, "objected", now)  # before anything else
    suppressions.add(suppression)
    return suppression


# --- erasure -----------------------------------------------------------------------------


def request_erasure(
    requests: ErasureRequestStore,
    suppressions: SuppressionList,
    marks: MarkWriter,
    hasher: ShopperHasher,
    store_names: Sequence[str],
    retailer_id: str,
    shopper_id: str,
    now: datetime,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> ErasureRequest:
    """Record the request (it runs asynchronously); from now on every writer drops what the
    pipeline still carries of the shopper from before this moment (the mark), and replays
    and backfills skip the shopper."""
    shopper_hash = hasher(retailer_id, shopper_id)
    marks.put(retailer_id, shopper_hash, "erased", now)  # before the answer, before any sweep
    suppressions.add(
        Suppression(retailer_id=retailer_id, shopper_hash=shopper_hash, reason="erased", at=now)
    )
    already = requests.running_for(retailer_id, shopper_hash)
    if already is not None:
        return already  # one running request per shopper: a flood of repeats adds nothing
    request = ErasureRequest(
        request_id=new_id(),
        retailer_id=retailer_id,
        shopper_hash=shopper_hash,
        shopper_id=shopper_id,
        status="running",
        requested_at=now,
        receipts={name: StoreReceipt(status="pending") for name in store_names},
    )
    requests.put(request)
    log.info(
        "erasure requested",
        extra={"request_id": request.request_id, "retailer_id": retailer_id},
    )
    return request


def run_erasure(
    request: ErasureRequest,
    registry: StoreRegistry,
    requests: ErasureRequestStore,
    audit: AuditLog,
    clock: Callable[[], datetime],
    is_transient: Callable[[BaseException], bool],
    settle: timedelta = timedelta(0),
    work_in_progress: Callable[[], str | None] = lambda: None,
) -> ErasureRequest:
    """Erase the shopper from every store whose receipt is still pending; progress is
    saved after each store. When every store is done, the pass is the last one only if
    it started ``settle`` or more after the request (a write that began before the
    shopper's mark existed has ended by then) and ``work_in_progress`` names nothing
    (long work that read the shopper's data before the first pass — a nightly run — and
    may still write it); otherwise every store is erased again by a later sweep. Done
    after the last pass: the customer identifier is then dropped from the request, and
    one audit record per store is written."""
    shopper_id = request.shopper_id
    if request.status == "done" or shopper_id is None:
        return request
    started = clock()
    last_pass_from = request.requested_at + settle
    if request.passes >= 1 and started < last_pass_from:
        return request  # the first pass is done; the last waits for the settle
    waiting_for = work_in_progress() if started >= last_pass_from else None
    if request.passes >= 1 and waiting_for:
        if waiting_for != request.waiting_for:
            request = request.model_copy(update={"waiting_for": waiting_for})
            requests.put(request)
        return request  # the last pass waits for that work to end
    final = started >= last_pass_from and waiting_for is None
    receipts = dict(request.receipts)
    for entry in registry:
        receipt = receipts.get(entry.name, StoreReceipt(status="pending"))
        if receipt.status == "done":
            continue
        attempts = receipt.attempts + 1
        try:
            deleted = entry.store.erase_shopper(request.retailer_id, shopper_id)
        except StorePendingError as exc:
            receipts[entry.name] = receipt.model_copy(
                update={"attempts": attempts, "last_error": f"pending: {exc}"}
            )
        except Exception as exc:
            if not is_transient(exc):
                raise
            receipts[entry.name] = receipt.model_copy(
                update={"attempts": attempts, "last_error": f"unavailable: {exc}"}
            )
        else:
            receipts[entry.name] = StoreReceipt(
                status="done", deleted=receipt.deleted + deleted, at=clock(), attempts=attempts
            )
        request = request.model_copy(update={"receipts": dict(receipts)})
        requests.put(request)
    if all(r.status == "done" for r in receipts.values()) and not final:
        # Not the last pass yet: a sweep after the settle (and after any work in progress)
        # erases every store again.
        request = request.model_copy(
            update={
                "passes": request.passes + 1,
                "waiting_for": waiting_for,
                "receipts": {
                    name: r.model_copy(update={"status": "pending"}) for name, r in receipts.items()
                },
            }
        )
        requests.put(request)
        return request
    if all(r.status == "done" for r in receipts.values()):
        finished = clock()
        audit.record(
            [
                AuditRecord(
                    kind="erasure",
                    at=r.at or finished,
                    retailer_id=request.retailer_id,
                    store=name,
                    deleted=r.deleted,
                    shopper_hash=request.shopper_hash,
                    request_id=request.request_id,
                )
                for name, r in receipts.items()
            ]
        )
        request = request.model_copy(
            update={
                "status": "done",
                "finished_at": finished,
                "shopper_id": None,
                "passes": request.passes + 1,
                "waiting_for": None,
            }
        )
        requests.put(request)
        log.info(
            "erasure done",
            extra={
                "request_id": request.request_id,
                "deleted": sum(r.deleted for r in receipts.values()),
            },
        )
    return request


# A request still running this long after it was made is stuck: an alert fires on the
# "erasure request overdue" log (infra/pulumi/cartwise_infra/operations.py), leaving most
# of the month the GDPR allows (art. 12(3)) to fix it; sweeps finish one in minutes.
ERASURE_DEADLINE = timedelta(hours=72)


def run_pending_erasures(
    registry: StoreRegistry,
    requests: ErasureRequestStore,
    audit: AuditLog,
    clock: Callable[[], datetime],
    is_transient: Callable[[BaseException], bool],
    limit: int = 20,
    settle: timedelta = timedelta(0),
    work_in_progress: Callable[[], str | None] = lambda: None,
    deadline: timedelta = ERASURE_DEADLINE,
) -> list[ErasureRequest]:
    """Advance every running request (the scheduled sweep); return them as they are now.
    A request that fails is logged and left running: it never blocks the ones after it.
    One still running past ``deadline`` is logged as overdue (an alert)."""
    advanced = []
    # Asked at most once per sweep, not once per request: a run that ends during the sweep
    # frees the next sweep; one that starts during it read the erased read models.
    work_in_progress = functools.cache(work_in_progress)
    for request in requests.running(limit):
        try:
            advanced.append(
                run_erasure(
                    request,
                    registry,
                    requests,
                    audit,
                    clock,
                    is_transient,
                    settle,
                    work_in_progress,
                )
            )
        except Exception as exc:
            log.error(
                "erasure request failed; the next sweep retries it",
                extra={"request_id": request.request_id, "error": type(exc).__name__},
            )
            advanced.append(request)
    now = clock()
    for request in advanced:
        if request.status == "running" and now - request.requested_at > deadline:
            log.error(
                "erasure request overdue",
                extra={
                    "request_id": request.request_id,
                    "retailer_id": request.retailer_id,
                    "age_hours": int((now - request.requested_at).total_seconds() // 3600),
                },
            )
    return advanced


# --- retention purge -------------------------------------------------------------------


class PurgeReport(_Model):
    at: datetime
    deleted: dict[str, int]  # "retailer/store" -> records deleted
    pending: dict[str, str] = {}  # "retailer/store" -> why it must be retried


def purge(
    registry: StoreRegistry,
    source: RetentionSource,
    defaults: RetentionDefaults,
    audit: AuditLog,
    now: datetime,
    is_transient: Callable[[BaseException], bool],
) -> PurgeReport:
    """Delete, in every store, each retailer's data older than its contractual period.

    Idempotent (a second run deletes nothing more); each store deletes in bounded
    batches; one audit record per retailer and store. A store that cannot do the work yet
    is reported pending (the next scheduled run retries it)."""
    deleted: dict[str, int] = {}
    pending: dict[str, str] = {}
    records: list[AuditRecord] = []
    for retailer_id in source.retailers():
        cut = cutoffs(defaults, source.retention(retailer_id), now)
        for entry in registry:
            key = f"{retailer_id}/{entry.name}"
            cutoff = cut[entry.data_class]
            try:
                count = entry.store.purge_before(retailer_id, cutoff)
            except StorePendingError as exc:
                pending[key] = str(exc)
                continue
            except Exception as exc:
                if not is_transient(exc):
                    raise
                pending[key] = f"unavailable: {exc}"
                continue
            deleted[key] = count
            records.append(
                AuditRecord(
                    kind="purge",
                    at=now,
                    retailer_id=retailer_id,
                    store=entry.name,
                    deleted=count,
                    cutoff=cutoff,
                )
            )
    audit.record(records)
    log.info(
        "retention purge",
        extra={"deleted": sum(deleted.values()), "pending": len(pending)},
    )
    return PurgeReport(at=now, deleted=deleted, pending=pending)
