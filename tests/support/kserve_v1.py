"""A tiny REST model server in the style of KServe's v1 protocol, for the tests.

It speaks TF Serving's REST predict API in its row form only and has no metadata
route, like KServe's v1 data plane, several model servers' "TFS-compatible"
endpoints and API gateways that expose only TF Serving's inference routes:

* ``POST /v1/models/{name}:predict`` with ``{"instances": [...]}`` answers
  ``{"predictions": [...]}``; a body without ``instances`` gets 400.
* ``POST /v1/models/half_plus_two:classify`` / ``:regress`` (signatures
  ``classify_x_to_y`` / ``regress_x_to_y``, float feature ``x`` -> ``0.5 * x + 2``)
  answer ``{"results": ...}`` in TF Serving's REST form; KServe's v1 protocol has
  no such routes, the gateways in front of TF Serving keep them.
* ``GET /v1/models/{name}`` answers ``{"name": ..., "ready": true}``.
* anything else, ``/v1/models/{name}/metadata`` included, is 404.

Models: ``half_plus_two`` (one input, one output: ``0.5 * x + 2``) and ``pair``
(inputs ``a`` and ``b``, outputs ``sum`` (float) and ``count`` (int) per row).
Every request path is recorded in :attr:`KServeV1.paths`.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from aiohttp import web

__all__ = ["KServeV1"]


def _half_plus_two(instances: list[Any]) -> list[Any]:
    def apply(value: Any) -> Any:
        if isinstance(value, list):
            return [apply(v) for v in value]
        return 0.5 * float(value) + 2.0

    return [apply(row) for row in instances]


def _pair(instances: list[Any]) -> list[Any]:
    return [
        {"sum": float(row["a"]) + float(row["b"]), "count": int(row["a"] != 0) + int(row["b"] != 0)}
        for row in instances
    ]


_MODELS = {"half_plus_two": _half_plus_two, "pair": _pair}
# half_plus_two's Classify and Regress signatures: feature x -> 0.5 * x + 2.
_EXAMPLE_SIGNATURES = {"classify": "classify_x_to_y", "regress": "regress_x_to_y"}


def _feature_x(example: Any) -> float:
    value = example["x"]
    if isinstance(value, list):
        (value,) = value
    return 0.5 * float(value) + 2.0


class KServeV1:
    """The server: ``async with KServeV1() as server:`` then ``server.url``."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> KServeV1:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def metadata_requests(self) -> int:
        """How many requests asked for a model's metadata."""
        return sum(path.endswith("/metadata") for path in self.paths)

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.paths.append(path)
        prefix = "/v1/models/"
        name = path[len(prefix) :] if path.startswith(prefix) else ""
        if request.method == "POST" and name.endswith(":predict"):
            return await self._predict(name[: -len(":predict")], request)
        for method in _EXAMPLE_SIGNATURES:
            if request.method == "POST" and name == f"half_plus_two:{method}":
                return await self._examples(method, request)
        if request.method == "GET" and name in _MODELS:
            return web.json_response({"name": name, "ready": True})
        return web.json_response({"error": f"not found: {path}"}, status=404)

    async def _predict(self, name: str, request: web.Request) -> web.Response:
        model = _MODELS.get(name)
        if model is None:
            return web.json_response({"error": f"model {name} not found"}, status=404)
        try:
            doc = json.loads(await request.read())
        except ValueError as error:
            return web.json_response({"error": f"bad JSON: {error}"}, status=400)
        instances = doc.get("instances") if isinstance(doc, dict) else None
        if not isinstance(instances, list):
            return web.json_response(
                {"error": 'expected a JSON object with "instances" (a list)'}, status=400
            )
        try:
            predictions = model(instances)
        except (TypeError, ValueError, KeyError) as error:
            return web.json_response({"error": f"bad instances: {error}"}, status=400)
        return web.json_response({"predictions": predictions})

    async def _examples(self, method: str, request: web.Request) -> web.Response:
        try:
            doc = json.loads(await request.read())
            wanted = _EXAMPLE_SIGNATURES[method]
            if doc.get("signature_name", wanted) != wanted:
                missing = {"error": f"no signature {doc['signature_name']}"}
                return web.json_response(missing, status=400)
            values = [_feature_x(example) for example in doc["examples"]]
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            return web.json_response({"error": f"bad examples: {error!r}"}, status=400)
        if method == "classify":
            return web.json_response({"results": [[["", value]] for value in values]})
        return web.json_response({"results": values})
