"""Entry point: discovers the subcommand modules of this package and turns user errors into one line.

A subcommand module's top level imports no torch (its `run` does): `inceptorch --help` and every `--help` stay quick.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from .. import __version__
from ..errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="inceptorch", description="GoogLeNet / Inception family: models, training, analysis.")
    parser.add_argument("--version", action="version", version=f"inceptorch {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    package = importlib.import_module(__package__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name not in ("main",) and not info.name.startswith("_"):
            importlib.import_module(f"{__package__}.{info.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse would name the top-level parser; the subcommand is what the options belong to
        parser.exit(2, f"inceptorch {args.command}: error: unrecognized arguments: {' '.join(extra)} (see "
                       f"inceptorch {args.command} --help)\n")
    try:
        return args.func(args) or 0
    except UserError as exc:
        print(f"inceptorch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"inceptorch {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `inceptorch eval ... | head`: the reader has what it wanted; no traceback, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit would fail again
        return 141  # 128 + SIGPIPE, the shell's status for a pipe writer that was cut off
    except OSError as exc:  # a missing file, a file where a folder should be, no permission, a read-only disk
        where = f": {exc.filename}" if exc.filename else ""
        print(f"inceptorch {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
