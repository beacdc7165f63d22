"""The widgets' front-end code and styles, built once from the package's files (see :mod:`convlens.lab.jsbundle`)."""

from __future__ import annotations

from pathlib import Path

from convlens.lab.jsbundle import draw_css, esm

__all__ = ["STATIC", "widget_css", "widget_esm"]

#: The widgets' own entry modules and stylesheet.
STATIC = Path(__file__).resolve().parent / "static"


def widget_esm(entry: str) -> str:
    """The ES module for anywidget's ``_esm``: ``static/<entry>`` with the drawing modules it imports inlined."""
    return esm(STATIC / entry)


def widget_css() -> str:
    """The drawing modules' stylesheet (variables scoped to ``.convlens-widget``) and the widgets' layout."""
    return draw_css(".convlens-widget") + "\n" + (STATIC / "widget.css").read_text(encoding="utf-8")
