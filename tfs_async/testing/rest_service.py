"""The emulator's REST face: TF Serving's HTTP/JSON API on an aiohttp low-level server.

It follows TF Serving's ``http_server.cc`` / ``http_rest_api_handler.cc``:

* a path (query string included) outside ``(?i)/v1/.*`` gets a non-JSON 404;
* everything else answers ``application/json``: the result, or
  ``{"error": message}`` with the HTTP status TF Serving maps the code to;
* request bodies whose ``Content-Encoding`` mentions gzip are gunzipped (up to
  100 MiB); there is no request-size limit;
* predict/classify/regress run under ``--rest_api_timeout_in_ms`` (expiry -> 504);
* predict resolves the servable and signature before it reads the tensors, so a
  bad body on an unknown model is a 404 unless the JSON itself is broken;
* ``OPTIONS`` on a ``/v1/`` path is a CORS preflight: 200 when the ``Origin``
  header contains ``http://`` or ``https://``, else 400, both with an empty body;
* with ``--rest_api_enable_cors_support`` every answer of the API (results,
  errors, preflights; not libevent's own 404/501 pages or the Prometheus page)
  carries ``Access-Control-Allow-Origin: *``, ``Access-Control-Allow-Methods:
  POST, GET`` and ``Access-Control-Allow-Headers: Content-Type``
  (``http_server.cc`` ``ProcessRequest``, ``http_rest_api_util.cc`` ``AddCORSHeaders``).

The JSON conversions themselves live in :mod:`tfs_async.testing.rest_json`
and the URL grammar in :mod:`tfs_async.testing.rest_path`.
"""

from __future__ import annotations

import logging
import re
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import hdrs, web

from tfs_async._proto import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)
from tfs_async.errors import StatusCode, http_status_for_code
from tfs_async.testing import rest_json, rest_path
from tfs_async.testing.faults import ConnectionDropped, FaultPlan
from tfs_async.testing.monitoring import Metrics
from tfs_async.testing.status import ServingStatus, invalid_argument

if TYPE_CHECKING:
    from tfs_async.testing.profiler import ProfilerService
    from tfs_async.testing.rest_path import RestRoute
    from tfs_async.testing.serving import ServerCore

__all__ = ["CORS_HEADERS", "MAX_UNCOMPRESSED_BYTES", "RestService"]

_log = logging.getLogger(__name__)

#: TF Serving's gzip request limit (ZLib::kMaxUncompressedBytes).
MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024

_JSON_HEADERS = {"Content-Type": "application/json"}
# RE2::PartialMatch(origin, "https?://") in http_server.cc: anywhere in the header.
_ORIGIN = re.compile(r"https?://")
# AddCORSHeaders (http_rest_api_util.cc).
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}

# libevent's evhttp_send_error page (http.c ERR_FORMAT), sent with only
# "Content-Type: text/html" and "Connection: close" (evhttp_send_page_).
_ERROR_PAGE = (
    "<HTML><HEAD>\n<TITLE>{code} {reason}</TITLE>\n</HEAD><BODY>\n"
    "<H1>{reason}</H1>\n</BODY></HTML>\n"
)

# The methods TF Serving lets libevent pass (evhttp_server.cc); others get 501.
_ALLOWED_METHODS = frozenset({"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"})


class _Response(web.Response):
    """A response without aiohttp's ``Server`` header: libevent sends none."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.popall(hdrs.SERVER, None)


def _libevent_error(code: int, reason: str) -> web.Response:
    """An answer libevent itself gives (404 outside /v1/, 501 for a disallowed method)."""
    page = _ERROR_PAGE.format(code=code, reason=reason).encode()
    response = _Response(status=code, body=page, headers={"Content-Type": "text/html"})
    response.force_close()
    return response


class _BadBody(Exception):
    """A request body the HTTP layer itself refuses (not JSON-answered)."""


def _json_response(body: bytes, status: int = 200) -> web.Response:
    return _Response(body=body, status=status, headers=_JSON_HEADERS)


def _error_response(status: ServingStatus) -> web.Response:
    return _json_response(
        rest_json.error_to_json(status.message), http_status_for_code(status.code)
    )


def _gunzip(data: bytes) -> bytes:
    """Decompress a gzip body, refusing more than :data:`MAX_UNCOMPRESSED_BYTES`."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_UNCOMPRESSED_BYTES + 1)
    except zlib.error as exc:
        raise _BadBody(f"cannot gunzip request body: {exc}") from exc
    if len(out) > MAX_UNCOMPRESSED_BYTES or inflater.unconsumed_tail:
        raise _BadBody("gzip request body exceeds 100 MiB uncompressed")
    return out


def _model_spec(route: RestRoute, signature_name: str = "") -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=route.model_name, signature_name=signature_name)
    if route.version is not None:
        spec.version.value = route.version
    elif route.label is not None:
        spec.version_label = route.label
    return spec


class RestService:
    """The request handler TF Serving's REST port runs, bound to one server's models.

    Args:
        core: the models (and their prediction service) answering the calls.
        timeout_ms: ``--rest_api_timeout_in_ms``; applied to predict, classify
            and regress when > 0.
        faults: returns the fault plan in force (or None) for each request.
        prometheus_path: when set, GET on this exact path answers ``metrics`` in
            TF Serving's Prometheus text format (``--monitoring_config_file``).
        metrics: where REST requests are counted (TF Serving's ``http_server.cc``
            records ``request_count`` and ``request_latency`` for each one).
        trace: the profiler service told of every call answered while a
            profiling session runs (:mod:`tfs_async.testing.profiler`).
        enable_cors_support: ``--rest_api_enable_cors_support``: add
            :data:`CORS_HEADERS` to every answer of the API.
    """

    def __init__(
        self,
        core: ServerCore,
        *,
        timeout_ms: int = 30000,
        faults: Callable[[], FaultPlan | None] = lambda: None,
        prometheus_path: str | None = None,
        metrics: Metrics | None = None,
        trace: ProfilerService | None = None,
        enable_cors_support: bool = False,
    ) -> None:
        self._models = core
        self._prediction = core.prediction
        self._timeout = timeout_ms / 1000.0 if timeout_ms > 0 else None
        self._faults = faults
        self._prometheus_path = prometheus_path
        self._metrics = metrics
        self._trace = trace
        self._cors = enable_cors_support

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer one HTTP request the way TF Serving's REST server does."""
        # TF routes on the raw target: the query string is part of the path.
        path = request.raw_path
        if self._prometheus_path is not None and path == self._prometheus_path:
            return self._prometheus()
        if request.method not in _ALLOWED_METHODS:
            return _libevent_error(501, "Not Implemented")
        if not rest_path.is_v1_path(path):
            return _libevent_error(404, "Not Found")
        response = await self._process(request, path)
        if self._cors:
            # ProcessRequest adds them to whatever it answers, errors included.
            response.headers.update(CORS_HEADERS)
        return response

    async def _process(self, request: web.BaseRequest, path: str) -> web.Response:
        """``RestApiRequestDispatcher::ProcessRequest``: one request on a ``/v1/`` path."""
        start = time.perf_counter()
        method = request.method
        if method == "OPTIONS":
            return self._preflight(request)
        try:
            body = await request.content.read()
            if "gzip" in request.headers.get("Content-Encoding", "").lower():
                body = _gunzip(body)
        except _BadBody as exc:
            _log.info("refused REST request body: %s", exc)
            return _Response(status=400, body=b"", headers={"Content-Type": "text/html"})
        try:
            route = rest_path.parse_rest_request(method, path)
        except ServingStatus as status:
            return _error_response(status)
        try:
            plan = self._faults()
            if plan is not None:
                await plan.apply("rest", _fault_method(route.action), route.model_name)
            response = await self._dispatch(route, body)
        except ServingStatus as status:
            self._count(route, status.code, start)
            return _error_response(status)
        except ConnectionDropped:
            # Close without answering: the client sees the connection go away.
            if request.transport is not None:
                request.transport.abort()
            return _Response(status=503)  # never sent: the transport is gone
        except Exception as exc:
            # A bug or a model's own exception still answers in TF Serving's JSON form.
            _log.exception("REST %s %s failed", method, path)
            failure = ServingStatus(StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
            self._count(route, failure.code, start)
            return _error_response(failure)
        self._count(route, StatusCode.OK, start)
        return response

    async def _dispatch(self, route: RestRoute, body: bytes) -> web.Response:
        if route.action == "status":
            status_req = get_model_status_pb2.GetModelStatusRequest(model_spec=_model_spec(route))
            return _json_response(
                rest_json.status_to_json(await self._models.get_model_status(status_req))
            )
        if route.action == "metadata":
            meta_req = get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec=_model_spec(route), metadata_field=["signature_def"]
            )
            return _json_response(
                rest_json.metadata_to_json(await self._prediction.get_model_metadata(meta_req))
            )
        if route.action == "predict":
            return _json_response(await self._predict(route, body))
        if route.action in ("classify", "regress"):
            return _json_response(await self._classify_regress(route, body))
        raise invalid_argument(f"Malformed request: {route.action}")

    async def _predict(self, route: RestRoute, body: bytes) -> bytes:
        parsed = rest_json.parse_predict_body(body)
        signature_name = parsed.signature_name or "serving_default"
        # The servable and signature are looked up before the tensors are read
        # (TF Serving's processing order decides which error a bad request gets).
        servable = self._models.resolve(_model_spec(route))
        signature = servable.signatures.get(signature_name)
        if signature is None:
            raise invalid_argument(
                f'Serving signature name: "{signature_name}" not found in signature def'
            )
        dtypes = {alias: info.dtype for alias, info in signature.inputs.items()}
        tensors, fmt = rest_json.predict_inputs_from_json(parsed, dtypes)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = servable.name
        # Pin the resolved version so a concurrent reload cannot switch servables mid-call.
        request.model_spec.version.value = servable.version
        request.model_spec.signature_name = signature_name
        for alias, tensor in tensors.items():
            request.inputs[alias].CopyFrom(tensor)
        # TF's writer reads the typed *_val fields; ours reads either form and writes the
        # same bytes, and tensor_content skips building then re-reading the typed fields.
        response = await self._prediction.predict(
            request, timeout=self._timeout, tensor_content=True
        )
        return rest_json.predict_outputs_to_json(response.outputs, fmt)

    async def _classify_regress(self, route: RestRoute, body: bytes) -> bytes:
        signature_name, model_input = rest_json.parse_classify_regress_body(body, route.action)
        spec = _model_spec(route, signature_name)
        if route.action == "classify":
            creq = classification_pb2.ClassificationRequest(model_spec=spec, input=model_input)
            cresp = await self._prediction.classify(creq, timeout=self._timeout)
            return rest_json.classification_result_to_json(cresp.result)
        rreq = regression_pb2.RegressionRequest(model_spec=spec, input=model_input)
        rresp = await self._prediction.regress(rreq, timeout=self._timeout)
        return rest_json.regression_result_to_json(rresp.result)

    @staticmethod
    def _preflight(request: web.BaseRequest) -> web.Response:
        # CORS preflight as http_server.cc answers it: 200 when the Origin header holds
        # http(s)://, else FAILED_PRECONDITION "Origin header is missing in CORS
        # preflight" (400); the body is empty either way. CORS headers only with the flag.
        origin = request.headers.get("Origin", "")
        return _Response(status=200 if _ORIGIN.search(origin) else 400)

    def _count(self, route: RestRoute, code: StatusCode, start: float) -> None:
        trace = self._trace
        if trace is not None and trace.active:
            began = time.time_ns() - int((time.perf_counter() - start) * 1e9)
            trace.record("REST", _fault_method(route.action), route.model_name, code.name, began)
        if self._metrics is None:
            return
        self._metrics.count_request(route.model_name, code.name)
        if code == StatusCode.OK:
            # The API label is the POST verb; GET (status, metadata) leaves it empty.
            api = route.action if route.action in ("predict", "classify", "regress") else ""
            micros = (time.perf_counter() - start) * 1e6
            self._metrics.request_latency(route.model_name, api, "REST", micros)

    def _prometheus(self) -> web.Response:
        page = self._metrics.render() if self._metrics is not None else "\n"
        return _Response(body=page.encode(), headers={"Content-Type": "text/plain"})


def _fault_method(action: str) -> str:
    """REST action -> the call name a :class:`~tfs_async.testing.faults.Fault` selects."""
    return {"status": "get_model_status", "metadata": "get_model_metadata"}.get(action, action)
