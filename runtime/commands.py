"""What the three command-line programs (runtime, trainer, export) share: --version, one-line
warnings, and the one-line message of an edge install that lacks the trainer's packages."""
from __future__ import annotations

import importlib.util
import warnings

import click


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("seq2seq-edge")
    except PackageNotFoundError:  # running from a source tree that isn't installed
        return "unknown"


def version_option():
    """--version, looked up only when asked: importlib.metadata costs ~25 ms of every cold start."""

    def show(ctx, param, value):
        if value and not ctx.resilient_parsing:
            click.echo(f"seq2seq-edge {package_version()}")
            ctx.exit()

    return click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=show,
                        help="Show the version and exit.")


def require(*modules: str, extra: str = "train") -> None:
    """For the trainer and exporter: on an edge install (no torch) say which extra to install, in one
    line, instead of a traceback. Only looks the modules up; imports nothing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        note = " (an edge install translates only)" if extra == "train" else ""
        raise click.ClickException(f"this command needs {', '.join(missing)}, which this install lacks{note}: "
                                   f"pip install 'seq2seq-edge[{extra}]'")


def one_line_warnings() -> None:
    """Library warnings (truncated input, a rebuilt cache) as one line on stderr, not Python's two."""
    warnings.showwarning = lambda msg, *a, **k: click.echo(f"warning: {msg}", err=True)
