"""The environment switches live in one place (convlens.switches), documented in the README."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from convlens import switches

ROOT = Path(__file__).resolve().parents[1]


def test_no_module_reads_a_convlens_variable_by_its_own_name() -> None:
    # A literal "CONVLENS_..." outside convlens/switches.py would be a second place to read a switch from.
    found = []
    for path in (ROOT / "src" / "convlens").rglob("*.py"):
        if path.name == "switches.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            literal = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if literal and re.fullmatch(r"CONVLENS_[A-Z_]+", node.value):
                found.append(f"{path.relative_to(ROOT)}: {node.value}")
    assert found == []


def test_every_switch_is_documented_in_the_module_and_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for switch in switches.SWITCHES:
        assert f"``{switch.name}``" in (switches.__doc__ or "")
        assert f"`{switch.name}" in readme


@pytest.mark.parametrize(("raw", "value", "on"), [(None, "1", True), ("0", "0", False), (" 0 ", "0", False),
                                                  ("", "1", True), ("yes", "yes", True)])  # fmt: skip
def test_switch_values(raw: str | None, value: str, on: bool) -> None:
    environ = {} if raw is None else {"CONVLENS_JIT": raw}
    assert switches.JIT.value(environ) == value
    assert switches.JIT.is_on(environ) is on


def test_jit_dtypes_limit_the_compiled_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    from convlens.ops.jit import compiled_for, jit_enabled

    monkeypatch.setenv("CONVLENS_JIT_DTYPES", "float64")
    assert not compiled_for("float32")
    assert compiled_for("float64") == jit_enabled()
    monkeypatch.setenv("CONVLENS_JIT_DTYPES", "float32, float64")
    assert compiled_for("float32") == compiled_for("float64") == jit_enabled()
    assert not compiled_for("float16")


def test_compiled_for_follows_the_switches_after_answering(monkeypatch: pytest.MonkeyPatch) -> None:
    # compiled_for keeps its answers (it runs several times per layer and step); a flipped switch still counts.
    import numpy as np

    from convlens.ops import jit

    float32 = np.dtype(np.float32)
    monkeypatch.setenv("CONVLENS_JIT_DTYPES", "float32")
    monkeypatch.setenv("CONVLENS_JIT", "1")
    first = jit.compiled_for(float32)
    assert first == jit.jit_enabled() == jit.compiled_for(float32)
    monkeypatch.setenv("CONVLENS_JIT", "0")
    assert not jit.compiled_for(float32)
    monkeypatch.setenv("CONVLENS_JIT", "1")
    assert jit.compiled_for(float32) == first
    monkeypatch.setenv("CONVLENS_JIT_DTYPES", "float64")
    assert not jit.compiled_for(float32)
    assert jit.compiled_for(float32) == jit.compiled_for(np.float32) == jit.compiled_for("float32")


def test_a_switch_reads_the_live_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Switch.value reads os.environ's own dict (fast); every way of changing the environment must show at once.
    import os

    monkeypatch.delenv("CONVLENS_JIT", raising=False)
    assert switches.JIT.value() == "1"
    monkeypatch.setenv("CONVLENS_JIT", " 0 ")
    assert switches.JIT.value() == "0"
    assert not switches.JIT.is_on()
    os.environ["CONVLENS_JIT"] = "yes"
    assert switches.JIT.value() == "yes"
    del os.environ["CONVLENS_JIT"]
    assert switches.JIT.value() == "1"
    os.environ.update({"CONVLENS_JIT": "0"})
    assert switches.JIT.value() == "0"
    os.environ.pop("CONVLENS_JIT")
    assert switches.JIT.is_on()


def test_a_replaced_os_environ_is_read_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(os, "environ", {"CONVLENS_JIT": "0"})
    assert switches.JIT.value() == "0"
    monkeypatch.setattr(os, "environ", {})
    assert switches.JIT.value() == "1"
