"""ServerCore's versions: policies, labels, states while loading/unloading, reload and polling."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.serving import STEP, add_sig, call_status, predict_request, raises, versioned
from tfs_async._proto import model_management_pb2, model_server_config_pb2
from tfs_async.config import format_model_server_config, model_config, model_server_config
from tfs_async.errors import StatusCode
from tfs_async.testing.models import PythonModel
from tfs_async.testing.serving import ServerCore
from tfs_async.testing.status import ServingStatus
from tfs_async.types import VersionState

A, L, U, E = (
    VersionState.AVAILABLE,
    VersionState.LOADING,
    VersionState.UNLOADING,
    VersionState.END,
)


def reload_request(
    *configs: model_server_config_pb2.ModelConfig,
) -> model_management_pb2.ReloadConfigRequest:
    return model_management_pb2.ReloadConfigRequest(config=model_server_config(configs))


async def started(core: ServerCore) -> ServerCore:
    await asyncio.wait_for(core.start(), STEP)
    return core


async def served_version(core: ServerCore, name: str, **spec: object) -> int:
    resp = await asyncio.wait_for(core.predict(predict_request(name, **spec)), STEP)  # type: ignore[arg-type]
    return resp.model_spec.version.value


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({}, [3]),
        ({"latest": 2}, [3, 2]),
        ({"all_versions": True}, [3, 2, 1]),
        ({"versions": [1, 3, 9]}, [3, 1]),
    ],
    ids=["default-latest-1", "latest-2", "all", "specific"],
)
async def test_version_policies(policy: dict[str, Any], expected: list[int]) -> None:
    core = await started(
        ServerCore(
            [versioned("m", (1, 2, 3))], config=model_server_config([model_config("m", **policy)])
        )
    )
    try:
        assert await call_status(core, "m") == [(v, A) for v in expected]
        assert await served_version(core, "m") == expected[0]
    finally:
        await core.stop()


async def test_two_versions_reference_model_specific_policy(models_dir: Path) -> None:
    cfg = model_config(
        "hpt", str(models_dir / "saved_model_half_plus_two_2_versions"), versions=[123, 124]
    )
    core = await started(ServerCore(config=model_server_config([cfg])))
    try:
        assert await call_status(core, "hpt") == [(124, A), (123, A)]
        assert await served_version(core, "hpt") == 124
        assert await served_version(core, "hpt", version=123) == 123
        assert await call_status(core, "hpt", 123) == [(123, A)]
    finally:
        await core.stop()


async def test_labels_resolve_and_unknown_label_is_invalid_argument() -> None:
    plain = model_config("m", all_versions=True)
    core = await started(ServerCore([versioned("m", (1, 2))], config=model_server_config([plain])))
    try:
        # TF's procedure: load the versions, then label them in a second reload.
        cfg = model_config("m", all_versions=True, labels={"stable": 1, "canary": 2})
        await asyncio.wait_for(core.reload_config(reload_request(cfg)), STEP)
        assert await served_version(core, "m", label="stable") == 1
        assert await served_version(core, "m", label="canary") == 2
        err = await raises(core.predict(predict_request("m", label="beta")))
        assert (err.code, err.message) == (
            StatusCode.INVALID_ARGUMENT,
            "Unrecognized servable version label: beta",
        )
        err = await raises(core.predict(predict_request("other", label="stable")))
        assert err.code == StatusCode.INVALID_ARGUMENT
    finally:
        await core.stop()


async def test_label_on_unavailable_version_fails_and_keeps_previous_config() -> None:
    first = model_config("m", versions=[1])
    core = await started(ServerCore([versioned("m", (1, 2))], config=model_server_config([first])))
    try:
        stable = model_config("m", versions=[1], labels={"stable": 1})
        await asyncio.wait_for(core.reload_config(reload_request(stable)), STEP)
        before = core.config
        err = await raises(
            core.reload_config(
                reload_request(model_config("m", versions=[1, 2], labels={"canary": 2}))
            )
        )
        assert (err.code, err.message) == (
            StatusCode.FAILED_PRECONDITION,
            "Request to assign label to version 2 of model m, which is not currently "
            "available for inference",
        )
        assert core.config == before
        assert await call_status(core, "m") == [(1, A)]
        assert await served_version(core, "m", label="stable") == 1
        # TF's procedure: load the version first, then label it in a second reload.
        await asyncio.wait_for(
            core.reload_config(reload_request(model_config("m", versions=[1, 2]))), STEP
        )
        await core.wait_idle(STEP)
        ok = await asyncio.wait_for(
            core.reload_config(
                reload_request(model_config("m", versions=[1, 2], labels={"canary": 2}))
            ),
            STEP,
        )
        assert ok.status.error_code == 0
        assert await served_version(core, "m", label="canary") == 2
    finally:
        await core.stop()


async def test_labels_for_unavailable_versions_when_allowed() -> None:
    cfg = model_config("m", versions=[1], labels={"next": 5})
    core = await started(
        ServerCore(
            [versioned("m", (1,))],
            config=model_server_config([cfg]),
            allow_version_labels_for_unavailable_models=True,
        )
    )
    try:
        err = await raises(core.predict(predict_request("m", label="next")))
        assert (err.code, err.message) == (
            StatusCode.NOT_FOUND,
            "Servable not found for request: Specific(m, 5)",
        )
    finally:
        await core.stop()


async def test_new_version_is_loading_then_available_then_old_unloads() -> None:
    core = await started(
        ServerCore(
            [versioned("m", (1, 2))], config=model_server_config([model_config("m", versions=[1])])
        )
    )
    try:
        load_gate = core.hold_loading("m", 2)
        unload_gate = core.hold_unloading("m", 1)
        await asyncio.wait_for(
            core.reload_config(reload_request(model_config("m", versions=[2]))), STEP
        )
        await load_gate.wait_reached(STEP)
        assert await call_status(core, "m") == [(2, L), (1, A)]
        err = await raises(core.predict(predict_request("m", version=2)))
        assert err.message == "Servable not found for request: Specific(m, 2)"
        assert await served_version(core, "m") == 1  # the old version serves meanwhile
        load_gate.release()
        await unload_gate.wait_reached(STEP)
        assert await call_status(core, "m") == [(2, A), (1, U)]
        assert await served_version(core, "m") == 2
        unload_gate.release()
        await core.wait_idle(STEP)
        assert await call_status(core, "m") == [(2, A), (1, E)]
        err = await raises(core.predict(predict_request("m", version=1)))
        assert err.code == StatusCode.NOT_FOUND
    finally:
        await core.stop()


async def test_added_model_is_not_found_while_loading_and_reload_waits_for_it() -> None:
    core = await started(
        ServerCore(
            [versioned("m", (1,)), versioned("n", (1,))],
            config=model_server_config([model_config("m")]),
        )
    )
    try:
        gate = core.hold_loading("n")
        reload = asyncio.create_task(
            core.reload_config(reload_request(model_config("m"), model_config("n")))
        )
        await gate.wait_reached(STEP)
        assert await call_status(core, "n") == [(1, L)]
        err = await raises(core.predict(predict_request("n")))
        assert (err.code, err.message) == (
            StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(n)",
        )
        assert not reload.done()
        gate.release()
        await asyncio.wait_for(reload, STEP)
        assert await served_version(core, "n") == 1
    finally:
        await core.stop()


async def test_removed_model_unloads_to_end() -> None:
    core = await started(ServerCore([versioned("m", (1,)), versioned("n", (1,))]))
    try:
        gate = core.hold_unloading("n")
        await asyncio.wait_for(core.reload_config(reload_request(model_config("m"))), STEP)
        await gate.wait_reached(STEP)
        assert await call_status(core, "n") == [(1, U)]
        gate.release()
        await core.wait_idle(STEP)
        assert await call_status(core, "n") == [(1, E)]
        err = await raises(core.predict(predict_request("n")))
        assert err.message == "Servable not found for request: Latest(n)"
        assert await served_version(core, "m") == 1
    finally:
        await core.stop()


async def test_failed_load_shows_end_with_error_status() -> None:
    model = PythonModel(
        "m", versions={1: {"serving_default": add_sig(1)}}, fail_versions={2: "bad graph"}
    )
    core = await started(ServerCore([model]))
    try:
        status = await call_status(core, "m")
        assert status == [(2, E), (1, A)]
        from tfs_async._proto import get_model_status_pb2

        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = "m"
        req.model_spec.version.value = 2
        resp = await core.get_model_status(req)
        assert int(resp.model_version_status[0].status.error_code) == StatusCode.UNKNOWN
        assert resp.model_version_status[0].status.error_message == "bad graph"
        assert await served_version(core, "m") == 1
    finally:
        await core.stop()


@pytest.mark.parametrize(
    ("configs", "code", "text"),
    [
        (
            [model_config("x")],
            StatusCode.INVALID_ARGUMENT,
            "Expected model x to have an absolute path or URI; got base_path()=",
        ),
        (
            [model_config("x", "models/x")],
            StatusCode.INVALID_ARGUMENT,
            "Expected model x to have an absolute path or URI; got base_path()=models/x",
        ),
        ([model_config("x", "/no/such/dir")], StatusCode.NOT_FOUND, "Could not find base path"),
        ([model_config("m"), model_config("m")], StatusCode.INVALID_ARGUMENT, "multiple times"),
        (
            [model_config("m"), model_config("m", platform="pytorch")],
            StatusCode.INVALID_ARGUMENT,
            "Illegal to list model m multiple times in config list",
        ),
        (
            [model_config("m", platform="pytorch")],
            StatusCode.INVALID_ARGUMENT,
            "Illegal to change a model's platform. For model m platform was tensorflow and "
            "new platform requested is pytorch",
        ),
        (
            [model_config("n", "/models/n", platform="pytorch")],
            StatusCode.INVALID_ARGUMENT,
            "Model n requests unsupported platform pytorch",
        ),
        (
            [model_config("n", "/models/n", labels={"x": 1})],
            StatusCode.FAILED_PRECONDITION,
            "Request to assign label to version 1 of model n, which is not currently "
            "available for inference",
        ),
    ],
    ids=[
        "missing-base-path",
        "relative-base-path",
        "nonexistent-base-path",
        "duplicate-model",
        "duplicate-before-platform",
        "platform-change",
        "unsupported-platform",
        "label-before-base-path",
    ],
)
async def test_config_errors_keep_previous_config(
    configs: list[model_server_config_pb2.ModelConfig], code: StatusCode, text: str
) -> None:
    core = await started(ServerCore([versioned("m", (1,))]))
    try:
        before = core.config
        err = await raises(core.reload_config(reload_request(*configs)))
        assert err.code == code
        assert text in err.message
        assert core.config == before
        assert await served_version(core, "m") == 1
    finally:
        await core.stop()


async def test_config_file_poll_applies_changes_and_survives_bad_syntax(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text(format_model_server_config(model_server_config([model_config("m")])))
    core = await started(
        ServerCore([versioned("m", (1,)), versioned("n", (1, 2))], config_file=path)
    )
    try:
        err = await raises(core.predict(predict_request("n")))
        assert err.code == StatusCode.NOT_FOUND
        path.write_text(
            format_model_server_config(
                model_server_config([model_config("m"), model_config("n", all_versions=True)])
            )
        )
        await asyncio.wait_for(core.poll_config_file(), STEP)
        assert await served_version(core, "n") == 2
        path.write_text("model_config_list { config { name: 'n' ")
        with pytest.raises(ServingStatus) as info:
            await asyncio.wait_for(core.poll_config_file(), STEP)
        assert info.value.code == StatusCode.INVALID_ARGUMENT
        assert "line" in info.value.message
        assert core.last_poll_error is info.value
        assert await served_version(core, "n") == 2
    finally:
        await core.stop()


async def test_new_version_directory_is_picked_up_by_refresh() -> None:
    model = versioned("m", (1,))
    core = await started(ServerCore([model], config=model_server_config([model_config("m")])))
    try:
        model.add_version(2, {"serving_default": add_sig(2)})
        await asyncio.wait_for(core.refresh(), STEP)
        await core.wait_idle(STEP)
        assert await call_status(core, "m") == [(2, A), (1, E)]
        assert await served_version(core, "m") == 2
    finally:
        await core.stop()


async def test_config_file_with_reference_saved_models(tmp_path: Path, models_dir: Path) -> None:
    base = models_dir / "saved_model_half_plus_two_2_versions"
    path = tmp_path / "models.config"
    path.write_text(
        f"model_config_list {{ config {{ name: 'din' base_path: '{base}'\n"
        "  model_platform: 'tensorflow'\n"
        "  model_version_policy { specific { versions: 123 versions: 124 } }\n"
        "  version_labels { key: 'canary' value: 123 }\n"
        "  version_labels { key: 'stable' value: 124 } } }"
    )
    # Labels in the first config name versions that are not loaded yet: TF needs the flag.
    core = ServerCore(config_file=path, allow_version_labels_for_unavailable_models=True)
    await started(core)
    try:
        resp = await asyncio.wait_for(
            core.predict(predict_request("din", [2.0], label="canary")), STEP
        )
        assert (resp.model_spec.version.value, list(resp.outputs["y"].float_val)) == (123, [3.0])
        assert await served_version(core, "din", label="stable") == 124
    finally:
        await core.stop()


async def test_new_model_label_on_version_it_will_not_load_is_rejected() -> None:
    models = [versioned("m", (1,)), versioned("n", (1, 2))]
    core = await started(ServerCore(models, config=model_server_config([model_config("m")])))
    try:
        before = core.config
        err = await raises(
            core.reload_config(
                reload_request(model_config("m"), model_config("n", versions=[1], labels={"x": 2}))
            )
        )
        assert err.code == StatusCode.FAILED_PRECONDITION
        assert "version 2 of model n" in err.message
        assert core.config == before
    finally:
        await core.stop()


async def test_label_on_new_model_needs_the_flag_and_changes_nothing() -> None:
    core = await started(
        ServerCore(
            [versioned("m", (1,)), versioned("n", (1, 2))],
            config=model_server_config([model_config("m")]),
        )
    )
    try:
        before = core.config
        cfg = model_config("n", all_versions=True, labels={"stable": 2})
        err = await raises(core.reload_config(reload_request(model_config("m"), cfg)))
        assert (err.code, err.message) == (
            StatusCode.FAILED_PRECONDITION,
            "Request to assign label to version 2 of model n, which is not currently "
            "available for inference",
        )
        assert core.config == before
        await core.wait_idle(STEP)
        not_served = await raises(core.predict(predict_request("n")))
        assert not_served.code == StatusCode.NOT_FOUND
        assert await served_version(core, "m") == 1
    finally:
        await core.stop()


async def test_allowed_label_on_unavailable_version_cannot_be_moved_to_another() -> None:
    core = await started(
        ServerCore(
            [versioned("m", (1, 2, 3))],
            config=model_server_config([model_config("m", versions=[1], labels={"next": 2})]),
            allow_version_labels_for_unavailable_models=True,
        )
    )
    try:
        # Keeping the label where it is, or adding a new one, is allowed while unavailable.
        keep = model_config("m", versions=[1], labels={"next": 2, "later": 3})
        await asyncio.wait_for(core.reload_config(reload_request(keep)), STEP)
        # Moving an existing label needs its new version AVAILABLE (server_core.cc).
        move = model_config("m", versions=[1], labels={"next": 3, "later": 3})
        err = await raises(core.reload_config(reload_request(move)))
        assert (err.code, err.message) == (
            StatusCode.FAILED_PRECONDITION,
            "Request to assign label to version 3 of model m, which is not currently "
            "available for inference",
        )
        to_available = model_config("m", versions=[1], labels={"next": 1, "later": 3})
        await asyncio.wait_for(core.reload_config(reload_request(to_available)), STEP)
        assert await served_version(core, "m", label="next") == 1
    finally:
        await core.stop()


async def test_periodic_file_system_poll_picks_up_new_versions() -> None:
    model = versioned("m", (1,))
    core = ServerCore(
        [model], config=model_server_config([model_config("m")]), file_system_poll_wait_seconds=0.01
    )
    await started(core)
    try:
        gate = core.hold_loading("m", 2)
        model.add_version(2, {"serving_default": add_sig(2)})
        # The poller finds version 2 on its own; the gate tells us when it started loading.
        await gate.wait_reached(STEP)
        gate.release()
        await core.wait_idle(STEP)
        assert await served_version(core, "m") == 2
    finally:
        await core.stop()
