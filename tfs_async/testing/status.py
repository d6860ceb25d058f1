"""The emulator's internal failure: a canonical code plus TF Serving's message.

Raised anywhere inside the emulator; the gRPC service turns it into a gRPC
status (message cut at 1024 bytes like TF Serving) and the REST service into
``{"error": message}`` with the HTTP status of :func:`tfs_async.errors.http_status_for_code`.
"""

from __future__ import annotations

from tfs_async.errors import StatusCode


class ServingStatus(Exception):
    """A non-OK status as TF Serving would report it."""

    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ServingStatus({self.code.name}, {self.message!r})"


class InvalidExampleError(ServingStatus, ValueError):
    """A ``tf.Example`` feature that does not parse as the model expects.

    INVALID_ARGUMENT with TensorFlow's ParseExample wording, as TF Serving
    answers a Classify or Regress request with such an example. Also a
    ``ValueError``, for code that catches that.
    """

    def __init__(self, message: str) -> None:
        ServingStatus.__init__(self, StatusCode.INVALID_ARGUMENT, message)


def invalid_argument(message: str) -> ServingStatus:
    """INVALID_ARGUMENT with ``message``."""
    return ServingStatus(StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingStatus:
    """NOT_FOUND with ``message``."""
    return ServingStatus(StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingStatus:
    """FAILED_PRECONDITION with ``message``."""
    return ServingStatus(StatusCode.FAILED_PRECONDITION, message)


def unimplemented(message: str) -> ServingStatus:
    """UNIMPLEMENTED with ``message``."""
    return ServingStatus(StatusCode.UNIMPLEMENTED, message)
