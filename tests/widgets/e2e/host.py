"""A minimal anywidget host in Chromium: the widget's ``_esm`` imported from a blob URL (as anywidget does),
``render({model, el})`` called with a small model, and this test standing in for the kernel.

The model keeps the synced state, fires ``change:<name>`` events, and ``save_changes()`` queues the changed
values; :meth:`Host.pump` hands the queue to the Python widget (``set_state``, as ipywidgets applies a front
end's message) and sends back every synced value that then differs, as the kernel's echo would.
"""

from __future__ import annotations

import json
from typing import Any

HOST_PAGE = """<!doctype html><html><head><meta charset="utf-8"><style id="widget-css"></style></head>
<body><div id="host"></div></body></html>"""

SHIM = """async ({ esm, css, state }) => {
  document.getElementById("widget-css").textContent = css;
  const listeners = new Map();
  const model = {
    state, outbox: [], pending: {},
    get(name) { return this.state[name]; },
    set(name, value) { this.state[name] = value; this.pending[name] = value; this.emit(name); },
    save_changes() { if (Object.keys(this.pending).length) this.outbox.push(this.pending); this.pending = {}; },
    on(event, fn) { if (!listeners.has(event)) listeners.set(event, new Set()); listeners.get(event).add(fn); },
    off(event, fn) { listeners.get(event)?.delete(fn); },
    send() {},
    emit(name) { for (const fn of listeners.get(`change:${name}`) ?? []) fn(); },
    update(values) {
      for (const [k, v] of Object.entries(values)) this.state[k] = v;
      for (const k of Object.keys(values)) this.emit(k);
    },
  };
  window.__model = model;
  const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
  const mod = await import(url);
  URL.revokeObjectURL(url);
  window.__cleanup = await mod.default.render({ model, el: document.getElementById("host") });
  return Object.keys(mod.default);
}"""

_SKIP = {"_esm", "_css"}


def _synced(widget: Any) -> dict[str, Any]:
    state = widget.get_state()
    return {k: v for k, v in json.loads(json.dumps(state)).items() if k not in _SKIP}


class Host:
    """One widget rendered on ``page``; the test drives it like a kernel would."""

    def __init__(self, page: Any, widget: Any) -> None:
        self.page = page
        self.widget = widget
        page.set_content(HOST_PAGE)
        self.sent = _synced(widget)
        self.exports = page.evaluate(SHIM, {"esm": widget._esm, "css": widget._css, "state": self.sent})

    def pump(self, timeout: float = 5000) -> list[dict[str, Any]]:
        """Wait for the view's saved changes, apply them in Python, send back what changed; returns the messages."""
        self.page.wait_for_function("window.__model.outbox.length > 0", timeout=timeout)
        messages: list[dict[str, Any]] = self.page.evaluate("window.__model.outbox.splice(0)")
        for message in messages:
            self.widget.set_state(message)
            self.sent.update(message)
        self.push()
        return messages

    def push(self) -> None:
        """Send the view every synced value that differs from what it has (after Python changed traits)."""
        now = _synced(self.widget)
        changed = {k: v for k, v in now.items() if self.sent.get(k) != v}
        if changed:
            self.page.evaluate("values => window.__model.update(values)", changed)
            self.sent.update(changed)

    def slide(self, selector: str, value: int | str) -> None:
        """Move a range or number input (or pick an option) as a user does: set it and fire its events."""
        self.page.eval_on_selector(
            selector,
            "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', { bubbles: true }));"
            " el.dispatchEvent(new Event('change', { bubbles: true })); }",
            value,
        )
