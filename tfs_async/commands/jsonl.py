"""``predict --jsonl``: one request row per line, answers in input order, constant memory.

Each input line is a JSON object of input name -> value (one instance, without the
batch dimension); each output line is a JSON object of output name -> value (a row of
TF Serving's REST ``predictions``), or, for a line that failed,
``{"error": message, "code": "INVALID_ARGUMENT", "line": n}``, so output line n
always answers input line n.

The rows go through :func:`predict_rows`, the one place that talks to the client:
:meth:`Client.predict_stream` with batching, at most ``max_in_flight`` rows read
ahead of the writer.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from tfs_async.commands.common import UsageError
from tfs_async.commands.inputs import json_array
from tfs_async.commands.render import to_json_value
from tfs_async.errors import TFServingError

__all__ = ["JsonlSummary", "predict_rows", "read_rows", "run_jsonl"]

Row = Mapping[str, npt.NDArray[Any]]
Outcome = Mapping[str, npt.NDArray[Any]] | Exception


class LineError(Exception):
    """A line that cannot be read as a row (not JSON, not an object of inputs)."""


def read_rows(lines: Iterable[str]) -> Iterator[Row | Exception]:
    """Each non-empty line as a row of inputs (batch dimension of 1 added), or its error.

    Lazy: a line is read only when the consumer asks for the next row.
    """
    for line in lines:
        text = line.strip()
        if not text:
            yield LineError("empty line")
            continue
        try:
            doc = json.loads(text)
        except ValueError as error:
            yield LineError(f"not JSON: {error}")
            continue
        if not isinstance(doc, dict) or not doc:
            yield LineError("expected a JSON object of input name -> value")
            continue
        try:
            yield {name: json_array(value, name)[np.newaxis] for name, value in doc.items()}
        except UsageError as error:
            yield LineError(str(error))


async def predict_rows(
    client: Any,
    model: str,
    rows: Iterable[Row | Exception],
    *,
    version: int | None = None,
    label: str | None = None,
    signature: str | None = None,
    output_filter: Sequence[str] = (),
    check: Callable[[Row], Row] | None = None,
    max_batch_size: int = 64,
    max_in_flight: int = 256,
) -> AsyncIterator[Outcome]:
    """Predict each row (a batch of one), yielding its outputs or its error, in input order.

    Rows that are exceptions are yielded back as they are. At most ``max_in_flight``
    rows are taken from ``rows`` ahead of the consumer (memory stays constant
    whatever the input size); rows in flight together are merged into requests of
    up to ``max_batch_size`` rows, and a row the server refuses inside a merged
    request fails alone (:meth:`Client.predict_stream` with batching). ``check``
    validates and types a row before it is sent.
    """
    from tfs_async.batching import Batching

    if max_in_flight < 1 or max_batch_size < 1:
        raise UsageError("--batch-size and --in-flight must be >= 1")

    def checked() -> Iterator[Row | Exception]:
        for row in rows:
            if check is None or isinstance(row, Exception):
                yield row
                continue
            try:
                yield check(row)
            except Exception as error:
                yield error

    batched = client.with_options(batching=Batching(max_batch_size=max_batch_size))
    stream = batched.predict_stream(
        model,
        checked(),
        version=version,
        label=label,
        signature=signature,
        max_in_flight=max_in_flight,
        on_error="return",
    )
    async with contextlib.aclosing(stream) as outcomes:
        async for outcome in outcomes:
            if isinstance(outcome, Exception):
                yield outcome
                continue
            kept = output_filter or list(outcome)
            yield {name: outcome[name][0, ...] for name in kept}


@dataclass
class JsonlSummary:
    """What a ``--jsonl`` run did."""

    rows: int = 0
    failed: int = 0
    seconds: float = 0.0
    first_errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for stderr."""
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"{self.rows} rows, {self.rows - self.failed} ok, {self.failed} failed "
            f"in {self.seconds:.2f} s ({rate:.0f} rows/s)"
        )
        return text


class _Progress:
    """A tqdm bar on stderr when it is a terminal and tqdm is installed; else nothing."""

    def __init__(self, enabled: bool) -> None:
        self._bar: Any = None
        if not enabled or not sys.stderr.isatty():
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(unit="rows", file=sys.stderr, dynamic_ncols=True)

    def update(self, failed: int) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if failed:
                self._bar.set_postfix(errors=failed, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _error_doc(error: Exception, number: int) -> dict[str, Any]:
    if isinstance(error, TFServingError):
        return {"error": error.message, "code": error.code.name, "line": number}
    if isinstance(error, LineError):
        return {"error": str(error), "code": "INVALID_ARGUMENT", "line": number}
    return {"error": f"{type(error).__name__}: {error}", "code": "UNKNOWN", "line": number}


async def run_jsonl(
    client: Any,
    model: str,
    source: IO[str],
    sink: IO[str],
    *,
    check: Callable[[Row], Row] | None,
    version: int | None,
    label: str | None,
    signature: str | None,
    output_filter: Sequence[str],
    max_batch_size: int,
    max_in_flight: int,
    progress: bool,
) -> JsonlSummary:
    """Read ``source`` line by line, write one answer line per input line to ``sink``."""
    summary = JsonlSummary()
    bar = _Progress(progress)
    started = time.monotonic()
    try:
        outcomes = predict_rows(
            client,
            model,
            read_rows(source),
            version=version,
            label=label,
            signature=signature,
            output_filter=output_filter,
            check=check,
            max_batch_size=max_batch_size,
            max_in_flight=max_in_flight,
        )
        async for outcome in outcomes:
            summary.rows += 1
            if isinstance(outcome, Exception):
                summary.failed += 1
                doc = _error_doc(outcome, summary.rows)
                if len(summary.first_errors) < 5:
                    summary.first_errors.append(f"line {summary.rows}: {doc['error']}")
            else:
                doc = {name: to_json_value(value) for name, value in sorted(outcome.items())}
            sink.write(json.dumps(doc, allow_nan=True, ensure_ascii=False) + "\n")
            bar.update(summary.failed)
    finally:
        bar.close()
        summary.seconds = time.monotonic() - started
    return summary
