"""The browser lab: ``convlens serve`` (FastAPI app, thin routers, static ES modules shipped in the package).

The page has four tabs: a convolution playground, a model inspector, live training and a sweep browser.
Every number it shows comes from :mod:`convlens.lab` (traces' ``to_dict``, :mod:`convlens.lab.inspect`,
:mod:`convlens.lab.live`, the sweep store); the handlers here only validate, call and serialise.
FastAPI and uvicorn are the optional ``web`` extra: ``pip install 'convlens[web]'``; then
``convlens serve``, or ``uvicorn.run(convlens.web.create_app())`` from Python.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """Build the FastAPI application (see :func:`convlens.web.app.create_app`)."""
    from convlens.web.app import create_app as build

    return build(*args, **kwargs)
