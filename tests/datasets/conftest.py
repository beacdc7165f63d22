"""Helpers for the data-set tests: the shared official files, synthetic IDX sets, a loopback HTTP server."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from convlens.datasets import sources
from convlens.datasets.idx import write_idx
from tests.support.shared_data import shared_copy

__all__ = ["Server", "shared_copy", "synthetic_idx_set"]


def synthetic_idx_set(directory: Path, seed: int, n_train: int = 6, n_test: int = 4) -> dict[str, str]:
    """Write four small gzipped IDX files; return the SHA-256 of each one's uncompressed bytes."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = [
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    ]
    hashes = {}
    for stem, array in zip(sources.IDX_FILES, arrays, strict=True):
        path = write_idx(directory / f"{stem}.gz", array)
        hashes[stem] = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    return hashes


@pytest.fixture(autouse=True)
def _isolated_search(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's $CONVLENS_DATA, the Debian directory or the real download cache."""
    root = tmp_path_factory.mktemp("isolated")
    monkeypatch.delenv("CONVLENS_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    monkeypatch.setattr(sources, "DEBIAN_ROOT", root / "debian")


@dataclass
class Server:
    """A loopback HTTP server over one directory; ``requests`` lists the paths asked for."""

    url: str
    root: Path
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[Server]:
    """Serve ``tmp_path / "www"`` on 127.0.0.1 (an ephemeral port) for the download tests."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{server.server_address[1]}/", root, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
