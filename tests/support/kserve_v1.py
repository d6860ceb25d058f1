"""A tiny REST model server in the style of KServe's v1 protocol, for the tests.

It speaks TF Serving's REST predict API in its row form only and has no metadata
route, like KServe's v1 data plane, several model servers' "TFS-compatible"
endpoints and API gateways that expose only ``:predict``:

* ``POST /v1/models/{name}:predict`` with ``{"instances": [...]}`` answers
  ``{"predictions": [...]}``; a body without ``instances`` gets 400.
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
