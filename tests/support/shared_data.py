"""The official data files in ../shared (beside the repository; CI checks it out there too)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def shared_copy(name: str) -> Path:
    """The shared official files of data set ``name`` (a folder of SHARED); a failure under CI=true, else a skip."""
    directory = SHARED / name
    if not directory.is_dir():
        message = f"the shared copy of {name} is missing: expected {directory}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return directory
