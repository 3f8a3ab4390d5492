"""The ``evalindex`` command.

    evalindex flatten SPEC                  the normalised weights table of a spec
    evalindex sample SPEC -o OUT.jsonl      freeze a test set

Exit status: 0 on success; 2 for a usage error (argparse's own: unknown option, missing
argument); 4 for bad input (spec, data file), reported as one ``evalindex: error:`` line
without a traceback, as the pytest plugin does.

Each subcommand is a function taking the parsed arguments and returning the exit status,
registered with :func:`command` together with a function that declares its arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_evalindex.errors import EvalIndexError

EXIT_OK = 0
EXIT_BAD_INPUT = 4

Run = Callable[[argparse.Namespace], int]
Declare = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    declare: Declare
    run: Run


COMMANDS: list[Command] = []


def command(name: str, help: str, declare: Declare) -> Callable[[Run], Run]:
    """Register the decorated function as subcommand ``name``."""

    def register(run: Run) -> Run:
        COMMANDS.append(Command(name, help, declare, run))
        return run

    return register


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _warn(message: str) -> None:
    print(f"evalindex: warning: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- flatten


def _declare_flatten(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", type=Path, help="index spec (.yaml)")


@command("flatten", "print the normalised weight of every dataset of a spec", _declare_flatten)
def run_flatten(args: argparse.Namespace) -> int:
    from pytest_evalindex.spec import flatten, format_weights_table, load_spec

    print(format_weights_table(flatten(load_spec(args.spec))))
    return EXIT_OK


# --------------------------------------------------------------------------- sample


def _declare_sample(parser: argparse.ArgumentParser) -> None:
    from pytest_evalindex.sampling import SAMPLERS

    parser.add_argument("spec", metavar="SPEC", type=Path, help="index spec (.yaml)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.jsonl",
        type=Path,
        required=True,
        help="where to write the test set",
    )
    parser.add_argument(
        "--count", metavar="N", type=_non_negative_int, help="records to sample (default: spec)"
    )
    parser.add_argument("--seed", metavar="S", type=_int, help="sampling seed (default: spec)")
    parser.add_argument("--sampler", choices=SAMPLERS, help="allocation rule (default: spec)")


@command("sample", "freeze a test set sampled from a spec", _declare_sample)
def run_sample(args: argparse.Namespace) -> int:
    from pytest_evalindex.sampling import sample_index
    from pytest_evalindex.spec import load_spec
    from pytest_evalindex.testset import write_testset

    spec = load_spec(args.spec)
    result = sample_index(spec, count=args.count, seed=args.seed, sampler=args.sampler)
    write_testset(args.output, result.records, result.header)
    for warning in result.warnings:
        _warn(warning)
    datasets = len({record.dataset for record in result.records})
    print(
        f"evalindex: {len(result.records)} records from {datasets} datasets -> {args.output}",
        file=sys.stderr,
    )
    return EXIT_OK


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evalindex", description="Weighted LLM evaluation indexes: inspect and sample specs."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS:
        sub = subparsers.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.declare(sub)
        sub.set_defaults(run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except EvalIndexError as exc:
        print(f"evalindex: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return status


if __name__ == "__main__":
    raise SystemExit(main())
