"""``convlens serve``: the browser lab (playground, inspector, live training, experiments) on localhost."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from convlens import switches
from convlens.cli._common import positive_int


def add_parser(sub: Any) -> None:
    """Register ``serve``."""
    p = sub.add_parser(
        "serve",
        help="open the browser lab: convolution playground, model inspector, live training, sweeps",
        description="Serve the browser lab (needs the 'web' extra: pip install 'convlens[web]'). It binds "
        "127.0.0.1 by default, works offline (no request leaves the machine), and trains the course model "
        "into the models folder on first start.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--models",
        metavar="DIR",
        default=switches.MODELS.value() or str(Path.home() / ".convlens" / "models"),
        help="folder of model files (.npz) the inspector lists and saves to "
        "(default $CONVLENS_MODELS or ~/.convlens/models)",
    )
    p.add_argument("--sweeps", metavar="DIR", default=".", help="folder of sweep databases (default: here)")
    p.add_argument("--no-course", action="store_true", help="do not train the course model when it is missing")
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")


def _missing_web() -> int:
    print(
        "convlens serve: error: the web extra is not installed; run: pip install 'convlens[web]'",
        file=sys.stderr,
    )
    return 2


def run(args: argparse.Namespace) -> int:
    """Start uvicorn; Ctrl-C stops it (and any training job) cleanly."""
    try:
        import uvicorn

        from convlens.web import create_app
    except ModuleNotFoundError:
        return _missing_web()
    local = args.host in ("127.0.0.1", "localhost", "::1")
    hosts = None if local else ["*"]
    if not local:
        print(f"convlens serve: warning: binding {args.host}: other machines can reach the lab.", file=sys.stderr)
    app = create_app(args.models, args.sweeps, train_course=not args.no_course, allowed_hosts=hosts)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port}/"
    state = app.state.lab

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            state.begin_shutdown()  # event streams end now, so the server need not wait for them
            super().handle_exit(sig, frame)

    # log_config=None: uvicorn leaves the process's logging set-up alone (its warnings still reach stderr)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", log_config=None, timeout_graceful_shutdown=5
    )
    server = Server(config)
    print(f"convlens serve: {url}  (models: {state.models.folder}; sweeps: {state.sweeps.folder}; Ctrl-C to stop)")
    if args.open:

        def open_when_up() -> None:
            import time
            import webbrowser

            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                webbrowser.open(url)

        threading.Thread(target=open_when_up, daemon=True).start()
    try:
        server.run()
    except SystemExit:  # uvicorn exits this way when it cannot bind
        pass
    except KeyboardInterrupt:  # pragma: no cover - uvicorn handles SIGINT itself
        pass
    if not server.started:
        print(f"convlens serve: error: could not listen on {args.host}:{args.port} (in use?); try --port.",
              file=sys.stderr)  # fmt: skip
        return 1
    print("convlens serve: stopped.")
    return 0
