"""pytest fixtures for testing code that calls TF Serving, loaded by pytest itself.

Installing tfs-async registers this module as a pytest plugin (the ``pytest11``
entry point): every test suite in that environment gets these fixtures with no
conftest and no import. Importing :mod:`tfs_async` alone never imports pytest.

Fixtures:

``tfs_models``
    What the server serves. The default is TF Serving's ``half_plus_two``
    (:func:`tfs_async.testing.half_plus_two.half_plus_two_model`: version 123,
    ``serving_default`` computes ``y = 0.5 * x + 2``). Override it in a test
    module or a conftest to return ``PythonModel`` / ``SavedModel`` objects, the
    path of a ``models.config`` file, or ``"package.module:function"`` naming an
    importable factory of models (the one form a child process can serve too).
``tfs_server``
    A running in-process :class:`~tfs_async.testing.ModelServer` over
    ``tfs_models`` on 127.0.0.1: ``grpc_target``, ``rest_url``, and ``faults``
    (a :class:`~tfs_async.testing.FaultPlan`, empty, for fault injection).
``tfs_client``
    An async :class:`tfs_async.Client` on ``tfs_server``, parametrized over both
    protocols: every test that uses it runs twice, with ids ``grpc`` and ``http``.
``tfs_server_process``
    The same models served by a child process (:class:`ServerProcess`), for
    tests that kill and restart the server. A synchronous fixture.
``tfs_sync_client``
    A :class:`tfs_async.SyncClient` on ``tfs_server_process``, for plain
    (non-async) tests: like ``tfs_client``, each test that uses it runs over
    gRPC and over HTTP. Needs no pytest-asyncio.

The async fixtures need pytest-asyncio (``pip install tfs-async[pytest]``) and
work in its strict and auto modes. ``tfs_models``, ``tfs_server`` and
``tfs_client`` are function-scoped; the ini option ``tfs_server_scope = session``
(or ``module``, ...) shares one server per session instead. The tests that use
it must then run in an event loop of that scope, e.g. with
``asyncio_default_test_loop_scope = session``, and an overriding
``tfs_models`` must have that scope too.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import signal
import sys
import types
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

if TYPE_CHECKING:
    from tfs_async.client import Client
    from tfs_async.sync import SyncClient
    from tfs_async.testing import ModelServer, ModelServerProcess, ModelSource

__all__ = ["PROTOCOLS", "SCOPE_OPTION", "ServerProcess"]

SCOPE_OPTION = "tfs_server_scope"
"""The ini option that sets the scope of ``tfs_models``, ``tfs_server`` and ``tfs_client``."""

PROTOCOLS = ("grpc", "http")
"""The parameters (and test ids) of ``tfs_client``."""

_Scope = Literal["function", "class", "module", "package", "session"]
_SCOPES: tuple[_Scope, ...] = ("function", "class", "module", "package", "session")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_DEFAULT_FACTORY = "tfs_async.testing.half_plus_two:half_plus_two_model"
_EXPECTED = (
    "a list of tfs_async.testing.PythonModel / SavedModel objects, the path of a "
    "models.config file, or 'package.module:function' naming an importable factory of models"
)
# Seconds any one start or stop of a fixture's server or client may take.
_STEP_TIMEOUT = 60.0

_SCOPE_KEY = pytest.StashKey[str]()
_MISMATCH_KEY = pytest.StashKey[str]()

# Models made by the default ``tfs_models``: a child process builds them from _DEFAULT_FACTORY.
_DEFAULT_MODELS: weakref.WeakSet[object] = weakref.WeakSet()


# -- what tfs_models returned ------------------------------------------------


@dataclass
class _Models:
    sources: list[ModelSource] = field(default_factory=list)
    config_file: Path | None = None
    factories: list[str] = field(default_factory=list)


def _bad_models(value: object, detail: str = "") -> TypeError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return TypeError(
        f"fixture 'tfs_models' returned {shown} ({type(value).__name__}){detail}; "
        f"expected {_EXPECTED}"
    )


def _resolve_models(value: object) -> _Models:
    """Check and sort what ``tfs_models`` returned; a clear error for anything else."""
    __tracebackhide__ = True
    from tfs_async.testing import ModelSource

    if inspect.iscoroutine(value) or inspect.isasyncgen(value):
        if inspect.iscoroutine(value):
            value.close()  # so that Python does not warn about it
        raise _bad_models(
            value,
            ": an async tfs_models needs @pytest_asyncio.fixture under asyncio_mode=strict",
        )
    items: list[object]
    if isinstance(value, (ModelSource, str, os.PathLike)):
        items = [value]
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        items = list(value)
    else:
        raise _bad_models(value)
    out = _Models()
    for item in items:
        if isinstance(item, ModelSource):
            out.sources.append(item)
            continue
        if isinstance(item, str) and _FACTORY.match(item) and not os.path.exists(item):
            out.factories.append(item)
            continue
        if not isinstance(item, (str, os.PathLike)):
            raise _bad_models(value, f": item {item!r} is a {type(item).__name__}")
        path = Path(item)
        if not path.is_file():
            raise _bad_models(value, f": {str(path)!r} is not a models.config file")
        if out.config_file is not None:
            raise _bad_models(value, ": it names two models.config files")
        out.config_file = path
    return out


def _load_factory(spec: str) -> list[ModelSource]:
    """The models an importable factory ``package.module:function`` makes, or why not."""
    __tracebackhide__ = True
    from tfs_async.testing.cli import load_python_models

    try:
        return load_python_models(spec)
    except Exception as exc:
        raise _bad_models(spec, f": calling it failed with {type(exc).__name__}: {exc}") from exc


def _in_process_sources(models: _Models) -> list[ModelSource]:
    __tracebackhide__ = True
    sources = list(models.sources)
    for spec in models.factories:
        sources.extend(_load_factory(spec))
    return sources


def _process_options(models: _Models, workdir: Path) -> dict[str, Any]:
    """``ModelServerProcess`` options serving ``models``: what can cross a process boundary."""
    __tracebackhide__ = True
    from tfs_async.testing import SavedModel

    factories = list(models.factories)
    for spec in factories:
        _load_factory(spec)  # fail here, clearly, rather than in the child
    saved: list[SavedModel] = []
    for source in models.sources:
        if source in _DEFAULT_MODELS:
            factories.append(_DEFAULT_FACTORY)
        elif isinstance(source, SavedModel) and not source.functions:
            saved.append(source)
        else:
            what = "a SavedModel with Python functions" if isinstance(source, SavedModel) else ""
            raise TypeError(
                f"fixture 'tfs_models' returned {source!r}{' (' + what + ')' if what else ''}, "
                "which tfs_server_process cannot hand to a child process: Python objects do "
                "not cross process boundaries. Return 'package.module:function' naming an "
                "importable factory of it, or a models.config path, instead"
            )
    options: dict[str, Any] = {"python_models": factories}
    if saved and models.config_file is not None:
        raise TypeError(
            "fixture 'tfs_models' returned both a models.config file and SavedModel objects; "
            "tfs_server_process can serve one or the other: list the SavedModels in the file"
        )
    if saved:
        entries = " ".join(
            f"config {{ name: {_quote(s.name)} base_path: {_quote(str(s.base_path.resolve()))} "
            'model_platform: "tensorflow" }'
            for s in saved
        )
        config = workdir / "models.config"
        config.write_text(f"model_config_list {{ {entries} }}\n")
        options["model_config_file"] = config
    elif models.config_file is not None:
        options["model_config_file"] = models.config_file
    return options


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _child_env() -> dict[str, str]:
    """This process's environment, with its import path, so the child imports what tests can."""
    env = dict(os.environ)
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


# -- the child-process server -------------------------------------------------


class ServerProcess:
    """The emulator in a child process that a test can kill and restart on the same ports.

    ``tfs_server_process`` yields one, started. Each start runs a new
    :class:`~tfs_async.testing.ModelServerProcess` (:attr:`process`); after the
    first, the ports stay the same, so clients can keep their target.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._ports: tuple[int | None, int | None] | None = None
        self.process: ModelServerProcess | None = None
        """The current child (``None`` before the first start)."""

    @property
    def grpc_target(self) -> str:
        """``host:port`` of the gRPC listener (the same across restarts)."""
        return f"127.0.0.1:{self._port(0)}"

    @property
    def rest_url(self) -> str:
        """``http://host:port`` of the REST listener (the same across restarts)."""
        return f"http://127.0.0.1:{self._port(1)}"

    @property
    def pid(self) -> int | None:
        """The process id of the current child, ``None`` when none runs."""
        return self.process.pid if self.process is not None and self.process.running else None

    @property
    def running(self) -> bool:
        """True while a child runs."""
        return self.process is not None and self.process.running

    def start(self) -> None:
        """Start a child and wait until it serves (on the previous ports after the first)."""
        from tfs_async.testing import ModelServerProcess

        if self.running:
            raise RuntimeError("the server process is already running")
        if self.process is not None:
            self.process.stop()  # reap a killed child
        grpc_port, rest_port = self._ports if self._ports is not None else (0, 0)
        process = ModelServerProcess(
            grpc_port=grpc_port, rest_port=rest_port, env=_child_env(), **self._options
        )
        process.start()
        self.process = process
        self._ports = (process.grpc_port, process.rest_port)

    def stop(self) -> int | None:
        """Stop the child (SIGTERM, then SIGKILL after 10 s); returns its exit status."""
        return self.process.stop() if self.process is not None else None

    def kill(self) -> int | None:
        """SIGKILL the child, as a crash would, and reap it; returns its exit status."""
        if self.process is None:
            return None
        if self.process.pid is not None and self.process.running:
            os.kill(self.process.pid, signal.SIGKILL)
        return self.process.stop()

    def restart(self) -> None:
        """Stop the child if it runs, then start a new one on the same ports."""
        self.stop()
        self.start()

    async def astart(self) -> None:
        """:meth:`start` without blocking the event loop."""
        await asyncio.to_thread(self.start)

    async def arestart(self) -> None:
        """:meth:`restart` without blocking the event loop."""
        await asyncio.to_thread(self.restart)

    def _port(self, index: int) -> int:
        port = self._ports[index] if self._ports is not None else None
        if port is None:
            raise RuntimeError("the server process has not started")
        return port

    def __repr__(self) -> str:
        return f"ServerProcess(pid={self.pid}, ports={self._ports})"


# -- fixtures ----------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        SCOPE_OPTION,
        help="scope of tfs_models, tfs_server and tfs_client (function, module, session, ...)",
        default="function",
    )


def pytest_configure(config: pytest.Config) -> None:
    text = str(config.getini(SCOPE_OPTION)).strip() or "function"
    if text not in _SCOPES:
        choices = ", ".join(_SCOPES)
        raise pytest.UsageError(
            f"{SCOPE_OPTION} = {text!r} is not a pytest scope; expected one of {choices}"
        )
    scope = text
    problem = _asyncio_problem(config)
    made = _async_fixtures(scope) if problem is None else _no_asyncio_fixtures(scope, problem)
    # pytest reads fixtures from a registered module: one made for this scope.
    fixtures = types.ModuleType("tfs_async.pytest_plugin.fixtures", "tfs_async's pytest fixtures")
    for name, fixture in made.items():
        setattr(fixtures, name, fixture)
    config.pluginmanager.register(fixtures, "tfs_async-fixtures")
    if problem is None:
        config.stash[_SCOPE_KEY] = scope


_MIN_PYTEST_ASYNCIO = (1, 0)


def _asyncio_problem(config: pytest.Config) -> str | None:
    """Why the async fixtures cannot run here, or None when pytest-asyncio is ready."""
    from importlib.metadata import PackageNotFoundError, version

    if not config.pluginmanager.has_plugin("asyncio"):
        return "the pytest-asyncio plugin, which is not installed or was disabled (-p no:asyncio)"
    try:
        found = version("pytest-asyncio")
    except PackageNotFoundError:  # a plugin named asyncio, but not pytest-asyncio
        return "the pytest-asyncio plugin, which is not installed"
    numbers = tuple(int(part) for part in re.findall(r"\d+", found)[:2])
    if numbers < _MIN_PYTEST_ASYNCIO:
        wanted = ".".join(map(str, _MIN_PYTEST_ASYNCIO))
        return f"pytest-asyncio >= {wanted}, but {found} is installed"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of a shared server must run in its event loop: say so instead of hanging."""
    scope = config.stash.get(_SCOPE_KEY, "function")
    if scope == "function":
        return
    default = config.getini("asyncio_default_test_loop_scope") or "function"
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if not names & {"tfs_server", "tfs_client"}:
            continue
        if not inspect.iscoroutinefunction(getattr(item, "obj", None)):
            continue
        marker = item.get_closest_marker("asyncio")
        kwargs = marker.kwargs if marker is not None else {}
        loop_scope = kwargs.get("loop_scope") or kwargs.get("scope") or default
        if loop_scope in _SCOPES and _SCOPES.index(loop_scope) < _SCOPES.index(scope):
            item.stash[_MISMATCH_KEY] = (
                f"{item.nodeid} uses tfs_server with {SCOPE_OPTION} = {scope} but runs in a "
                f"{loop_scope}-scoped event loop; run it in the server's loop: set "
                f"asyncio_default_test_loop_scope = {scope} or mark it "
                f'@pytest.mark.asyncio(loop_scope="{scope}")'
            )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    message = item.stash.get(_MISMATCH_KEY, None)
    if message is not None:
        pytest.fail(message, pytrace=False)


def _loop_scope(scope: _Scope) -> _Scope | None:
    # Function scope follows the suite's own default for async fixtures; a shared
    # server needs a loop that lives as long as it does.
    return None if scope == "function" else scope


def _tfs_models() -> list[ModelSource]:
    """What ``tfs_server`` and ``tfs_server_process`` serve: TF Serving's half_plus_two.

    Override this fixture (same name, in a test module or conftest) to return
    ``PythonModel`` / ``SavedModel`` objects, the path of a ``models.config``
    file, or ``"package.module:function"`` naming an importable factory.
    """
    from tfs_async.testing.half_plus_two import half_plus_two_model

    model = half_plus_two_model()
    _DEFAULT_MODELS.add(model)
    return [model]


def _tfs_server_process(
    tfs_models: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """``tfs_models`` served by a child process (:class:`ServerProcess`): ``grpc_target``,
    ``rest_url``, ``kill()``, ``restart()`` / ``await arestart()`` on the same ports.

    ``PythonModel`` objects cannot cross into the child: use a
    ``"package.module:function"`` factory, a ``models.config`` path or ``SavedModel``
    objects without Python functions. The child sees this process's ``sys.path``.
    """
    options = _process_options(
        _resolve_models(tfs_models), tmp_path_factory.mktemp("tfs_server_process")
    )
    server = ServerProcess(**options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _tfs_sync_client(
    request: pytest.FixtureRequest, tfs_server_process: ServerProcess
) -> Iterator[SyncClient]:
    """A ``tfs_async.SyncClient`` on ``tfs_server_process``; each test that uses it runs
    over gRPC and over HTTP (test ids ``grpc``, ``http``). Client defaults apply.
    """
    from tfs_async.sync import SyncClient

    if request.param == "grpc":
        client = SyncClient(f"grpc://{tfs_server_process.grpc_target}")
    else:
        client = SyncClient(tfs_server_process.rest_url)
    try:
        yield client
    finally:
        client.close()


def _common_fixtures(scope: _Scope) -> dict[str, Any]:
    """The fixtures that need no event loop of pytest-asyncio's."""
    return {
        "tfs_models": pytest.fixture(_tfs_models, scope=scope, name="tfs_models"),
        "tfs_server_process": pytest.fixture(_tfs_server_process, name="tfs_server_process"),
        "tfs_sync_client": pytest.fixture(
            _tfs_sync_client, name="tfs_sync_client", params=PROTOCOLS, ids=PROTOCOLS
        ),
    }


def _async_fixtures(scope: _Scope) -> dict[str, Any]:
    """The fixtures, made for one scope once pytest's configuration is known."""
    import pytest_asyncio

    loop_scope = _loop_scope(scope)

    @pytest_asyncio.fixture(scope=scope, loop_scope=loop_scope)
    async def tfs_server(tfs_models: object) -> AsyncIterator[ModelServer]:
        """A running in-process ``ModelServer`` over ``tfs_models`` on 127.0.0.1:
        ``grpc_target``, ``rest_url``, ``faults`` (an empty ``FaultPlan`` to add rules to).
        """
        from tfs_async.testing import FaultPlan, ModelServer

        models = _resolve_models(tfs_models)
        server = ModelServer(
            _in_process_sources(models),
            model_config_file=models.config_file,
            faults=FaultPlan(),
        )
        await asyncio.wait_for(server.start(), _STEP_TIMEOUT)
        try:
            yield server
        finally:
            await asyncio.wait_for(server.stop(), _STEP_TIMEOUT)

    @pytest_asyncio.fixture(scope=scope, loop_scope=loop_scope, params=PROTOCOLS, ids=PROTOCOLS)
    async def tfs_client(
        request: pytest.FixtureRequest, tfs_server: ModelServer
    ) -> AsyncIterator[Client]:
        """An async ``tfs_async.Client`` on ``tfs_server``; each test that uses it runs
        over gRPC and over HTTP (test ids ``grpc``, ``http``). Client defaults apply.
        """
        from tfs_async import Client

        if request.param == "grpc":
            client = Client(f"grpc://{tfs_server.grpc_target}")
        else:
            client = Client(tfs_server.rest_url)
        try:
            yield client
        finally:
            await asyncio.wait_for(client.close(), _STEP_TIMEOUT)

    return {**_common_fixtures(scope), "tfs_server": tfs_server, "tfs_client": tfs_client}


def _no_asyncio_fixtures(scope: _Scope, problem: str) -> dict[str, Any]:
    """Without a usable pytest-asyncio: the async fixtures fail with what to install."""

    def missing(name: str) -> None:
        pytest.fail(
            f"fixture {name!r} is async and needs {problem}: pip install 'tfs-async[pytest]'",
            pytrace=False,
        )

    @pytest.fixture(scope=scope)
    def tfs_server() -> None:
        """Needs pytest-asyncio (``pip install 'tfs-async[pytest]'``)."""
        missing("tfs_server")

    @pytest.fixture(scope=scope, params=PROTOCOLS, ids=PROTOCOLS)
    def tfs_client() -> None:
        """Needs pytest-asyncio (``pip install 'tfs-async[pytest]'``)."""
        missing("tfs_client")

    return {**_common_fixtures(scope), "tfs_server": tfs_server, "tfs_client": tfs_client}
