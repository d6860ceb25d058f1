"""ServerCore called directly: Python models, versions, labels, errors, deadlines, serialization."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from tests.support.serving import (
    STEP,
    add_sig,
    call_status,
    examples,
    predict_request,
    raises,
    versioned,
)
from tfs_async._proto import (
    classification_pb2,
    example_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    predict_pb2,
    regression_pb2,
    types_pb2,
)
from tfs_async.codec.tensor import decode_tensor
from tfs_async.config import model_config, model_server_config
from tfs_async.errors import StatusCode
from tfs_async.testing.models import (
    PythonModel,
    classify_signature,
    parse_examples,
    regress_signature,
    signature,
)
from tfs_async.testing.serving import ServerCore
from tfs_async.types import VersionState


@pytest_asyncio.fixture
async def core() -> AsyncIterator[ServerCore]:
    """Model "m" versions 1, 2 (all served) with a classify, a regress and a predict signature."""

    def classify(t: dict[str, Any]) -> dict[str, Any]:
        x = parse_examples(t["inputs"], {"x": np.float32})["x"]
        labels = np.array([[b"low", b"high"]] * len(x), dtype=object)
        return {"classes": labels, "scores": np.concatenate([1 - x, x], axis=1)}

    def regress(t: dict[str, Any]) -> dict[str, Any]:
        return {"outputs": parse_examples(t["inputs"], {"x": np.float32})["x"] * 10}

    sigs = {
        "serving_default": add_sig(0.5),
        "classify": classify_signature(classify),
        "regress": regress_signature(regress),
    }
    srv = ServerCore([PythonModel("m", versions={1: sigs, 2: sigs})])
    await asyncio.wait_for(srv.start(), STEP)
    yield srv
    await asyncio.wait_for(srv.stop(), STEP)


# ---------------------------------------------------------------- predict


async def test_predict_answers_with_typed_fields_and_echoes_resolved_spec(core: ServerCore) -> None:
    resp = await asyncio.wait_for(core.predict(predict_request("m", [1.0, 2.0])), STEP)
    assert list(resp.outputs["y"].float_val) == [1.5, 2.5]
    assert resp.outputs["y"].tensor_content == b""
    assert [d.size for d in resp.outputs["y"].tensor_shape.dim] == [2]
    assert resp.model_spec.name == "m"
    assert resp.model_spec.version.value == 2
    assert resp.model_spec.signature_name == "serving_default"


async def test_tensor_content_switch_and_per_call_override() -> None:
    srv = ServerCore([versioned("m", (1,))], tensor_content=True)
    await asyncio.wait_for(srv.start(), STEP)
    try:
        resp = await asyncio.wait_for(srv.predict(predict_request("m", [1.0, 2.0])), STEP)
        assert resp.outputs["y"].tensor_content
        assert not resp.outputs["y"].float_val
        np.testing.assert_array_equal(decode_tensor(resp.outputs["y"]), [2.0, 3.0])
        typed = await asyncio.wait_for(
            srv.predict(predict_request("m", [1.0]), tensor_content=False), STEP
        )
        assert list(typed.outputs["y"].float_val) == [2.0]
    finally:
        await srv.stop()


async def test_specific_version_and_unknown_version(core: ServerCore) -> None:
    resp = await asyncio.wait_for(core.predict(predict_request("m", version=1)), STEP)
    assert resp.model_spec.version.value == 1
    err = await raises(core.predict(predict_request("m", version=7)))
    assert (err.code, err.message) == (
        StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(m, 7)",
    )


async def test_missing_and_empty_model_spec(core: ServerCore) -> None:
    for call in (
        core.predict(predict_pb2.PredictRequest()),
        core.classify(classification_pb2.ClassificationRequest()),
        core.regress(regression_pb2.RegressionRequest()),
        core.get_model_status(get_model_status_pb2.GetModelStatusRequest()),
    ):
        err = await raises(call)
        assert (err.code, err.message) == (StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    err = await raises(core.predict(predict_request("")))
    assert (err.code, err.message) == (
        StatusCode.INVALID_ARGUMENT,
        "ModelSpec has no name specified.",
    )


async def test_unknown_signature_and_output_filter_errors(core: ServerCore) -> None:
    err = await raises(core.predict(predict_request("m", signature_name="nope")))
    assert (err.code, err.message) == (
        StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    )
    err = await raises(core.predict(predict_request("m", output_filter=("y", "y"))))
    assert (err.code, err.message) == (
        StatusCode.INVALID_ARGUMENT,
        "duplicate output tensor alias: y",
    )
    err = await raises(core.predict(predict_request("m", output_filter=("z",))))
    assert err.message == (
        "output tensor alias not found in signature: z Outputs expected to be in the set {y}."
    )


@pytest.mark.parametrize(
    ("sent", "text"), [(types_pb2.DT_DOUBLE, "double"), (999, "unknown dtype enum (999)")]
)
async def test_input_dtype_mismatch_names_both_dtypes_as_tf_does(
    core: ServerCore, sent: int, text: str
) -> None:
    req = predict_request("m")
    req.inputs["x"].dtype = sent  # type: ignore[assignment]
    err = await raises(core.predict(req))
    assert (err.code, err.message) == (
        StatusCode.INVALID_ARGUMENT,
        f"Expects arg[0] to be float but {text} is provided",
    )


async def test_input_alias_mismatch_message(core: ServerCore) -> None:
    req = predict_request("m")
    req.inputs["a"].CopyFrom(req.inputs["x"])
    del req.inputs["x"]
    req.inputs["b"].CopyFrom(req.inputs["a"])
    err = await raises(core.predict(req))
    assert err.code == StatusCode.INVALID_ARGUMENT
    assert err.message == (
        "input size does not match signature: 2!=1 len({a,b}) != len({x}). "
        "Sent extra: {a,b}. Missing but required: {x}."
    )


async def test_model_function_errors_are_internal_and_name_the_model() -> None:
    def broken(t: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("kaput")

    sigs = {
        "serving_default": signature(broken, inputs={"x": "DT_FLOAT"}, outputs={"y": "DT_FLOAT"}),
        "missing": signature(lambda t: {}, inputs={"x": "DT_FLOAT"}, outputs={"y": "DT_FLOAT"}),
    }
    srv = ServerCore([PythonModel("b", sigs)])
    await asyncio.wait_for(srv.start(), STEP)
    try:
        err = await raises(srv.predict(predict_request("b")))
        assert err.code == StatusCode.INTERNAL
        assert "b" in err.message
        assert "kaput" in err.message
        err = await raises(srv.predict(predict_request("b", signature_name="missing")))
        assert err.code == StatusCode.INTERNAL
        assert "'y'" in err.message
    finally:
        await srv.stop()


async def test_deadline_exceeded_while_running() -> None:
    never = asyncio.Event()

    async def stuck(t: dict[str, Any]) -> dict[str, Any]:
        await never.wait()
        return {"y": t["x"]}

    sig = signature(stuck, inputs={"x": "DT_FLOAT"}, outputs={"y": "DT_FLOAT"})
    srv = ServerCore([PythonModel("slow", {"serving_default": sig})])
    await asyncio.wait_for(srv.start(), STEP)
    try:
        err = await raises(srv.predict(predict_request("slow"), timeout=0.05))
        assert err.code == StatusCode.DEADLINE_EXCEEDED
    finally:
        await srv.stop()


async def test_sync_model_runs_off_the_event_loop() -> None:
    entered, release = threading.Event(), threading.Event()

    def blocking(t: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        release.wait(STEP)
        return {"y": t["x"]}

    sigs = {
        "serving_default": signature(blocking, inputs={"x": "DT_FLOAT"}, outputs={"y": "DT_FLOAT"}),
        "fast": add_sig(1.0),
    }
    srv = ServerCore([PythonModel("s", sigs)])
    await asyncio.wait_for(srv.start(), STEP)
    try:
        slow = asyncio.create_task(srv.predict(predict_request("s")))
        assert await asyncio.wait_for(asyncio.to_thread(entered.wait, STEP), STEP)
        # The blocking call holds a worker thread, not the loop: another call completes.
        fast = await asyncio.wait_for(
            srv.predict(predict_request("s", signature_name="fast")), STEP
        )
        assert list(fast.outputs["y"].float_val) == [2.0]
        assert not slow.done()
        release.set()
        assert list((await asyncio.wait_for(slow, STEP)).outputs["y"].float_val) == [1.0]
    finally:
        release.set()
        await srv.stop()


async def test_async_model_function() -> None:
    async def run(t: dict[str, Any]) -> dict[str, Any]:
        return {"y": t["x"] * 3}

    sig = signature(run, inputs={"x": "DT_FLOAT"}, outputs={"y": "DT_FLOAT"})
    srv = ServerCore([PythonModel("a", {"serving_default": sig})])
    await asyncio.wait_for(srv.start(), STEP)
    try:
        resp = await asyncio.wait_for(srv.predict(predict_request("a", [2.0])), STEP)
        assert list(resp.outputs["y"].float_val) == [6.0]
    finally:
        await srv.stop()


# ---------------------------------------------------------------- classify / regress


async def test_classify_turns_classes_and_scores_into_results(core: ServerCore) -> None:
    req = classification_pb2.ClassificationRequest(input=examples(0.25, 0.75))
    req.model_spec.name = "m"
    req.model_spec.signature_name = "classify"
    resp = await asyncio.wait_for(core.classify(req), STEP)
    got = [[(c.label, c.score) for c in cl.classes] for cl in resp.result.classifications]
    assert got == [[("low", 0.75), ("high", 0.25)], [("low", 0.25), ("high", 0.75)]]
    assert (resp.model_spec.signature_name, resp.model_spec.version.value) == ("classify", 2)


async def test_regress_with_context_merges_features(core: ServerCore) -> None:
    req = regression_pb2.RegressionRequest()
    req.model_spec.name = "m"
    req.model_spec.signature_name = "regress"
    lc = req.input.example_list_with_context
    lc.context.features.feature["x"].float_list.value.append(9.0)
    lc.examples.add()  # no own "x": takes the context's
    own = lc.examples.add()
    own.features.feature["x"].float_list.value.append(2.0)
    resp = await asyncio.wait_for(core.regress(req), STEP)
    assert [r.value for r in resp.result.regressions] == [90.0, 20.0]


async def test_classify_and_regress_errors(core: ServerCore) -> None:
    req = classification_pb2.ClassificationRequest()
    req.model_spec.name = "m"
    req.model_spec.signature_name = "classify"
    err = await raises(core.classify(req))
    assert (err.code, err.message) == (StatusCode.INVALID_ARGUMENT, "Input is empty.")
    req = classification_pb2.ClassificationRequest(input=examples(1.0))
    req.model_spec.name = "m"
    req.model_spec.signature_name = "nope"
    err = await raises(core.classify(req))
    assert (err.code, err.message) == (
        StatusCode.INVALID_ARGUMENT,
        "No signature was found with the name: nope",
    )
    reg = regression_pb2.RegressionRequest(input=examples(1.0))
    reg.model_spec.name = "m"
    reg.model_spec.signature_name = "classify"
    err = await raises(core.regress(reg))
    # TF Serving checks the method name only with --enable_signature_method_name_check.
    assert (err.code, err.message) == (StatusCode.INVALID_ARGUMENT, "Expected one output Tensor.")
    core.prediction.enable_signature_method_name_check = True
    err = await raises(core.regress(reg))
    assert err.message == (
        "Expected regression signature method_name to be tensorflow/serving/regress. "
        "Was: tensorflow/serving/classify"
    )


async def test_multi_inference_checks(core: ServerCore) -> None:
    def request(*tasks: tuple[str, str, str]) -> inference_pb2.MultiInferenceRequest:
        req = inference_pb2.MultiInferenceRequest(input=examples(0.5))
        for name, sig, method in tasks:
            task = req.tasks.add(method_name=method)
            task.model_spec.name = name
            task.model_spec.signature_name = sig
        return req

    c, r = "tensorflow/serving/classify", "tensorflow/serving/regress"
    resp = await asyncio.wait_for(
        core.multi_inference(request(("m", "classify", c), ("m", "regress", r))), STEP
    )
    assert resp.results[1].regression_result.regressions[0].value == 5.0
    assert resp.results[0].model_spec.signature_name == "classify"
    cases = [
        (request(("m", "classify", c), ("n", "regress", r)), "must access the same model name"),
        (request(("m", "classify", c), ("m", "classify", c)), "Duplicate evaluation of signature"),
        (request(("m", "nope", c)), "Requested signature not found in model graph: nope"),
    ]
    for req, text in cases:
        err = await raises(core.multi_inference(req))
        assert err.code == StatusCode.INVALID_ARGUMENT
        assert text in err.message
    err = await raises(core.multi_inference(request(("m", "classify", "tensorflow/serving/x"))))
    assert err.code == StatusCode.UNIMPLEMENTED


# ---------------------------------------------------------------- metadata / status


async def test_metadata_echoes_name_and_version_only(core: ServerCore) -> None:
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = "m"
    req.model_spec.signature_name = "classify"
    resp = await asyncio.wait_for(core.get_model_metadata(req), STEP)
    assert (resp.model_spec.name, resp.model_spec.version.value) == ("m", 2)
    assert resp.model_spec.signature_name == ""
    any_msg = resp.metadata["signature_def"]
    assert any_msg.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    sig_map = get_model_metadata_pb2.SignatureDefMap.FromString(any_msg.value)
    assert set(sig_map.signature_def) == {"serving_default", "classify", "regress"}
    assert sig_map.signature_def["classify"].method_name == "tensorflow/serving/classify"
    req.ClearField("metadata_field")
    err = await raises(core.get_model_metadata(req))
    assert err.message == "GetModelMetadataRequest must specify at least one metadata_field"
    req.metadata_field.append("other")
    err = await raises(core.get_model_metadata(req))
    assert err.message == "Metadata field other is not supported"


async def test_status_lists_newest_first_and_ignores_labels(core: ServerCore) -> None:
    assert await call_status(core, "m") == [
        (2, VersionState.AVAILABLE),
        (1, VersionState.AVAILABLE),
    ]
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = "m"
    req.model_spec.version_label = "no_such_label"
    resp = await asyncio.wait_for(core.get_model_status(req), STEP)
    assert [s.version for s in resp.model_version_status] == [2, 1]


async def test_stop_ends_every_version() -> None:
    srv = ServerCore([versioned("m", (1, 2))])
    await asyncio.wait_for(srv.start(), STEP)
    await asyncio.wait_for(srv.stop(), STEP)
    assert await call_status(srv, "m") == [(2, VersionState.END), (1, VersionState.END)]
    err = await raises(srv.predict(predict_request("m")))
    assert err.code == StatusCode.NOT_FOUND


async def test_config_string_with_python_model() -> None:
    text = """model_config_list { config { name: 'm' model_platform: 'tensorflow'
      model_version_policy { latest { num_versions: 2 } } } }"""
    srv = ServerCore([versioned("m", (1, 2, 3))], config=text)
    await asyncio.wait_for(srv.start(), STEP)
    try:
        assert await call_status(srv, "m") == [
            (3, VersionState.AVAILABLE),
            (2, VersionState.AVAILABLE),
        ]
    finally:
        await srv.stop()


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="twice"):
        ServerCore([versioned("m", (1,)), versioned("m", (2,))])
    with pytest.raises(TypeError, match="ModelSource"):
        ServerCore(["m"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not both"):
        ServerCore(config=model_server_config([]), config_file="x")


def test_example_parse_helper_rejects_missing_feature() -> None:
    ex = example_pb2.Example()
    ex.features.feature["y"].float_list.value.append(1.0)
    with pytest.raises(ValueError, match="is required") as info:
        parse_examples([ex.SerializeToString()], {"x": np.float32})
    assert str(info.value) == (
        "Name: <unknown>, Feature: x (data type: float) is required but could not be found."
    )


def test_model_config_builder_rejects_two_policies() -> None:
    with pytest.raises(ValueError, match="one of"):
        model_config("m", "/m", versions=[1], latest=1)
