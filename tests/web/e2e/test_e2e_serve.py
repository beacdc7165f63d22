"""`convlens serve` as a user runs it: prints its URL, serves the page, stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_ctrl_c_stops_the_server_with_a_job_and_a_stream_open(lab_dirs: tuple[Path, Path]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    models, sweeps = lab_dirs
    command = [sys.executable, "-m", "convlens", "serve", "--port", str(port), "--models", str(models),
               "--sweeps", str(sweeps)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith(f"convlens serve: http://127.0.0.1:{port}/"), line
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                page = urllib.request.urlopen(url + "/").read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "<title>convlens lab</title>" in page
        body = json.dumps({"train_limit": 5000, "epochs": 50, "filters": 4}).encode()
        request = urllib.request.Request(url + "/api/train", data=body, headers={"Content-Type": "application/json"})
        assert json.loads(urllib.request.urlopen(request).read())["job"] == 1
        events: list[bytes] = []
        stream = urllib.request.urlopen(url + "/api/train/events")
        reader = threading.Thread(target=lambda: events.extend(stream), daemon=True)
        reader.start()
        while not any(b"event: progress" in e for e in events) and time.monotonic() < deadline:
            time.sleep(0.1)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "convlens serve: stopped." in out
    assert "Traceback" not in err, err
    assert "ERROR" not in err, err
    reader.join(5)
    assert any(b'"state":"stopped"' in e for e in events)  # the stream heard the job end before it closed
