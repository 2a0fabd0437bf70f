"""Turning usage and OS errors into the CLI's one-line messages.

typer bundles its own copy of click (``typer._click``) besides the ``click`` package a plugin may
import; `click_exception_classes` returns the exception classes of both, so ``cli.main``
catches a usage error whichever copy raised it.
"""

from __future__ import annotations

import errno
from typing import Any

__all__ = ["click_exception_classes", "is_no_args_help", "describe_usage_error", "describe_os_error"]


def _modules() -> list[Any]:
    mods = []
    for name in ("typer._click", "click"):
        try:
            mods.append(__import__(f"{name}.exceptions", fromlist=["exceptions"]))
        except ImportError:
            continue
    return mods


def click_exception_classes() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """``(usage/click errors, aborts, exits)`` of every click copy present (typer's own and ``click``)."""
    import typer

    mods = _modules()

    def collect(name: str, *extra: Any) -> tuple[type, ...]:
        found = [getattr(m, name, None) for m in mods] + [getattr(typer, name, None), *extra]
        return tuple(dict.fromkeys(c for c in found if isinstance(c, type)))

    return collect("ClickException"), collect("Abort"), collect("Exit")


def is_no_args_help(err: Any) -> bool:
    """The group was called without a command: click's way of asking to print the help."""
    return type(err).__name__ == "NoArgsIsHelpError"


def describe_usage_error(err: Any) -> str:
    """One line for a click usage error: what was wrong and where to look (``texkit <cmd> --help``)."""
    message = " ".join(str(err.format_message()).split())
    ctx = getattr(err, "ctx", None)
    path = getattr(ctx, "command_path", "") or "texkit"
    if not path.startswith("texkit"):
        path = "texkit " + path.split(" ", 1)[1] if " " in path else "texkit"
    message = message[:1].lower() + message[1:] if message else type(err).__name__
    return f"{message.rstrip('.')}; see `{path} --help`"


def describe_os_error(err: OSError) -> str:
    """One line for an OS error on a path: which path, what happened, what to do."""
    where = f" {err.filename}" if err.filename else ""
    reason = err.strerror or str(err) or type(err).__name__
    advice = {
        errno.EACCES: "check its permissions or choose another path",
        errno.EPERM: "check its permissions or choose another path",
        errno.ENOSPC: "free some disk space and run again",
        errno.EISDIR: "pass a file, not a folder",
        errno.ENOTDIR: "a part of the path is a file; choose another path",
        errno.EEXIST: "choose a path that does not exist yet",
        errno.ENOENT: "check the path",
        errno.EROFS: "choose a writable location",
    }.get(err.errno or -1, "check the path and run again")
    return f"cannot use{where}: {reason}; {advice}"
