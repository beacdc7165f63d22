"""convlens.lab.summary and ``convlens summary [SPEC]``."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

import convlens as cl
from convlens.cli import main
from convlens.cli import summary as cli_summary
from convlens.course import build_course_model
from convlens.errors import ConfigError
from convlens.lab import summary
from convlens.lab.spec import parse_spec

COURSE = "conv32k3s1same-relu, maxpool2, flatten, dense10-softmax"
COURSE_PARAMS = (3 * 3 * 1 * 32 + 32) + (14 * 14 * 32 * 10 + 10)
FIRST_DENSE = 784 * 25088 + 25088  # a Dense layer mapping 28*28*1 inputs to 28*28*32 outputs


def test_text_summary_of_the_course_model() -> None:
    text = summary.render(build_course_model())
    for header in ("Layer (type)", "Output shape", "Params (formula)", "MACs", "FLOPs", "Receptive field", "Jump"):
        assert header in text
    assert "(None, 28, 28, 32)" in text
    assert "3*3*1*32 + 32 = 320" in text
    assert f"{28 * 28 * 32 * 9:,}" in text  # conv MACs
    assert f"{2 * 28 * 28 * 32 * 9:,}" in text  # conv FLOPs
    assert f"Total params: {COURSE_PARAMS:,}" in text
    assert "FLOPs = 2 x MACs; one MAC = one multiply + one add" in text
    assert f"{FIRST_DENSE:,}" in text
    assert "19.7 million" in text
    assert "out = ceil(28/1) = 28, pad top 1, bottom 1" in text
    assert "\x1b[" not in text


def test_columns_are_selectable() -> None:
    model = build_course_model()
    text = summary.render(model, columns=["layer", "macs"])
    header = text.splitlines()[2]
    assert [c.strip() for c in header.strip("┃").split("┃")] == ["Layer (type)", "MACs"]
    assert summary.render(model, columns="layer, macs") == text
    with_why = summary.render(model, columns=["layer", "why", "dense_params"])
    assert "Why this shape:" not in with_why  # shown as a column instead
    assert "Versus dense:" not in with_why
    assert f"{FIRST_DENSE:,}" in with_why
    assert set(summary.DEFAULT_COLUMNS) <= set(summary.ALL_COLUMNS)


def test_every_column_renders() -> None:
    model = parse_spec("input12x12x2, conv4k3same, bn, maxpool2, gap, dense3")
    text = summary.render(model, columns=summary.ALL_COLUMNS)
    assert len(text.splitlines()[2].split("┃")) == len(summary.ALL_COLUMNS) + 2


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (["layer", "bogus"], r"summary: unknown column 'bogus'; valid columns: layer, output_shape, params,"),
        ([], r"summary: `columns` must name at least one column; valid columns: layer,"),
        (" , ", r"summary: `columns` must name at least one column"),
    ],
)
def test_bad_columns(columns: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        summary.render(build_course_model(), columns=columns)  # type: ignore[arg-type]


def test_bad_format() -> None:
    with pytest.raises(ConfigError, match=r"summary: `format` must be one of 'text', 'rich', 'markdown'"):
        summary.render(build_course_model(), fmt="pdf")


def test_json_summary() -> None:
    doc = json.loads(summary.render(build_course_model(), fmt="json"))
    assert doc["input_shape"] == [None, 28, 28, 1]
    conv, pool, _flat, dense = doc["layers"]
    assert conv["output_shape"] == [None, 28, 28, 32]
    assert conv["macs"] == 28 * 28 * 32 * 9
    assert conv["dense_params"] == FIRST_DENSE
    assert pool["receptive_field"] == [4, 4]
    assert pool["jump"] == [2, 2]
    assert dense["params"] == 14 * 14 * 32 * 10 + 10
    assert doc["totals"]["params"] == COURSE_PARAMS
    assert doc["totals"]["flops"] == 2 * doc["totals"]["macs"]
    assert "FLOPs = 2 x MACs" in doc["note"]
    narrow = json.loads(summary.render(build_course_model(), fmt="json", columns=["macs"]))
    assert set(narrow["layers"][0]) == {"name", "macs"}


def test_markdown_summary() -> None:
    text = summary.render(build_course_model(), fmt="markdown")
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert (
        rows[1]
        == "|" + "|".join("---:" if c in ("macs", "flops", "memory") else "---" for c in summary.DEFAULT_COLUMNS) + "|"
    )
    assert len(rows) == 2 + 4
    assert all(row.count(" | ") == len(summary.DEFAULT_COLUMNS) - 1 for row in rows[2:])
    assert "**Versus dense**" in text


def test_html_summary_and_jupyter() -> None:
    model = build_course_model()
    text = summary.render(model, fmt="html")
    assert text.startswith('<div class="convlens-summary"')
    assert text.count("<tr>") == 1 + 4
    assert "&#x27;same&#x27;" in text  # escaped
    assert model._repr_html_() == text
    # readable without Jupyter's stylesheet: every cell carries its own border and padding
    cells = re.findall(r"<t[dh] style=\"([^\"]*)\"", text)
    assert len(cells) == 5 * len(summary.DEFAULT_COLUMNS)
    assert all("border:1px solid" in c and "padding:" in c for c in cells)
    bundle = model._repr_mimebundle_()
    assert bundle["text/plain"] == f"<Sequential name={model.name}, built=True>"  # Keras 3's repr
    assert bundle["text/html"] == text
    unbuilt = cl.Sequential([cl.layers.Dense(2)])
    assert unbuilt._repr_mimebundle_() == {"text/plain": f"<Sequential name={unbuilt.name}, built=False>"}


def test_rich_summary_is_plain_text() -> None:
    text = summary.render(build_course_model(), fmt="rich", width=250)
    assert "Receptive field" in text
    assert f"Total params: {COURSE_PARAMS:,}" in text
    assert "\x1b[" not in text


def test_model_summary_methods(capsys: pytest.CaptureFixture[str]) -> None:
    model = build_course_model()
    model.summary(detail=True)
    assert capsys.readouterr().out.strip() == summary.render(model)
    model.summary(columns=["layer", "flops"], format="markdown")
    assert capsys.readouterr().out.strip() == summary.render(model, columns=["layer", "flops"], fmt="markdown")


# ----- the command line ------------------------------------------------------------------------


def test_cli_keeps_the_keras_table_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert f"Total params: {COURSE_PARAMS:,}" in out
    assert "MACs" not in out
    assert main(["summary", COURSE]) == 0
    assert f"Total params: {COURSE_PARAMS:,}" in capsys.readouterr().out


def test_cli_detail_is_plain_text_when_not_a_tty(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "--detail"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('Model: "sequential')
    assert "Receptive field" in out
    assert "3*3*1*32 + 32 = 320" in out
    assert "FLOPs = 2 x MACs" in out
    assert "\x1b[" not in out


def test_cli_rich_on_a_tty(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["summary", "--detail", "--kernel-size", "5"]) == 0
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "Receptive" in out
    assert f"{5 * 5 * 32 + 32 + 14 * 14 * 32 * 10 + 10:,}" in out


def test_cli_spec_formats(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["summary", "input32x32x3, conv8k3s2same, gap, dense4", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["layers"][0]["output_shape"] == [None, 16, 16, 8]
    assert doc["layers"][0]["macs"] == 16 * 16 * 8 * 3 * 3 * 3
    assert main(["summary", COURSE, "--columns", "layer,params", "--format", "markdown"]) == 0
    assert "| Layer (type) | Params |" in capsys.readouterr().out
    script = tmp_path / "net.py"
    script.write_text("from convlens.lab.spec import parse_spec\nmodel = parse_spec('input8x8x1, conv2k3, flatten')\n")
    assert main(["summary", str(script), "--detail"]) == 0
    assert "(None, 6, 6, 2)" in capsys.readouterr().out
    saved = tmp_path / "m.npz"
    build_course_model().save(saved)
    assert main(["summary", str(saved), "--columns", "layer,params_formula"]) == 0
    assert "6272*10 + 10 = 62,730" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["summary", "conv8k3, maxpoolx"], r"convlens summary: error: spec token 2 'maxpoolx': expected maxpool"),
        (["summary", "--columns", "layer,nope"], r"convlens summary: error: summary: unknown column 'nope'"),
        (["summary", "conv8k3", "--filters", "4"], r"error: --filters shape the course model and cannot be combined"),
        (["summary", "missing.py"], r"convlens summary: error: spec: no such file 'missing.py'"),
    ],
)
def test_cli_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert re.search(message, capsys.readouterr().err)


def test_cli_lists_match_the_library() -> None:
    assert cli_summary.FORMATS == summary.FORMATS
    assert tuple(c.strip() for c in cli_summary.COLUMNS.split(",")) == summary.ALL_COLUMNS
