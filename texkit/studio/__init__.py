"""``texkit studio``: paint, refine, score and fine-tune in the browser, with the mesh in 3D.

A local web app (Gradio) on the command line's code paths: painting is ``texkit generate``'s,
scoring ``texkit score``'s, a fine-tune a ``texkit train`` process (`texkit.studio.workspace`).
Gradio comes with the optional extra (``pip install 'texkit[studio]'``); importing this package
does not import it, so the core stays importable without it, and without it ``texkit studio``
says what to install in one line.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from texkit.errors import TexkitError

__all__ = ["require_gradio", "create_app", "launch_options", "serve", "wait_until_serving", "INSTALL_HINT", "DEFAULT_WORKSPACE"]

INSTALL_HINT = "texkit studio needs Gradio, which comes with the studio extra: pip install 'texkit[studio]'"
"""The one line ``texkit studio`` prints when Gradio is not installed."""

DEFAULT_WORKSPACE = Path("texkit-studio")
"""Where uploads, paints, scores and runs go unless ``--workspace`` says otherwise."""


def require_gradio() -> ModuleType:
    """Import gradio (analytics off: the studio sends nothing anywhere).

    Raises:
        TexkitError: gradio is not installed (`INSTALL_HINT`).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError:
        raise TexkitError(INSTALL_HINT) from None
    return gradio


def create_app(config: str | Path | None = None, workspace: str | Path = DEFAULT_WORKSPACE) -> Any:
    """The studio's Gradio app (``gr.Blocks``, not launched), e.g. for a Hugging Face Space's ``app.py``.

    Args:
        config: a run config (TOML) whose settings the page starts from (device, sizes, generator
            and its options, cameras, rewards); None: texkit's defaults.
        workspace: the folder for uploads, paints, scores and fine-tune runs.

    Raises:
        TexkitError: Gradio is missing, or the config is invalid (one line).
    """
    require_gradio()
    from texkit.config import load_config
    from texkit.studio.app import build_app
    from texkit.studio.workspace import Studio

    studio = Studio(load_config(config), Path(workspace))
    app = build_app(studio)
    app.studio = studio  # for serve(): stop a running fine-tune on the way out
    return app


def launch_options(workspace: str | Path) -> dict[str, Any]:
    """The keyword arguments of ``launch()`` the studio needs besides the address.

    The workspace's files may be served, the page's style (`texkit.studio.app.STUDIO_CSS`), no
    server-side rendering (it needs Node), errors only as the studio's one-line messages.
    """
    from texkit.studio.app import STUDIO_CSS

    return {
        "allowed_paths": [str(Path(workspace).resolve())],
        "css": STUDIO_CSS,
        "ssr_mode": False,
        "show_error": False,
        "quiet": True,
        "footer_links": ["api"],
    }


def wait_until_serving(log: str | Path, timeout: float = 300.0, alive: Callable[[], bool] = lambda: True) -> str:
    """Wait until a ``texkit studio`` whose output goes to ``log`` serves its page; return its URL.

    For scripts and tests that start the studio as a process (``--port 0`` picks a free port, which
    its first line names).

    Args:
        log: the file the process's output goes to.
        timeout: seconds to wait.
        alive: False once the process has ended (stop waiting).

    Raises:
        TimeoutError: no page within ``timeout`` (or the process ended), with the log's end.
    """
    import re
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline and alive():
        text = Path(log).read_text(encoding="utf-8", errors="replace") if Path(log).exists() else ""
        found = re.search(r"texkit studio on (http://\S+) ", text)
        if found:
            try:
                with urllib.request.urlopen(found.group(1), timeout=10) as page:
                    if page.status == 200:
                        return found.group(1)
            except OSError:
                pass
        time.sleep(0.5)
    raise TimeoutError(f"texkit studio served no page within {timeout:.0f} s; its output ends with: {text[-2000:]}")


def _free_port(host: str, port: int) -> int:
    """``port`` when it can be bound on ``host`` (0: any free port).

    Raises:
        TexkitError: the port is taken or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            reason = "is in use" if port else f"cannot be bound ({err.strerror or err})"
            raise TexkitError(f"port {port} on {host} {reason}; pass --port with a free port (0 picks one)") from None
        return int(probe.getsockname()[1])


def serve(
    config: str | Path | None = None,
    workspace: str | Path = DEFAULT_WORKSPACE,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    say: Callable[[str], None] = print,
) -> None:
    """Start the studio and serve it until Ctrl-C (or SIGTERM); a running fine-tune is stopped first (checkpoints kept).

    Args:
        config: the base run config (see `create_app`).
        workspace: the workspace folder.
        host: the address to listen on (``0.0.0.0`` for every interface).
        port: the port (0: any free one).
        share: also serve through a temporary public Gradio link.
        say: where the one-line address goes.

    Raises:
        TexkitError: Gradio missing, a bad config, or the port taken (one line).
    """
    require_gradio()
    port = _free_port(host, port)  # before building anything: a taken port is one line at once
    app = create_app(config, workspace)
    previous = signal.getsignal(signal.SIGTERM)

    def terminate(signum: int, frame: Any) -> None:  # SIGTERM ends the server like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    # a shell starts background jobs with Ctrl-C ignored, and fine-tune processes would inherit that: take it back
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        studio = app.studio
        say(f"texkit studio on http://{host}:{port} (workspace {studio.workspace}); Ctrl-C stops it")
        app.queue(default_concurrency_limit=None).launch(server_name=host, server_port=port, share=share, **launch_options(studio.workspace))
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        run = getattr(app, "studio", None) and app.studio.fine_tune
        if run is not None and run.active:
            say(f"stopping fine-tune {run.name} (its checkpoints are kept)")
            run.stop()
            run.wait(60)
