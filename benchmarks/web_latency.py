"""The browser lab's latency targets, measured against a real server on localhost.

- playground step: POST /api/playground (the whole trace; the page then steps without the server),
  for the README's 5x5 example and for a 28x28 MNIST digit (784 steps): target < 50 ms at the server;
- inspector forward: POST /api/forward on the course model with every feature map: target < 200 ms;
- first page load: Chromium, a fresh profile each time, from navigation to the playground drawn: < 1 s;
- live training: images/s of a run started through the API (with a page-like event stream attached)
  against `convlens train`'s own fit (same model, data, batch, validation split), alternating in one
  process so that each pair sees the same machine load: target >= 90%.

"At the server" is the ``Server-Timing`` header (the handler and the JSON encoding); the round trip
through urllib is printed beside it. The latency rows use an untrained course model (the time depends
on shapes, not on weight values).

Usage: python benchmarks/web_latency.py [--repeats 20] [--rounds 5] [--images 20000] [--skip-train]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from _common import machine, table

CHROMIUM = "/usr/bin/chromium"


class Server:
    """The app in a uvicorn thread on a free port."""

    def __init__(self, models: Path, sweeps: Path) -> None:
        import uvicorn

        from convlens.web import create_app

        self.app = create_app(models, sweeps, train_course=False)
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", log_config=None)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def call(self, path: str, body: Any = None) -> tuple[float, float, bytes]:
        """(server ms from Server-Timing, round-trip ms, body bytes)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        start = time.perf_counter()
        with urllib.request.urlopen(request) as response:
            payload = response.read()
            timing = response.headers.get("Server-Timing", "app;dur=nan")
        total = (time.perf_counter() - start) * 1000
        return float(timing.split("dur=")[1]), total, payload

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def course_model(folder: Path) -> None:
    from convlens.course import build_course_model
    from convlens.utils import set_random_seed

    set_random_seed(0)
    model = build_course_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(folder / "course.npz")


def latency_rows(server: Server, repeats: int) -> list[list[str]]:
    cases = [
        ("playground step: 5x5 input, 3x3 kernel (9 steps)", "/api/playground",
         {"input": {"kind": "numbers", "numbers": [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0],
                                                    [0, 1, 1, 0, 0]]}, "kernel": [[1, 0, 1], [0, 1, 0], [1, 0, 1]]},
         50.0),
        ("playground step: 28x28 digit, sobel_x, 'same' + padding comparison (784 steps)", "/api/playground",
         {"input": {"kind": "dataset", "index": 7}, "kernel": "sobel_x", "padding": "same"}, 50.0),
        ("inspector forward: course model, probabilities + every feature map", "/api/forward",
         {"model": "course.npz", "input": {"kind": "dataset", "index": 7}}, 200.0),
    ]  # fmt: skip
    rows = []
    for name, path, body, target in cases:
        for _ in range(3):
            server.call(path, body)  # warm: imports, dataset load, compiled kernels
        samples = [server.call(path, body) for _ in range(repeats)]
        at_server = statistics.median(s[0] for s in samples)
        round_trip = statistics.median(s[1] for s in samples)
        size = len(samples[0][2]) / 1024
        rows.append([name, f"{at_server:.1f}", f"{round_trip:.1f}", f"{size:,.0f}", f"< {target:.0f}",
                     "yes" if at_server < target else "NO"])  # fmt: skip
    return rows


def page_load_row(server: Server, repeats: int) -> list[str]:
    """Navigation to the playground drawn (body[data-pg-state=ready]) in a fresh Chromium profile each time."""
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        return ["first page load (Chromium)", "-", "-", "-", "< 1000", "playwright missing"]
    if not Path(CHROMIUM).exists():
        return ["first page load (Chromium)", "-", "-", "-", "< 1000", f"{CHROMIUM} missing"]
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]  # fmt: skip
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        for i in range(repeats + 1):
            context = browser.new_context()  # empty cache: every file fetched
            page = context.new_page()
            page.goto(server.url + "/")
            page.wait_for_selector("body[data-pg-state='ready']", state="attached")
            elapsed = page.evaluate("() => performance.now()")
            if i:  # the first launch warms Chromium itself
                times.append(elapsed)
            context.close()
        browser.close()
    median = statistics.median(times)
    return ["first page load: navigation to the playground drawn, empty cache (Chromium)", "-", f"{median:.0f}", "-",
            "< 1000", "yes" if median < 1000 else "NO"]  # fmt: skip


# ----- training throughput ------------------------------------------------------------------------------------
def _fit_rate(x: Any, y: Any) -> float:
    """`convlens train`'s fit (convlens.course: build_course_model + compile + fit), images/s around fit."""
    from convlens.course import build_course_model
    from convlens.utils import set_random_seed

    set_random_seed(0)
    model = build_course_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=128, validation_split=0.1, verbose=0)
    return (len(x) - len(x) // 10) / (time.perf_counter() - start)


def _live_rate(server: Server, images: int) -> float:
    """The same run started through the API with an event stream read as the page reads it: images/s from
    fit's start (the job's 'running' state) to its epoch end, the same span as ``_fit_rate`` times."""
    slot = server.app.state.lab.jobs
    marks: dict[str, float] = {}
    record = slot.record

    def timed(event: dict[str, Any]) -> None:
        if event.get("state") == "running" or event.get("type") == "epoch":
            marks.setdefault(event.get("state") or "epoch", time.perf_counter())
        record(event)

    slot.record = timed  # type: ignore[method-assign]
    body = {"train_limit": images, "test_limit": 1000, "batch_size": 128, "epochs": 1, "validation_split": 0.1}
    try:
        job = json.loads(server.call("/api/train", body)[2])["job"]
        with urllib.request.urlopen(f"{server.url}/api/train/events?job={job}") as stream:
            for line in stream:  # a page-like reader: every event decoded
                if line.startswith(b"data: "):
                    json.loads(line[6:])
    finally:
        slot.record = record  # type: ignore[method-assign]
    return (images - images // 10) / (marks["epoch"] - marks["running"])


def overhead_share(images: int) -> tuple[float, float]:
    """The work live training adds, timed inside one run (so other jobs on the machine barely change it):
    the callback between batches (clock, progress, first-layer maps, pause/stop checks) and the JSON
    encoding of every event (what the event stream pays), each as a share of the run's wall time."""
    from convlens.lab import live
    from convlens.lab.sweep.grid import TrialConfig

    spent = {"callback": 0.0, "encode": 0.0}
    original = live._Reporter.on_train_batch_end

    def timed(self: Any, batch: int, logs: Any = None) -> None:
        start = time.perf_counter()
        original(self, batch, logs)
        spent["callback"] += time.perf_counter() - start

    def encode(event: dict[str, Any]) -> None:
        start = time.perf_counter()
        json.dumps(event)
        spent["encode"] += time.perf_counter() - start

    live._Reporter.on_train_batch_end = timed  # type: ignore[method-assign]
    try:
        job = live.LiveTraining(TrialConfig(batch_size=128, train_limit=images, test_limit=1000), listener=encode)
        start = time.perf_counter()
        job.run()
        total = time.perf_counter() - start
    finally:
        live._Reporter.on_train_batch_end = original  # type: ignore[method-assign]
    return spent["callback"] / total, spent["encode"] / total


def train_rows(rounds: int, images: int) -> list[list[str]]:
    """Both runs alternate in one process (a server idles beside the plain fit), so each pair meets the
    same machine load; the ratio is the median of the pairs' ratios."""
    from convlens.lab import samples

    (x, y), _ = samples.arrays("mnist")  # the same float32 arrays for both
    x, y = x[:images], y[:images]
    fits, lives = [], []
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), Path(tmp))
        try:
            _fit_rate(x[:2000], y[:2000])  # warm both paths (compiled kernels, buffers)
            _live_rate(server, 2000)
            for _ in range(rounds):
                fits.append(_fit_rate(x, y))
                lives.append(_live_rate(server, images))
        finally:
            server.close()
    ratio = statistics.median(live / fit for live, fit in zip(lives, fits, strict=True))
    fit, live = statistics.median(fits), statistics.median(lives)
    callback, encode = overhead_share(images)
    return [
        ["`convlens train`'s fit (batch 128, validation 0.1)", f"{fit:,.0f}", "1.00", "-", "-"],
        ["live training through the API + event stream", f"{live:,.0f}", f"{ratio:.2f}", ">= 0.90",
         "yes" if ratio >= 0.9 else "NO"],
        [f"added work timed inside a run: callback {callback:.1%}, event JSON {encode:.1%}", "-",
         f"{1 - callback - encode:.3f}", ">= 0.90", "yes" if callback + encode <= 0.1 else "NO"],
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="training runs per side, alternating")
    parser.add_argument("--images", type=int, default=20000, help="MNIST training images per run")
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    print(f"convlens serve latency; {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        course_model(folder)
        server = Server(folder, folder)
        try:
            rows = latency_rows(server, args.repeats)
            rows.append(page_load_row(server, max(3, args.repeats // 4)))
        finally:
            server.close()
    print(table(["request", "server ms (median)", "round trip ms", "KiB", "target ms", "met"], rows))
    if not args.skip_train:
        print(f"\nTraining throughput: {args.images:,} MNIST images, 1 epoch, {args.rounds} alternating pairs, medians")
        print(table(["run", "images/s", "ratio", "target", "met"], train_rows(args.rounds, args.images)))


if __name__ == "__main__":
    main()
