"""TF Serving's REST URL grammar: which call a method and path name.

Mirrors ``ParseModelInfo`` and the dispatch in ``HttpRestApiHandler::ProcessRequest``
(model_servers/http_rest_api_util.cc, http_rest_api_handler.cc), including their
quirks: the regexes are case-insensitive but the verb is compared in lower case, the
query string is part of the path, names are percent-decoded only after matching.

>>> parse_rest_request("POST", "/v1/models/din/labels/canary:predict")
RestRoute(action='predict', model_name='din', version=None, label='canary')
>>> parse_rest_request("GET", "/v1/models/din/versions/7/metadata")
RestRoute(action='metadata', model_name='din', version=7, label=None)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from tfs_async.testing.status import invalid_argument

__all__ = ["RestAction", "RestRoute", "is_v1_path", "parse_rest_request"]

RestAction = Literal["predict", "classify", "regress", "status", "metadata"]

# re.ASCII: RE2's \d is [0-9]; Python's would also take other Unicode digits.
_FLAGS = re.IGNORECASE | re.ASCII
_PREDICTION_API = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    _FLAGS,
)
_MODEL_STATUS_API = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:\/(metadata))?",
    _FLAGS,
)
_V1_PATH = re.compile(r"/v1/.*", _FLAGS)
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class RestRoute:
    """A REST request resolved to one TF Serving call.

    ``model_name`` and ``label`` are percent-decoded; ``version`` and ``label`` are
    never both set (the URL grammar cannot carry both).
    """

    action: RestAction
    model_name: str
    version: int | None = None
    label: str | None = None


def is_v1_path(path: str) -> bool:
    """Whether TF Serving's REST handler takes ``path`` (query string included).

    Other paths get the HTTP server's own non-JSON 404.

    >>> is_v1_path("/V1/anything?x=1"), is_v1_path("/v2/models/m")
    (True, False)
    """
    return _V1_PATH.fullmatch(path) is not None


def _decode(arg: str) -> str:
    # curl_easy_unescape: %XX only, '+' stays '+', malformed escapes pass through.
    return unquote(arg, encoding="utf-8", errors="replace")


def parse_rest_request(method: str, path: str) -> RestRoute:
    """Resolve an HTTP ``method`` and raw ``path`` (undecoded, with any ``?query``).

    Raises :class:`~tfs_async.testing.status.ServingStatus` (INVALID_ARGUMENT) with
    TF Serving's message: ``"Malformed request: <METHOD> <path>"`` for anything the
    grammar does not serve, ``"Failed to convert version: <v> to numeric."`` for a
    version beyond int64, ``"Missing model name in request."`` for ``GET /v1/models``.

    >>> parse_rest_request("GET", "/v1/models/a%2Fb+c")
    RestRoute(action='status', model_name='a/b+c', version=None, label=None)
    >>> parse_rest_request("POST", "/v1/models/m:PREDICT")
    Traceback (most recent call last):
    ...
    tfs_async.testing.status.ServingStatus: Malformed request: POST /v1/models/m:PREDICT
    """
    malformed = invalid_argument(f"Malformed request: {method} {path}")
    match: re.Match[str] | None = None
    if method == "POST":
        match = _PREDICTION_API.fullmatch(path)
    elif method == "GET":
        match = _MODEL_STATUS_API.fullmatch(path)
    if match is None:
        raise malformed
    raw_name, raw_version, raw_label, suffix = match.groups()
    # TF decodes the name, then converts the version, then decodes the label.
    model_name = _decode(raw_name) if raw_name else ""
    version: int | None = None
    if raw_version:
        version = int(raw_version)
        if version > _INT64_MAX:
            raise invalid_argument(
                f"Failed to convert version: {raw_version} to numeric.",
            )
    label = _decode(raw_label) if raw_label else None
    action: RestAction
    if method == "POST":
        # The regex matched case-insensitively; only lower-case verbs are dispatched.
        if suffix == "classify":
            action = "classify"
        elif suffix == "regress":
            action = "regress"
        elif suffix == "predict":
            action = "predict"
        else:
            raise malformed
    else:
        # A "/METADATA" suffix matches the regex but is not "metadata": status request.
        action = "metadata" if suffix == "metadata" else "status"
        if not model_name:
            raise invalid_argument("Missing model name in request.")
    return RestRoute(action=action, model_name=model_name, version=version, label=label)
