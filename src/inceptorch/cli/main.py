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
from ..text import did_you_mean


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        # argparse would take `--epoch 3` for --epochs and `--lr-f` for whatever it abbreviates: a typo is an error.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def _check_value(self, action: argparse.Action, value) -> None:
        """argparse's check of a value against its choices (subcommands too), with the choice that was meant."""
        if action.choices is not None and value not in action.choices:
            hint = did_you_mean(value, action.choices) if isinstance(value, str) else ""  # not for numbers
            known = ", ".join(map(str, action.choices))
            raise argparse.ArgumentError(action, f"invalid choice: {value!r}{f'; {hint}' if hint else ''} "
                                                 f"(choose from {known})")
        super()._check_value(action, value)


def _unrecognized(parser: argparse.ArgumentParser, extra: list[str]) -> str:
    """`--epoch 3; did you mean --epochs?`: the arguments no option of `parser` took, and the flags that the
    mistyped ones are close to."""
    flags = [flag for action in parser._actions for flag in action.option_strings]
    typos = [word.partition("=")[0] for word in extra if word.startswith("--")]
    hints = {typo: did_you_mean(typo, flags) for typo in typos}
    hints = {typo: hint for typo, hint in hints.items() if hint}
    said = "; ".join(hint if len(hints) == 1 else f"{typo}: {hint}" for typo, hint in hints.items())
    return " ".join(extra) + (f"; {said}" if said else "")


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
    argv = sys.argv[1:] if argv is None else list(argv)
    known = [flag for action in parser._actions for flag in action.option_strings]
    if argv and argv[0].startswith("-") and argv[0].partition("=")[0] not in known:  # `inceptorch --vers`
        parser.exit(2, f"inceptorch: error: unrecognized arguments: {_unrecognized(parser, argv[:1])} (see "
                       "inceptorch --help)\n")
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse would name the top-level parser; the subcommand is what the options belong to
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
        parser.exit(2, f"inceptorch {args.command}: error: unrecognized arguments: {_unrecognized(sub, extra)} (see "
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
