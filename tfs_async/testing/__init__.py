"""``tfs_async.testing``: a TF Serving emulator (gRPC + REST) for tests, benchmarks and local runs.

``ModelServer`` serves Python models (``PythonModel``) and SavedModel
directories (``SavedModel``) in-process over real sockets;
``ModelServerProcess`` runs the same server in a child process;
``FaultPlan`` injects latency, errors, dropped connections and stalls.

>>> import asyncio
>>> from tfs_async.testing import ModelServer, PythonModel, signature
>>> model = PythonModel("double", {"serving_default": signature(
...     lambda t: {"y": t["x"] * 2},
...     inputs={"x": ("DT_FLOAT", [-1])},
...     outputs={"y": ("DT_FLOAT", [-1])},
... )})
>>> async def main() -> bool:
...     async with ModelServer([model]) as server:
...         return server.rest_url.startswith("http://127.0.0.1:")
>>> asyncio.run(main())
True
"""

from __future__ import annotations

from tfs_async.testing.faults import (
    Fault,
    FaultPlan,
    exponential_latency,
    fault_from_dict,
    uniform_latency,
)
from tfs_async.testing.model_manager import LoadedVersion, ModelManager
from tfs_async.testing.models import (
    ModelSource,
    PythonModel,
    Signature,
    classify_signature,
    parse_examples,
    regress_signature,
    signature,
)
from tfs_async.testing.prediction_service import PredictionService
from tfs_async.testing.process import ModelServerProcess, ServerProcessError
from tfs_async.testing.reference_models import half_plus_two_functions
from tfs_async.testing.saved_model import SavedModel
from tfs_async.testing.server import ModelServer
from tfs_async.testing.serving import ServerCore
from tfs_async.testing.status import ServingStatus

__all__ = [
    "Fault",
    "FaultPlan",
    "LoadedVersion",
    "ModelServer",
    "ModelManager",
    "ModelServerProcess",
    "ModelSource",
    "PredictionService",
    "PythonModel",
    "SavedModel",
    "ServerCore",
    "ServerProcessError",
    "ServingStatus",
    "Signature",
    "classify_signature",
    "exponential_latency",
    "fault_from_dict",
    "half_plus_two_functions",
    "parse_examples",
    "regress_signature",
    "signature",
    "uniform_latency",
]
