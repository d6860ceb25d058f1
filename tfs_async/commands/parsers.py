"""The client subcommands' flags and what each one does."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from tfs_async.commands import render
from tfs_async.commands.common import (
    EXIT_NOT_READY,
    EXIT_OK,
    EXIT_PARTIAL,
    TARGET_ENV,
    UsageError,
    add_client_options,
    add_model_arguments,
    open_client,
    resolve_target,
    run_command,
)
from tfs_async.commands.inputs import typed_inputs
from tfs_async.errors import DeadlineExceededError, InvalidInputError
from tfs_async.types import DEFAULT_SIGNATURE, ModelMetadata, SignatureSpec

__all__ = ["add_client_commands"]

_EXIT_CODES = (
    "The target may be left out when $TFS_ASYNC_TARGET holds it. Errors are one line on\n"
    "stderr (--verbose adds the traceback and a log line per attempt).\n"
    "exit status: 0 success; 1 the call failed (the server's or the client's error);\n"
    "2 usage error (flags, target, input syntax, files); 3 status --wait: not available\n"
    "in time; 4 predict --jsonl: some lines failed (their answer lines hold the error)."
)


def add_client_commands(sub: Any) -> None:
    """Register metadata, status, predict, classify, regress and reload-config on ``sub``."""

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name,
            help=summary,
            description=description,
            epilog=_EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return parser

    metadata = command(
        "metadata",
        "show a model's signatures (like saved_model_cli show --all)",
        "Show the model's signatures: inputs, outputs, dtypes, shapes, method.",
    )
    add_model_arguments(metadata)
    metadata.add_argument("--signature", "--signature_def", help="show this signature only")
    metadata.add_argument("--json", action="store_true", help="print JSON")
    add_client_options(metadata)
    metadata.set_defaults(run=_runner(_metadata))

    status = command(
        "status",
        "show a model's version states, or wait until it is available",
        "Show the state of the model's versions (newest first). With --wait, a readiness\n"
        "probe: exit 0 once the model (--version or --label) is AVAILABLE, exit 3 with the\n"
        "reason when --timeout seconds pass first.",
    )
    add_model_arguments(status)
    status.add_argument("--wait", action="store_true", help="wait until AVAILABLE (--timeout)")
    status.add_argument("--json", action="store_true", help="print JSON")
    add_client_options(status)
    status.set_defaults(run=_runner(_status))

    predict = command(
        "predict",
        "run Predict with inputs from files, literals, a REST body or JSON lines",
        "Run Predict. Inputs as saved_model_cli takes them, separated by ';' or by\n"
        "repeating the flag:\n"
        "  --inputs 'x=in.npy;y=in.npz[key]'      numpy files (never unpickled)\n"
        "  --input_exprs 'x=[[1.0, 2.0]]'          Python literals, typed from the signature\n"
        "  --input_examples 'x=[{\"f\": [1.0]}]'     serialized tf.Examples for input x\n"
        "  --json body.json                        a TF Serving REST body (instances/inputs)\n"
        "  --jsonl rows.jsonl --out answers.jsonl  one row per line, batched\n"
        "Output: a table, --json (or --format json), or --outdir with one .npy per output.",
    )
    add_model_arguments(predict, signature=True)
    _input_flags(predict)
    predict.add_argument(
        "--output_filter",
        action="append",
        default=[],
        metavar="NAMES",
        help="only these outputs (comma-separated, repeatable)",
    )
    predict.add_argument("--outdir", help="write each output to OUTDIR/<name>.npy")
    predict.add_argument("--overwrite", action="store_true", help="replace files in --outdir")
    jsonl = predict.add_argument_group("JSON lines (one request row per line)")
    jsonl.add_argument(
        "--jsonl", metavar="IN", help="input rows, one JSON object a line ('-': stdin)"
    )
    jsonl.add_argument("--out", metavar="OUT", default="-", help="answer lines (default: stdout)")
    jsonl.add_argument(
        "--batch-size", type=int, default=64, help="rows merged into one request (default 64)"
    )
    jsonl.add_argument(
        "--in-flight", type=int, default=256, help="rows read ahead of the writer (default 256)"
    )
    jsonl.add_argument(
        "--no-progress", action="store_true", help="no progress bar (shown on a terminal only)"
    )
    add_client_options(predict)
    predict.set_defaults(run=_runner(_predict))

    for name, method in (("classify", "Classify"), ("regress", "Regress")):
        parser = command(
            name,
            f"run {method} over tf.Examples given as JSON",
            f"Run {method} over examples: --input_examples '[{{\"f\": [1.0]}}]' (an optional\n"
            "NAME= prefix, as saved_model_cli writes it, is accepted) or --json body.json\n"
            'holding a TF Serving REST body ({"examples": [...], "context": {...}}).',
        )
        add_model_arguments(parser, signature=True)
        parser.add_argument(
            "--input_examples", action="append", default=[], metavar="[NAME=]EXAMPLES"
        )
        _json_flag(parser)
        add_client_options(parser)
        parser.set_defaults(run=_runner(_examples_call), method=name)

    reload = command(
        "reload-config",
        "replace the server's model config (gRPC only)",
        "Send HandleReloadConfigRequest with a models.config in TF Serving's text format.",
    )
    reload.add_argument("target", metavar="[TARGET]", help=f"gRPC target (or ${TARGET_ENV})")
    reload.add_argument("config", metavar="CONFIG", nargs="?", help="models.config ('-': stdin)")
    reload.usage = "%(prog)s [options] [TARGET] CONFIG"
    add_client_options(reload)
    reload.set_defaults(run=_runner(_reload))


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        nargs="?",
        action="append",
        const="",
        default=[],
        metavar="BODY",
        help="with a file ('-': stdin): a TF Serving REST request body; "
        "alone (last on the line): print JSON",
    )
    parser.add_argument("--format", choices=("table", "json"), help="output format")


def _input_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", action="append", default=[], metavar="NAME=FILE[KEY];...")
    parser.add_argument("--input_exprs", action="append", default=[], metavar="NAME=LITERAL;...")
    parser.add_argument("--input_examples", action="append", default=[], metavar="NAME=[{...}];...")
    _json_flag(parser)


def _runner(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        return run_command(args, command)

    return run


def _json_output(args: argparse.Namespace) -> bool:
    return bool(args.format == "json" or "" in args.json)


def _body(args: argparse.Namespace) -> Any | None:
    paths = [p for p in args.json if p]
    if not paths:
        return None
    if len(paths) > 1:
        raise UsageError("--json BODY is given more than once")
    path = paths[0]
    text = _read_text(path, "--json")
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"--json {path}: not JSON ({error})") from None


def _read_text(path: str, flag: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise UsageError(f"{flag} {path}: {reason}") from None


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------------------- commands


async def _metadata(args: argparse.Namespace) -> int:
    target, model = resolve_target(args)
    async with open_client(args, target) as client:
        meta = await client.metadata(model, version=args.version, label=args.label)
    if args.signature and args.signature not in meta.signatures:
        raise InvalidInputError(
            f"signature {args.signature!r} not found; the model has {sorted(meta.signatures)}",
            input_name="signature",
            expected=f"one of {sorted(meta.signatures)}",
            model=meta.model,
        )
    if args.json:
        _print(render.dumps(render.metadata_json(meta, args.signature)))
    else:
        _print(render.metadata_text(meta, args.signature))
    return EXIT_OK


async def _status(args: argparse.Namespace) -> int:
    target, model = resolve_target(args)
    async with open_client(args, target) as client:
        if args.wait:
            try:
                statuses = [await _wait(client, model, args)]
            except DeadlineExceededError as error:
                print(f"tfs-async: error: {' '.join(str(error).split())}", file=sys.stderr)
                return EXIT_NOT_READY
        else:
            statuses = await client.status(model, version=args.version, label=args.label)
    if args.json:
        _print(render.dumps(render.status_json(model, statuses)))
    else:
        _print(render.status_table(model, statuses))
    return EXIT_OK


async def _wait(client: Any, model: str, args: argparse.Namespace) -> Any:
    """``status --wait``: until AVAILABLE, for ``--timeout`` seconds (0: for ever)."""
    while True:
        try:
            return await client.wait_until_available(
                model, version=args.version, label=args.label, timeout=args.timeout or 60.0
            )
        except DeadlineExceededError:
            if args.timeout is not None:
                raise


def _gather_inputs(args: argparse.Namespace) -> Mapping[str, Any] | npt.NDArray[Any]:
    from tfs_async.commands.inputs import (
        decode_predict_request,
        example_tensor,
        parse_examples,
        parse_exprs,
        parse_files,
    )

    body = _body(args)
    flags = args.inputs or args.input_exprs or args.input_examples
    if body is not None:
        if flags:
            raise UsageError("--json BODY cannot be combined with --inputs/--input_exprs/...")
        inputs, signature = decode_predict_request(body)
        if signature and not args.signature:
            args.signature = signature
        return inputs
    named: dict[str, Any] = {}
    sources: list[Mapping[str, Any]] = [parse_files(args.inputs), parse_exprs(args.input_exprs)]
    examples = parse_examples(args.input_examples)
    if "" in examples:
        raise UsageError("--input_examples for predict needs NAME=[...]: the input to feed")
    sources.append({k: example_tensor(v, k) for k, v in examples.items()})
    for source in sources:
        for name, value in source.items():
            if name in named:
                raise UsageError(f"input {name!r} is given by two flags")
            named[name] = value
    if not named:
        raise UsageError(
            "no inputs: give --inputs, --input_exprs, --input_examples, --json BODY or --jsonl"
        )
    return named


def _signature(meta: ModelMetadata, name: str | None) -> SignatureSpec:
    key = name or DEFAULT_SIGNATURE
    if key not in meta.signatures:
        raise InvalidInputError(
            f"signature {key!r} not found; the model has {sorted(meta.signatures)}",
            input_name="signature",
            expected=f"one of {sorted(meta.signatures)}",
            model=meta.model,
        )
    return meta.signatures[key]


def _output_filter(args: argparse.Namespace) -> list[str]:
    return [n.strip() for item in args.output_filter for n in item.split(",") if n.strip()]


async def _predict(args: argparse.Namespace) -> int:
    target, model = resolve_target(args)
    if args.jsonl is not None:
        return await _predict_jsonl(args, target, model)
    inputs = _gather_inputs(args)
    outdir = _prepare_outdir(args) if args.outdir else None
    async with open_client(args, target) as client:
        meta = await client.metadata(model, version=args.version, label=args.label)
        typed = typed_inputs(inputs, _signature(meta, args.signature), meta.model)
        result = await client.predict(
            model,
            typed,
            version=args.version,
            label=args.label,
            signature=args.signature,
            output_filter=_output_filter(args) or None,
        )
    if outdir is not None:
        for name, array in result.items():
            path = outdir / f"{name}.npy"
            np.save(path, array, allow_pickle=array.dtype.kind == "O")
            print(f"{name}: {path}", file=sys.stderr)
    elif _json_output(args):
        _print(render.dumps(render.outputs_json(result, result.model), indent=None))
    else:
        _print(render.outputs_table(result, result.model))
    return EXIT_OK


def _prepare_outdir(args: argparse.Namespace) -> Path:
    outdir = Path(args.outdir)
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"--outdir {outdir}: not a directory")
    outdir.mkdir(parents=True, exist_ok=True)
    if not args.overwrite and any(outdir.glob("*.npy")):
        raise UsageError(f"--outdir {outdir} already holds .npy files (--overwrite replaces them)")
    return outdir


@contextlib.contextmanager
def _opened(path: str, mode: str, stream: IO[str]) -> Iterator[IO[str]]:
    if path == "-":
        yield stream
        return
    try:
        handle = open(path, mode, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror or error}") from None
    with handle:
        yield handle


async def _predict_jsonl(args: argparse.Namespace, target: str, model: str) -> int:
    from tfs_async.commands.jsonl import run_jsonl

    if args.inputs or args.input_exprs or args.input_examples or any(args.json):
        raise UsageError("--jsonl takes its inputs from the file only")
    if args.outdir:
        raise UsageError("--jsonl writes to --out, not --outdir")
    output_filter = _output_filter(args)
    async with open_client(args, target) as client:
        # Fail fast (one error, not one per line) on an unknown model or signature.
        meta = await client.metadata(model, version=args.version, label=args.label)
        signature = _signature(meta, args.signature)
        unknown = [n for n in output_filter if n not in signature.outputs]
        if unknown:
            raise InvalidInputError(
                f"--output_filter names {unknown}; signature {signature.name!r} has outputs "
                f"{sorted(signature.outputs)}",
                input_name="output_filter",
                model=meta.model,
            )

        def check(row: Mapping[str, npt.NDArray[Any]]) -> Mapping[str, npt.NDArray[Any]]:
            return typed_inputs(row, signature, meta.model)

        with (
            _opened(args.jsonl, "r", sys.stdin) as source,
            _opened(args.out, "w", sys.stdout) as sink,
        ):
            summary = await run_jsonl(
                client,
                model,
                source,
                sink,
                check=check,
                version=args.version,
                label=args.label,
                signature=args.signature,
                output_filter=output_filter,
                max_batch_size=args.batch_size,
                max_in_flight=args.in_flight,
                progress=not args.no_progress,
            )
    print(f"tfs-async: {summary.line()}", file=sys.stderr)
    for line in summary.first_errors:
        print(f"tfs-async:   {line}", file=sys.stderr)
    if summary.failed:
        where = "" if args.out == "-" else f" (written to {args.out} with their errors)"
        lines = "line" if summary.failed == 1 else "lines"
        print(f"tfs-async: error: {summary.failed} {lines} failed{where}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


async def _examples_call(args: argparse.Namespace) -> int:
    from tfs_async.commands.inputs import decode_examples_request, parse_examples

    target, model = resolve_target(args)
    body = _body(args)
    context = None
    if body is not None:
        if args.input_examples:
            raise UsageError("--json BODY cannot be combined with --input_examples")
        examples, context, signature = decode_examples_request(body)
        args.signature = args.signature or signature or None
    else:
        given = parse_examples(args.input_examples)
        if len(given) != 1:
            raise UsageError(
                f"{args.method} needs one --input_examples '[{{...}}, ...]' "
                f"(got {len(given)} inputs)"
            )
        (examples,) = given.values()
    async with open_client(args, target) as client:
        call = client.classify if args.method == "classify" else client.regress
        result = await call(
            model,
            examples,
            context=context,
            version=args.version,
            label=args.label,
            signature=args.signature,
        )
    from tfs_async.types import ClassifyResult

    if isinstance(result, ClassifyResult):
        text = (
            render.dumps(render.classify_json(result), indent=None)
            if _json_output(args)
            else render.classify_table(result)
        )
    else:
        text = (
            render.dumps(render.regress_json(result), indent=None)
            if _json_output(args)
            else render.regress_table(result)
        )
    _print(text)
    return EXIT_OK


async def _reload(args: argparse.Namespace) -> int:
    target, path = resolve_target(args, "config")
    text = _read_text(path, "CONFIG")
    from tfs_async.config import parse_model_server_config

    try:
        config = parse_model_server_config(text, path=None if path == "-" else path)
    except ValueError as error:
        raise UsageError(str(error)) from None
    async with open_client(args, target) as client:
        await client.reload_config(config)
    print(f"tfs-async: {target}: model config replaced", file=sys.stderr)
    return EXIT_OK
