"""Which failures of the Google Cloud clients are worth retrying (the caller's 503)."""

from __future__ import annotations

from google.api_core import exceptions

from shared.platform.errors import StoreUnavailableError

_TRANSIENT = (
    exceptions.ServiceUnavailable,
    exceptions.TooManyRequests,
    exceptions.InternalServerError,
    exceptions.GatewayTimeout,
    exceptions.DeadlineExceeded,
    exceptions.RetryError,
    StoreUnavailableError,
    ConnectionError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT)
