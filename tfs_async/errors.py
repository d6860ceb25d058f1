"""One error hierarchy for every transport.

TF Serving reports failures as a canonical status code (the gRPC code, equal to
``tensorflow.error.Code``) plus a message. Over REST the code is folded into an
HTTP status (see TF Serving's ``http_server.cc``) and the message is the body's
``"error"`` field. Both transports turn what they received into the same
exception class here (:func:`error_from_grpc`, :func:`error_from_http`), so a
caller writes one ``except`` whatever the protocol:

>>> from tfs_async.errors import error_from_http, NotFoundError
>>> err = error_from_http(404, b'{"error": "Servable not found for request: Latest(m)"}')
>>> isinstance(err, NotFoundError), err.code.name, err.http_status
(True, 'NOT_FOUND', 404)
>>> err.message
'Servable not found for request: Latest(m)'
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    from tfs_async.types import ModelSpec

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "CancelledError",
    "ConnectionFailedError",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidInputError",
    "MessageTooLargeError",
    "NotFoundError",
    "NotSentError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "ResponseDecodeError",
    "StatusCode",
    "TFServingError",
    "TLSError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "error_for_code",
    "error_from_grpc",
    "error_from_http",
    "http_status_for_code",
    "is_tls_failure",
]


class StatusCode(enum.IntEnum):
    """Canonical status codes: gRPC's, equal to ``tensorflow.error.Code``."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# TF Serving's canonical code -> HTTP status (model_servers/http_server.cc).
_HTTP_STATUS: dict[StatusCode, int] = {
    StatusCode.OK: 200,
    StatusCode.CANCELLED: 499,
    StatusCode.UNKNOWN: 500,
    StatusCode.INVALID_ARGUMENT: 400,
    StatusCode.DEADLINE_EXCEEDED: 504,
    StatusCode.NOT_FOUND: 404,
    StatusCode.ALREADY_EXISTS: 409,
    StatusCode.PERMISSION_DENIED: 403,
    StatusCode.RESOURCE_EXHAUSTED: 429,
    StatusCode.FAILED_PRECONDITION: 400,
    StatusCode.ABORTED: 409,
    StatusCode.OUT_OF_RANGE: 400,
    StatusCode.UNIMPLEMENTED: 501,
    StatusCode.INTERNAL: 500,
    StatusCode.UNAVAILABLE: 503,
    StatusCode.DATA_LOSS: 500,
    StatusCode.UNAUTHENTICATED: 401,
}

# HTTP status -> the code a client should assume. Several codes share a status
# (400, 409, 500); the most common meaning wins.
_CODE_FOR_HTTP: dict[int, StatusCode] = {
    400: StatusCode.INVALID_ARGUMENT,
    401: StatusCode.UNAUTHENTICATED,
    403: StatusCode.PERMISSION_DENIED,
    404: StatusCode.NOT_FOUND,
    408: StatusCode.DEADLINE_EXCEEDED,
    409: StatusCode.ABORTED,
    429: StatusCode.RESOURCE_EXHAUSTED,
    499: StatusCode.CANCELLED,
    500: StatusCode.INTERNAL,
    501: StatusCode.UNIMPLEMENTED,
    502: StatusCode.UNAVAILABLE,
    503: StatusCode.UNAVAILABLE,
    504: StatusCode.DEADLINE_EXCEEDED,
}


def http_status_for_code(code: int) -> int:
    """The HTTP status TF Serving's REST API answers with for a canonical code.

    >>> http_status_for_code(StatusCode.FAILED_PRECONDITION)
    400
    """
    try:
        return _HTTP_STATUS[StatusCode(code)]
    except ValueError:
        return 500


class TFServingError(Exception):
    """Base class of every error tfs_async raises for a failed call.

    Attributes:
        code: the canonical status code (gRPC's).
        message: the server's own message, unchanged (or ours, for client-side errors).
        http_status: the HTTP status when the call went over REST, else ``None``.
        model: the model spec the caller asked for, when known.
        attempts: how many attempts were made (1 when no retry happened).
        previous: the errors of earlier attempts, oldest first, when retries happened.
    """

    default_code: StatusCode = StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: StatusCode | int | None = None,
        http_status: int | None = None,
        model: ModelSpec | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = StatusCode(code) if code is not None else self.default_code
        self.http_status = http_status
        self.model = model
        self.attempts = 1
        self.previous: tuple[TFServingError, ...] = ()
        #: seconds the server asked the client to wait before retrying
        #: (``grpc-retry-pushback-ms``, HTTP ``Retry-After``); ``None``: no hint.
        self.retry_after: float | None = None

    def __str__(self) -> str:
        where = f" [model {self.model}]" if self.model is not None else ""
        http = f" (HTTP {self.http_status})" if self.http_status is not None else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{self.code.name}{http}{where}{tries}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code.name}, http_status={self.http_status!r}, "
            f"model={self.model!r}, message={self.message!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable (they cross process boundaries in benchmarks).
        return (
            _rebuild_error,
            (type(self), self.message, int(self.code), self.http_status, self.model),
        )


def _rebuild_error(
    cls: type[TFServingError],
    message: str,
    code: int,
    http_status: int | None,
    model: ModelSpec | None,
) -> TFServingError:
    return cls(message, code=code, http_status=http_status, model=model)


class CancelledError(TFServingError):
    """The call was cancelled (CANCELLED, HTTP 499)."""

    default_code = StatusCode.CANCELLED


class UnknownError(TFServingError):
    """The server failed with an unknown error (UNKNOWN)."""

    default_code = StatusCode.UNKNOWN


class InvalidArgumentError(TFServingError):
    """The request is malformed for this model (INVALID_ARGUMENT, HTTP 400).

    Also raised for an unknown version label, which TF Serving reports as
    INVALID_ARGUMENT, not NOT_FOUND.
    """

    default_code = StatusCode.INVALID_ARGUMENT


class DeadlineExceededError(TFServingError):
    """The deadline passed before the call finished (DEADLINE_EXCEEDED, HTTP 504)."""

    default_code = StatusCode.DEADLINE_EXCEEDED


class NotFoundError(TFServingError):
    """The model or version is unknown, or still loading (NOT_FOUND, HTTP 404).

    TF Serving answers NOT_FOUND, not UNAVAILABLE, while a version loads.
    """

    default_code = StatusCode.NOT_FOUND


class AlreadyExistsError(TFServingError):
    """ALREADY_EXISTS (HTTP 409)."""

    default_code = StatusCode.ALREADY_EXISTS


class PermissionDeniedError(TFServingError):
    """The caller may not do this (PERMISSION_DENIED, HTTP 403)."""

    default_code = StatusCode.PERMISSION_DENIED


class ResourceExhaustedError(TFServingError):
    """The server is out of a resource, e.g. a full queue (RESOURCE_EXHAUSTED, HTTP 429)."""

    default_code = StatusCode.RESOURCE_EXHAUSTED


class FailedPreconditionError(TFServingError):
    """The server is not in a state to run this call (FAILED_PRECONDITION, HTTP 400).

    gRPC Predict reports an unknown signature this way.
    """

    default_code = StatusCode.FAILED_PRECONDITION


class AbortedError(TFServingError):
    """ABORTED (HTTP 409)."""

    default_code = StatusCode.ABORTED


class OutOfRangeError(TFServingError):
    """OUT_OF_RANGE (HTTP 400)."""

    default_code = StatusCode.OUT_OF_RANGE


class UnimplementedError(TFServingError):
    """The server, or this transport, does not offer the call (UNIMPLEMENTED, HTTP 501).

    Raised before anything is sent for calls TF Serving's REST API lacks
    (MultiInference, HandleReloadConfigRequest) and for half/complex dtypes over REST.
    """

    default_code = StatusCode.UNIMPLEMENTED


class InternalError(TFServingError):
    """The server failed internally (INTERNAL, HTTP 500)."""

    default_code = StatusCode.INTERNAL


class UnavailableError(TFServingError):
    """The server cannot take the call now (UNAVAILABLE, HTTP 503). Retried by default."""

    default_code = StatusCode.UNAVAILABLE


class DataLossError(TFServingError):
    """DATA_LOSS (HTTP 500)."""

    default_code = StatusCode.DATA_LOSS


class UnauthenticatedError(TFServingError):
    """Missing or bad credentials (UNAUTHENTICATED, HTTP 401)."""

    default_code = StatusCode.UNAUTHENTICATED


class ConnectionFailedError(UnavailableError):
    """No connection to the server could be made or kept (refused, reset).

    A failed TLS handshake raises :class:`TLSError` instead (deterministic, not retried).
    """


class TLSError(TFServingError):
    """The TLS handshake failed: untrusted, expired or misnamed certificate, missing
    client certificate (mutual TLS), or a plaintext server behind a TLS target.

    Both transports see this as UNAVAILABLE, but it is deterministic: it is not an
    :class:`UnavailableError`, so it is never retried, and nothing falls back to
    plaintext. The message says what the TLS library reported.
    """

    default_code = StatusCode.UNAVAILABLE


# What a TLS library reports when a handshake fails (gRPC's details, Python's ssl).
_TLS_FAILURE = re.compile(
    r"certificate|wrong_version_number|wrong version number|hostname verification|"
    r"hostname mismatch|peer name|unknown ca|tlsv1 alert|tlsv13 alert|"
    r"packet length too long|record layer failure",
    re.IGNORECASE,
)


def is_tls_failure(text: str) -> bool:
    """Whether an error text reports a failed TLS handshake (see :class:`TLSError`).

    >>> is_tls_failure("Ssl handshake failed: SSL_ERROR_SSL: CERTIFICATE_VERIFY_FAILED")
    True
    >>> is_tls_failure("failed to connect to all addresses; last error: Connection refused")
    False
    """
    return _TLS_FAILURE.search(text) is not None


class NotSentError(ConnectionFailedError):
    """The request never reached a server: no connection could be made (refused,
    unreachable, name not resolved, no ready subchannel), so nothing was written.

    Re-sending it cannot duplicate work: with ``wait_for_ready`` (the default) the
    client waits for a server within the call's deadline and re-sends it, without
    charging the retry budget.
    """


class MessageTooLargeError(ResourceExhaustedError):
    """A request or response is larger than the configured message size limit.

    Raised before sending (request) or on receipt (response); never retried: the
    same message would fail the same way. The message names the limit and the
    option that raises it (``Client(max_message_size=...)``).

    Attributes:
        size: the message's size in bytes (when known).
        limit: the limit in bytes.
    """

    def __init__(
        self,
        message: str,
        *,
        size: int | None = None,
        limit: int | None = None,
        code: StatusCode | int | None = None,
        http_status: int | None = None,
        model: ModelSpec | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, model=model)
        self.size = size
        self.limit = limit


class ResponseDecodeError(DataLossError):
    """The server's answer could not be decoded (not TF Serving's format)."""


class InvalidInputError(InvalidArgumentError, ValueError):
    """The caller's input was rejected before anything was sent.

    Attributes:
        input_name: the input (or feature) concerned, when there is one.
        expected: what was expected, in words.
    """

    def __init__(
        self,
        message: str,
        *,
        input_name: str | None = None,
        expected: str | None = None,
        model: ModelSpec | None = None,
    ) -> None:
        super().__init__(message, model=model)
        self.input_name = input_name
        self.expected = expected

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_input_error, (self.message, self.input_name, self.expected, self.model))


def _rebuild_input_error(
    message: str, input_name: str | None, expected: str | None, model: ModelSpec | None
) -> InvalidInputError:
    return InvalidInputError(message, input_name=input_name, expected=expected, model=model)


_CLASS_FOR_CODE: dict[StatusCode, type[TFServingError]] = {
    StatusCode.CANCELLED: CancelledError,
    StatusCode.UNKNOWN: UnknownError,
    StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    StatusCode.NOT_FOUND: NotFoundError,
    StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    StatusCode.ABORTED: AbortedError,
    StatusCode.OUT_OF_RANGE: OutOfRangeError,
    StatusCode.UNIMPLEMENTED: UnimplementedError,
    StatusCode.INTERNAL: InternalError,
    StatusCode.UNAVAILABLE: UnavailableError,
    StatusCode.DATA_LOSS: DataLossError,
    StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}


def error_for_code(
    code: int,
    message: str,
    *,
    http_status: int | None = None,
    model: ModelSpec | None = None,
) -> TFServingError:
    """Build the exception for a canonical (gRPC) status code.

    >>> err = error_for_code(3, "Unrecognized servable version label: x")
    >>> type(err).__name__, err.code.name
    ('InvalidArgumentError', 'INVALID_ARGUMENT')
    """
    try:
        status = StatusCode(code)
    except ValueError:
        status = StatusCode.UNKNOWN
    cls = _CLASS_FOR_CODE.get(status, UnknownError)
    return cls(message, code=status, http_status=http_status, model=model)


class RpcErrorLike(Protocol):
    """What :func:`error_from_grpc` reads of a failed gRPC call (``grpc.aio.AioRpcError``)."""

    def code(self) -> Any:
        """The call's ``grpc.StatusCode``."""

    def details(self) -> str | None:
        """The status message."""


# UNAVAILABLE raised by the channel itself (no answer from a server) rather than by a server.
_CONNECTION_FAILURE = re.compile(
    r"failed to connect|connection refused|connection reset|socket closed|broken pipe|"
    r"handshake|ssl|tls|connect failed|endpoint|goaway|unreachable|no route|"
    r"name resolution|dns resolution|transport closed|stream removed",
    re.IGNORECASE,
)


def error_from_grpc(error: RpcErrorLike, *, model: ModelSpec | None = None) -> TFServingError:
    """Build the exception for a failed gRPC call from its status code and details.

    The code is read by name (``grpc.StatusCode.NOT_FOUND`` -> ``NOT_FOUND``), so
    this module does not import grpc. UNAVAILABLE raised by the channel itself
    (refused, reset, TLS handshake...) becomes :class:`ConnectionFailedError`.
    """
    details = error.details() or ""
    code = StatusCode.__members__.get(getattr(error.code(), "name", ""), StatusCode.UNKNOWN)
    if code == StatusCode.UNAVAILABLE and _CONNECTION_FAILURE.search(details):
        return ConnectionFailedError(details, model=model)
    return error_for_code(code, details, model=model)


def error_from_http(status: int, body: bytes, *, model: ModelSpec | None = None) -> TFServingError:
    """Build the exception for a failed REST call from its status and body.

    TF Serving's handlers answer ``{"error": "<message>"}``; libevent's own
    answers (a path outside ``/v1/``) carry an HTML body, kept as the message.
    """
    code = _CODE_FOR_HTTP.get(status)
    if code is None:
        code = StatusCode.INTERNAL if status >= 500 else StatusCode.UNKNOWN
    return error_for_code(code, _http_error_message(status, body), http_status=status, model=model)


def _http_error_message(status: int, body: bytes) -> str:
    if body:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            return str(doc["error"])
        text = body.decode("utf-8", "replace").strip()
        if len(text) > 1024:
            text = text[:1024] + "..."
        return text
    return f"HTTP {status} with an empty body"


def with_attempts(
    error: TFServingError, attempts: int, previous: Sequence[TFServingError]
) -> TFServingError:
    """Record retry history on the error the caller will see, and return it."""
    error.attempts = attempts
    error.previous = tuple(previous)
    return error
