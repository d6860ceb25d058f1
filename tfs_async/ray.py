"""Ray Data: a ``map_batches`` callable class calling TF Serving (``pip install tfs-async[ray]``).

::

    import ray
    from tfs_async.ray import TFServingPredictor

    ds = ray.data.read_json("rows.jsonl")  # columns "id" and "x"
    predictions = ds.map_batches(
        TFServingPredictor,
        fn_constructor_kwargs={"target": "grpc://serving:8500", "model": "half_plus_two"},
        concurrency=4,      # actors, each with its own client and connections
        batch_size=1024,    # rows per Ray batch
    )

Each actor opens one async :class:`~tfs_async.client.Client` on the event loop
Ray runs async callables on (``__call__`` is a coroutine, so Ray overlaps several
batches per actor). A batch is a dict of numpy arrays or a pandas DataFrame; the
columns named like the signature's inputs (or those given as ``inputs``) are sent,
cut into requests of ``request_batch_size`` rows, at most ``max_in_flight``
requests at a time per actor; the answer comes back as the same batch (every
column kept, so each row's answer stays beside its input) with one column per
output. A failed request raises the client's typed error (``NotFoundError``,
``InvalidArgumentError``, ``UnavailableError``, ...), which fails the Ray task.

This module does not import Ray: the class is a plain Python class, usable (and
tested) without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tfs_async.client import Client
from tfs_async.errors import InvalidInputError
from tfs_async.types import ModelSpec, PredictResult

__all__ = ["TFServingPredictor"]


class TFServingPredictor:
    """A ``map_batches`` callable class: column batches in, the same batches plus outputs out.

    Args:
        target: the server: ``grpc://host:8500``, ``http://host:8501``, ``dns:///...``.
        model / version / label / signature: what every request addresses.
        inputs: the columns sent: a list of column names (each the input of the same
            name) or a mapping column -> input name. Default: the columns named like
            the signature's inputs (read from the model's metadata once per actor).
        outputs: the outputs kept: a list of names, or a mapping output -> column
            name. Default: every output, in a column of its own name. An output
            column may not replace a column of the batch.
        request_batch_size: rows per request (default: the whole Ray batch in one).
        max_in_flight: requests one actor has in flight at most, across the Ray
            batches it runs concurrently.
        **client_options: the options of :class:`~tfs_async.client.Client`
            (``timeout``, ``max_retries``, ``retry``, ``metadata``, ``pool_size``, ...).

    Ray calls ``await predictor(batch)`` in each actor; so can you:

    >>> import asyncio
    >>> import numpy as np
    >>> from tfs_async.testing import ModelServer, PythonModel, signature
    >>> model = PythonModel("double", {"serving_default": signature(
    ...     lambda t: {"y": t["x"] * 2},
    ...     inputs={"x": ("DT_FLOAT", [-1])}, outputs={"y": ("DT_FLOAT", [-1])},
    ... )})
    >>> async def main() -> dict[str, np.ndarray]:
    ...     async with ModelServer([model]) as server:
    ...         target = f"grpc://{server.grpc_target}"
    ...         predictor = TFServingPredictor(target, "double", timeout=10)
    ...         try:
    ...             return await predictor({"id": np.array([7, 8]), "x": np.array([1, 2.5], "f4")})
    ...         finally:
    ...             await predictor.aclose()
    >>> out = asyncio.run(main())
    >>> sorted(out), out["y"].tolist()
    (['id', 'x', 'y'], [2.0, 5.0])
    """

    def __init__(
        self,
        target: str,
        model: str,
        *,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        inputs: Sequence[str] | Mapping[str, str] | None = None,
        outputs: Sequence[str] | Mapping[str, str] | None = None,
        request_batch_size: int | None = None,
        max_in_flight: int = 4,
        **client_options: Any,
    ) -> None:
        if request_batch_size is not None and request_batch_size < 1:
            raise ValueError(f"request_batch_size must be >= 1, got {request_batch_size}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self._spec = ModelSpec(model, version=version, label=label, signature=signature)
        self._target = target
        self._inputs: dict[str, str] | None = (
            None if inputs is None else _as_mapping(inputs)
        )  # column -> input name
        self._outputs: dict[str, str] | None = (
            None if outputs is None else _as_mapping(outputs)
        )  # output name -> column
        self._request_batch_size = request_batch_size
        self._max_in_flight = max_in_flight
        self._client_options = client_options
        self._client: Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight: asyncio.Semaphore | None = None
        self._opening: asyncio.Lock | None = None

    @property
    def model(self) -> ModelSpec:
        """What every request addresses."""
        return self._spec

    @property
    def max_in_flight(self) -> int:
        """Requests this predictor has in flight at most."""
        return self._max_in_flight

    async def _open(self) -> tuple[Client, asyncio.Semaphore, dict[str, str]]:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._in_flight = asyncio.Semaphore(self._max_in_flight)
            self._opening = asyncio.Lock()
        elif self._loop is not loop:
            raise RuntimeError(
                "a TFServingPredictor is bound to the event loop of its first call; "
                "create one per event loop"
            )
        assert self._in_flight is not None
        assert self._opening is not None
        async with self._opening:
            if self._client is None:
                self._client = Client(self._target, **self._client_options)
            if self._inputs is None:
                spec = self._spec
                metadata = await self._client.metadata(
                    spec.name, version=spec.version, label=spec.label
                )
                names = metadata.signature(spec.signature).inputs
                self._inputs = {name: name for name in names}
        return self._client, self._in_flight, self._inputs

    async def __call__(self, batch: Any) -> Any:
        """Predict one Ray batch (a dict of numpy arrays or a pandas DataFrame)."""
        client, in_flight, inputs = await self._open()
        frame = _is_dataframe(batch)
        columns: Mapping[str, Any] = batch
        missing = [column for column in inputs if column not in columns]
        if missing:
            raise InvalidInputError(
                f"the batch has no column {missing[0]!r} (input {inputs[missing[0]]!r}); "
                f"its columns: {sorted(map(str, columns.keys()))}",
                model=self._spec,
            )
        arrays = {
            name: _column_array(columns[column], column, self._spec)
            for column, name in inputs.items()
        }
        if not arrays:
            raise InvalidInputError("no input columns to send", model=self._spec)
        rows = len(next(iter(arrays.values())))
        step = self._request_batch_size or max(rows, 1)
        spec = self._spec

        async def send(start: int) -> PredictResult:
            chunk = {name: array[start : start + step] for name, array in arrays.items()}
            async with in_flight:
                return await client.predict(
                    spec.name,
                    chunk,
                    version=spec.version,
                    label=spec.label,
                    signature=spec.signature,
                    output_filter=list(self._outputs) if self._outputs else None,
                )

        results = await asyncio.gather(*(send(start) for start in range(0, rows, step)))
        if self._outputs is not None:
            wanted = self._outputs
        else:
            wanted = {name: name for name in results[0]} if results else {}
        out = batch.copy() if frame else dict(batch)
        for output, column in wanted.items():
            if column in columns:
                raise InvalidInputError(
                    f"output {output!r} would replace the batch's column {column!r}; name its "
                    f"column with outputs={{{output!r}: 'another_name'}}",
                    model=spec,
                )
            parts = [result[output] for result in results]
            value = np.concatenate(parts) if len(parts) > 1 else parts[0]
            if len(value) != rows:
                raise InvalidInputError(
                    f"output {output!r} has {len(value)} rows for {rows} rows sent: the "
                    "model's outputs are not batch-major",
                    model=spec,
                )
            out[column] = list(value) if frame and value.ndim > 1 else value
        return out

    async def aclose(self) -> None:
        """Close the client (Ray ends the actor's process without calling this)."""
        if self._client is not None:
            await self._client.close()

    def __repr__(self) -> str:
        return f"TFServingPredictor({self._target!r}, {self._spec!r})"


def _as_mapping(names: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    if isinstance(names, str):
        return {names: names}
    if isinstance(names, Mapping):
        return dict(names)
    return {name: name for name in names}


def _is_dataframe(batch: Any) -> bool:
    import sys

    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(batch, pandas.DataFrame)


def _column_array(values: Any, column: str, spec: ModelSpec) -> npt.NDArray[Any]:
    """A column as one array: a column of per-row arrays (lists) is stacked along dim 0."""
    array = np.asarray(values)
    if array.dtype != object or len(array) == 0:
        return array
    first = array[0]
    if not isinstance(first, (np.ndarray, list, tuple)):
        return array  # strings / bytes
    rows = [np.asarray(value) for value in array]
    for index, row in enumerate(rows):
        if row.shape != rows[0].shape:
            raise InvalidInputError(
                f"column {column!r}: row {index} has shape {row.shape}, row 0 has shape "
                f"{rows[0].shape} (every row of a column has the same shape)",
                model=spec,
            )
    return np.stack(rows)
