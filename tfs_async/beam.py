"""Apache Beam: a ``RunInference`` handler that calls TF Serving (``pip install tfs-async[beam]``).

:class:`TFServingModelHandler` is a Beam ``RemoteModelHandler``: each worker
process opens one :class:`~tfs_async.sync.SyncClient` (``create_client``) that
Beam shares across the threads and bundles of the transform; each batch that
Beam's ``BatchElements`` forms becomes one Predict request, its examples
stacked along a new dimension 0 and the answer split back into one
``PredictionResult(example, inference, model_id)`` per example::

    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference
    from tfs_async.beam import TFServingModelHandler

    handler = TFServingModelHandler("grpc://serving:8500", "half_plus_two", output="y")
    with beam.Pipeline() as p:
        (p | beam.Create([np.array([1.0], np.float32)]) | RunInference(handler) | beam.Map(print))

The same pipeline runs on the DirectRunner, Flink, Spark or Dataflow. Wrap the
handler in Beam's ``KeyedModelHandler`` for ``(key, example)`` inputs.

Retries: the client retries what is worth retrying (UNAVAILABLE,
RESOURCE_EXHAUSTED, lost connections) with backoff, a retry budget and one
deadline per batch; Beam's own retry loop around ``request`` is off by default
(``num_retries=0``) so that the two do not multiply, and never retries our
errors that are not transient. Beam's client-side throttler (``window_ms``,
``bucket_ms``, ``overload_ratio``, ``throttle_delay_secs``) sees one request per
batch, after our retries: when the server keeps failing it slows the pipeline
down instead of piling retries on it. A batch that fails raises the client's
typed error (``NotFoundError``, ``InvalidArgumentError``, ``UnavailableError``,
...); the bundle fails and the runner retries it as it retries any bundle, or
``RunInference(...).with_exception_handling()`` routes the batch to its
failure output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    from apache_beam.ml.inference.base import PredictionResult, RemoteModelHandler
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"tfs_async.beam needs Apache Beam 2.78 or later: pip install 'tfs-async[beam]' ({error})"
    ) from error

from tfs_async.errors import (
    InvalidArgumentError,
    InvalidInputError,
    ResourceExhaustedError,
    UnavailableError,
)
from tfs_async.sync import SyncClient
from tfs_async.types import ModelSpec, PredictResult

__all__ = ["TFServingModelHandler", "model_id"]

Example = npt.NDArray[Any] | Mapping[str, npt.ArrayLike]


def model_id(spec: ModelSpec | None, fallback: str) -> str:
    """``name/versions/N``: the model and version that answered (as in TF Serving's REST paths).

    >>> model_id(ModelSpec("half_plus_two", version=123), "x")
    'half_plus_two/versions/123'
    >>> model_id(None, "half_plus_two")
    'half_plus_two'
    """
    if spec is None:
        return fallback
    if spec.version is None:
        return spec.name
    return f"{spec.name}/versions/{spec.version}"


def _transient(error: Exception) -> bool:
    """What Beam may retry on top of the client (only when ``num_retries`` > 0)."""
    return isinstance(error, (UnavailableError, ResourceExhaustedError))


class TFServingModelHandler(RemoteModelHandler):  # type: ignore[misc]
    """A ``RunInference`` handler that sends Beam's batches to TF Serving.

    Args:
        target: the server: ``grpc://host:8500``, ``http://host:8501``, ``dns:///...``.
        model / version / label / signature: what every request addresses.
        output: ``None``: each inference is a dict of every output's row; an output
            name: that output's row alone; a list of names: a dict of those (the
            others are not requested).
        min_batch_size / max_batch_size / max_batch_duration_secs: Beam's
            ``BatchElements`` settings (examples per request; the wait before a
            partial batch is sent in streaming pipelines).
        num_retries / retry_filter: Beam's retries of a failed batch, on top of the
            client's (default: none; see the module's notes).
        throttle_delay_secs / window_ms / bucket_ms / overload_ratio: Beam's
            client-side throttling.
        namespace: Beam's metrics and logging namespace.
        **client_options: the options of :class:`~tfs_async.client.Client`
            (``timeout``, ``max_retries``, ``retry``, ``metadata``, ``compress``,
            ``pool_size``, ``tls``, ``validate``, ``cast``, ...).

    Each example is one row: a numpy array (for a single-input signature) or a
    dict of arrays, all of one shape per input; a batch's examples are stacked
    into ``[batch, *shape]`` tensors. An example whose shape or names differ from
    the rest of its batch raises :class:`~tfs_async.errors.InvalidInputError`
    naming the example and the input.
    """

    def __init__(
        self,
        target: str,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        output: str | Sequence[str] | None = None,
        min_batch_size: int | None = None,
        max_batch_size: int | None = None,
        max_batch_duration_secs: int | None = None,
        num_retries: int = 0,
        retry_filter: Any = _transient,
        throttle_delay_secs: int = 5,
        window_ms: int = 120_000,
        bucket_ms: int = 1_000,
        overload_ratio: float = 2.0,
        namespace: str = "RunInferenceTFServing",
        **client_options: Any,
    ) -> None:
        super().__init__(
            namespace=namespace,
            num_retries=num_retries,
            throttle_delay_secs=throttle_delay_secs,
            retry_filter=retry_filter,
            window_ms=window_ms,
            bucket_ms=bucket_ms,
            overload_ratio=overload_ratio,
        )
        # Checked here, at pipeline construction, rather than on the workers.
        self._spec = ModelSpec(model, version=version, label=label, signature=signature)
        self._target = target
        self._output = output
        self._output_filter: tuple[str, ...] = (
            () if output is None else (output,) if isinstance(output, str) else tuple(output)
        )
        self._client_options = dict(client_options)
        self._namespace = namespace
        self._batching: dict[str, Any] = {}
        for key, value in (
            ("min_batch_size", min_batch_size),
            ("max_batch_size", max_batch_size),
            ("max_batch_duration_secs", max_batch_duration_secs),
        ):
            if value is not None:
                self._batching[key] = value

    @property
    def target(self) -> str:
        """The server this handler's workers call."""
        return self._target

    @property
    def model(self) -> ModelSpec:
        """What every request addresses."""
        return self._spec

    # -- Beam's hooks -----------------------------------------------------------------

    def create_client(self) -> SyncClient:
        """One client per worker process, shared by Beam across threads and bundles."""
        return SyncClient(self._target, **self._client_options)

    def request(
        self,
        batch: Sequence[Example],
        model: SyncClient,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        """One Predict request for the whole batch; one PredictionResult per example."""
        spec = self._spec
        if not batch:
            return []
        result = model.predict(
            spec.name,
            _stack(batch, spec),
            version=spec.version,
            label=spec.label,
            signature=spec.signature,
            output_filter=self._output_filter or None,
        )
        rows = _split(result, len(batch), spec)
        answered = model_id(result.model, spec.name)
        output = self._output
        if isinstance(output, str):
            return [
                PredictionResult(example, row[output], answered)
                for example, row in zip(batch, rows, strict=True)
            ]
        return [
            PredictionResult(example, row, answered)
            for example, row in zip(batch, rows, strict=True)
        ]

    def batch_elements_kwargs(self) -> Mapping[str, Any]:
        """Beam's ``BatchElements`` settings given to the constructor."""
        return dict(self._batching)

    def get_num_bytes(self, batch: Sequence[Example]) -> int:
        """The bytes of the batch's arrays (Beam's metric), without pickling them."""
        total = 0
        for example in batch:
            if isinstance(example, Mapping):
                total += sum(np.asarray(v).nbytes for v in example.values())
            else:
                total += np.asarray(example).nbytes
        return total

    def get_metrics_namespace(self) -> str:
        """The namespace of RunInference's metrics for this handler."""
        return self._namespace

    def __repr__(self) -> str:
        return f"TFServingModelHandler({self._target!r}, {self._spec!r})"


def _stack(batch: Sequence[Example], spec: ModelSpec) -> dict[str, npt.NDArray[Any]] | Any:
    """The batch's examples stacked along a new dimension 0, per input."""
    first = batch[0]
    if not isinstance(first, Mapping):
        arrays = [np.asarray(example) for example in batch]
        for index, array in enumerate(arrays):
            if isinstance(batch[index], Mapping) or array.shape != arrays[0].shape:
                raise InvalidInputError(
                    f"example {index} of the batch has shape {_shape_of(batch[index])}; "
                    f"the batch's first example has shape {arrays[0].shape} (every example "
                    "is one row of the same shape)",
                    model=spec,
                )
        return np.stack(arrays)
    names = list(first)
    stacked: dict[str, npt.NDArray[Any]] = {}
    for name in names:
        column: list[npt.NDArray[Any]] = []
        for index, example in enumerate(batch):
            if not isinstance(example, Mapping) or set(example) != set(names):
                got = sorted(example) if isinstance(example, Mapping) else "an array"
                raise InvalidInputError(
                    f"example {index} of the batch has inputs {got}; expected {sorted(names)}",
                    model=spec,
                )
            value = np.asarray(example[name])
            if column and value.shape != column[0].shape:
                raise InvalidInputError(
                    f"input {name!r} of example {index} has shape {value.shape}; the batch's "
                    f"first example has shape {column[0].shape} (every example is one row "
                    "of the same shape)",
                    model=spec,
                )
            column.append(value)
        stacked[name] = np.stack(column)
    return stacked


def _shape_of(example: Example) -> str:
    if isinstance(example, Mapping):
        return f"(a dict of inputs {sorted(example)})"
    return str(np.asarray(example).shape)


def _split(result: PredictResult, rows: int, spec: ModelSpec) -> list[dict[str, Any]]:
    """Per example, its row of every output (views, no copies)."""
    for name, array in result.items():
        if array.ndim == 0 or array.shape[0] != rows:
            raise InvalidArgumentError(
                f"output {name!r} has shape {array.shape}, not {rows} rows (one per example "
                "of the batch): the model's outputs are not batch-major",
                model=spec,
            )
    return [{name: array[i] for name, array in result.items()} for i in range(rows)]
