"""`inceptorch ARGS` run in the test's own process: its exit status and what it printed, as the shell would see them.

`python -m inceptorch` is `raise SystemExit(main())` (inceptorch/__main__.py): a new interpreter adds nothing but
2-3 s of torch import per call. test_cli.py runs the real entry point in a subprocess; the other CLI tests use this.
Python warnings are printed to the captured stderr under the interpreter's default filters, as a fresh process
would print them, so a test that expects one line of error also fails on a stray warning.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

from inceptorch.cli.main import main


@dataclass
class Completed:
    """The fields of `subprocess.CompletedProcess` that the tests read."""
    returncode: int
    stdout: str
    stderr: str


def _default_filters() -> None:
    """Python's own warning filters (what `python -m` starts with), not pytest's."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)


def cli_in_process(*args: str) -> Completed:
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        _default_filters()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's errors and --help
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    shown = "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught)
    return Completed(code, out.getvalue(), shown + err.getvalue())


def one_line_error(proc: Completed) -> str:
    """The stderr of a command that failed as bad input should: exit status 2, one line, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr
