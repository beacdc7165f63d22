"""README.md's examples run as written."""

from __future__ import annotations

import doctest
import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
COURSE_PARAMS = (3 * 3 * 1 * 32 + 32) + (14 * 14 * 32 * 10 + 10)


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.DOTALL)


@pytest.mark.slow
def test_course_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text(encoding="utf-8")
    marker = "<!-- readme-example -->"
    assert marker in text
    code = _python_blocks(text.split(marker, 1)[1])[0]
    assert "model.fit(" in code
    assert "model.summary()" in code
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)  # the README's code, unchanged
    out = capsys.readouterr().out
    assert f"Total params: {COURSE_PARAMS:,}" in out
    assert "│ conv2d" in out
    assert "(None, 28, 28, 32)" in out
    model = namespace["model"]
    _loss, accuracy = model.evaluate(namespace["x_test"][..., None] / 255.0, namespace["y_test"], verbose=0)
    # Observed 0.955 (one epoch on all of MNIST at batch 128); Keras reports about the same.
    assert accuracy >= 0.94
    assert set(namespace["history"].history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_summary_shown_in_readme_is_what_summary_prints(capsys: pytest.CaptureFixture[str]) -> None:
    import convlens as cl
    from convlens.layers.base import reset_name_counters

    text = README.read_text(encoding="utf-8")
    shown = re.search(r"`model.summary\(\)` prints:\n\n```\n(.*?)```", text, re.DOTALL)
    assert shown is not None
    reset_name_counters()
    model = cl.course.build_course_model()
    model.name = "sequential"
    model.summary()
    assert capsys.readouterr().out.strip() == shown.group(1).strip()


def test_interactive_examples() -> None:
    """Every ``>>>`` block of the README (the API section's geometry example) passes doctest."""
    blocks = [b for b in _python_blocks(README.read_text(encoding="utf-8")) if ">>>" in b]
    assert blocks
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for i, block in enumerate(blocks):
        runner.run(parser.get_doctest(block, {}, f"README block {i}", str(README), 0))
    results = runner.summarize(verbose=False)
    assert results.attempted >= 3
    assert results.failed == 0
