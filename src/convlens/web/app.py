"""The FastAPI application: settings, security headers, error answers, routers, the static page.

* Every response carries a Content-Security-Policy that allows scripts, styles, images and connections
  from this server only (no remote host, no inline script), plus ``nosniff`` and ``no-referrer``.
* Host headers other than this server's names are refused (a web page elsewhere cannot reach the API
  through DNS rebinding).
* convlens errors become JSON ``{"detail": message, "error": class}``: ConfigError, ShapeError and
  DataError 422, StateError 409; request validation errors name the field.
* API responses carry ``Server-Timing: app;dur=<ms>`` (what ``benchmarks/web_latency.py`` reads).
* The OpenAPI description is at ``/api/openapi.json``; the interactive docs pages are off because
  they load scripts from a CDN.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from convlens.web.state import LabState
from convlens.web.store import COURSE_MODEL, ModelStore, SweepStore

__all__ = ["CSP", "LabState", "create_app"]

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_LOCAL_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def _course_job(state: LabState) -> None:
    """Train the course model in the background when the models folder lacks it (first start)."""
    from convlens.lab.live import LiveTraining
    from convlens.lab.sweep.grid import TrialConfig

    target = state.models.path(COURSE_MODEL)
    if target.exists() or not state.train_course:
        return
    job = LiveTraining(TrialConfig(epochs=1, batch_size=128, seed=0), validation_split=0.1)

    def save(finished: Any) -> None:
        if finished.state == "finished":
            state.models.save(finished.model, COURSE_MODEL)
            state.jobs.saved_as = COURSE_MODEL

    state.course_note = f"training the course model into {target} (first start)"
    state.jobs.start(job, kind="course", on_done=save)


def create_app(
    models_dir: str | os.PathLike[str] | None = None,
    sweeps_dir: str | os.PathLike[str] | None = None,
    *,
    train_course: bool = True,
    allowed_hosts: list[str] | None = None,
) -> Any:
    """Build the app.

    Args:
        models_dir: the folder of model files (default ``~/.convlens/models``); created on first save.
        sweeps_dir: the folder of sweep databases (default: the current directory).
        train_course: train ``course.npz`` in the background at start-up when the folder lacks it.
        allowed_hosts: Host header values to accept (default: loopback names).
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from convlens import __version__
    from convlens.errors import ConvlensError, StateError
    from convlens.web.routes import inspect, meta, playground, sweeps, train

    state = LabState(
        models=ModelStore(models_dir if models_dir is not None else Path.home() / ".convlens" / "models"),
        sweeps=SweepStore(sweeps_dir if sweeps_dir is not None else Path.cwd()),
        train_course=train_course,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        _course_job(state)
        yield
        state.begin_shutdown()
        state.jobs.stop_and_wait(timeout=2.0)  # a daemon thread: it cannot hold the process beyond this

    app = FastAPI(
        title="convlens lab",
        version=__version__,
        description="The browser lab's JSON API: playground traces, model inspection, live training, sweeps.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.lab = state
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or [*_LOCAL_HOSTS, "testserver"])

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        start = time.perf_counter()
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if request.url.path.startswith("/api/"):
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.2f}"
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(ConvlensError)
    async def convlens_error(request: Request, exc: ConvlensError) -> JSONResponse:
        status = 409 if isinstance(exc, StateError) else 422 if isinstance(exc, (ValueError, LookupError)) else 400
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse({"detail": "; ".join(parts), "error": "ValidationError"}, status_code=422)

    for router in (meta.router, playground.router, inspect.router, train.router, sweeps.router):
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
