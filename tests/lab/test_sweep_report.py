"""Reports: the Pareto front, tables sorted by accuracy, the HTML page with plots and thumbnails, the CLI."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from convlens.cli import main
from convlens.errors import ConfigError
from convlens.lab.sweep.report import pareto_front, ranked, to_csv, to_html, to_markdown, write_report
from convlens.lab.sweep.store import ResultStore


def _slow_pareto(costs: list[float], accs: list[float]) -> list[int]:
    """Obviously right: i is on the front when no j is at least as good in both and better in one."""
    return sorted(
        (
            i
            for i in range(len(costs))
            if not any(
                costs[j] <= costs[i] and accs[j] >= accs[i] and (costs[j] < costs[i] or accs[j] > accs[i])
                for j in range(len(costs))
            )
        ),
        key=lambda i: (costs[i], i),
    )


def test_pareto_front_small_cases() -> None:
    assert pareto_front([], []) == []
    assert pareto_front([5], [0.1]) == [0]
    # (1, .5) and (2, .9) are the front; (3, .8) costs more than (2, .9) for less; (2, .4) loses to (1, .5).
    assert pareto_front([1, 2, 3, 2], [0.5, 0.9, 0.8, 0.4]) == [0, 1]
    assert pareto_front([1, 1], [0.5, 0.5]) == [0, 1]  # equal points: neither beats the other
    assert pareto_front([1, 2], [0.5, 0.5]) == [0]  # same accuracy for more cost is beaten
    with pytest.raises(ConfigError, match=r"pareto_front: got 2 costs but 1 accuracies"):
        pareto_front([1, 2], [0.5])


def test_pareto_front_matches_the_slow_definition() -> None:
    import random

    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 12)
        costs = [float(rng.randint(0, 5)) for _ in range(n)]
        accs = [rng.randint(0, 5) / 5 for _ in range(n)]
        assert sorted(pareto_front(costs, accs)) == sorted(_slow_pareto(costs, accs))


@pytest.fixture(scope="module")
def results_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("sweep") / "results.db"
    code = main(
        [
            "sweep", "run", "--kernel-size", "3,5", "--padding", "same,valid", "--conv-blocks", "1,3",
            "--filters", "4", "--train-limit", "256", "--test-limit", "128", "--workers", "0", "--db", str(db),
        ]
    )  # fmt: skip
    assert code == 0
    return db


def _trials(db: Path) -> list[dict[str, Any]]:
    with ResultStore(db, create=False) as store:
        return store.trials()


def test_sweep_recorded_every_config_and_the_invalid_one(results_db: Path) -> None:
    trials = _trials(results_db)
    assert len(trials) == 8
    invalid = [t for t in trials if t["status"] == "INVALID"]
    # 'valid' 5x5, three blocks: 28 -> 24, pool 12; -> 8, pool 4; the third 5x5 conv cannot fit a 4x4 map.
    assert [(t["config"]["kernel_size"], t["config"]["padding"], t["config"]["conv_blocks"]) for t in invalid] == [
        (5, "valid", 3)
    ]
    assert "does not fit" in invalid[0]["reason"]


def test_csv_and_markdown_are_sorted_by_accuracy(results_db: Path) -> None:
    trials = _trials(results_db)
    rows = list(csv.DictReader(io.StringIO(to_csv(trials))))
    assert len(rows) == 8
    accs = [float(r["test_accuracy"]) for r in rows if r["status"] == "OK"]
    assert accs == sorted(accs, reverse=True)
    assert [r["status"] for r in rows][-1] == "INVALID"
    assert "does not fit" in rows[-1]["reason"]
    lines = to_markdown(trials).splitlines()
    assert lines[0].startswith("| rank | kernel_size | padding | conv_blocks | params | MACs | RF |")
    md_accs = [float(line.split("|")[-3].strip().rstrip("%")) for line in lines[2:] if "| OK |" in line]
    assert md_accs == sorted(md_accs, reverse=True)
    assert len(md_accs) == 7
    assert [t["status"] for t in ranked(trials)] == ["OK"] * 7 + ["INVALID"]


def test_html_has_plots_and_thumbnails(results_db: Path, tmp_path: Path) -> None:
    trials = _trials(results_db)
    page = to_html(trials)
    # One embedded figure plus one feature-map thumbnail per trained trial.
    assert page.count('src="data:image/png;base64,') == 1 + 7
    assert 'alt="accuracy vs cost, Pareto front"' in page
    assert page.count('<tr class="ok">') == 7
    assert '<tr class="invalid">' in page
    out = tmp_path / "report.html"
    assert main(["sweep", "report", str(results_db), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    png = tmp_path / "plots.png"
    assert main(["sweep", "report", str(results_db), "-o", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")


def test_report_cli_table_and_errors(results_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "report", str(results_db), "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["rank", "kernel_size"]
    assert "INVALID" in out.splitlines()[-1]
    assert main(["sweep", "report", str(tmp_path / "none.db")]) == 2
    assert "no results database at" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"the html format needs an output file"):
        write_report(_trials(results_db), "html")


def test_run_cli_refuses_a_rerun_without_resume_and_resume_runs_nothing(
    results_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = [
        "sweep", "run", "--kernel-size", "3,5", "--padding", "same,valid", "--conv-blocks", "1,3",
        "--filters", "4", "--train-limit", "256", "--test-limit", "128", "--workers", "0", "--db", str(results_db),
    ]  # fmt: skip
    assert main(flags) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main([*flags, "--resume"]) == 0
    assert "8 trials (8 already done)" in capsys.readouterr().out
    assert len(_trials(results_db)) == 8


def test_dry_run_lists_the_sampled_grid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "run", "--kernel-size", "3,5,7", "--strides", "1,2", "--sample", "4", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    assert lines[-1].startswith("4 trials (sweep ")
    assert all(line.startswith("kernel_size=") for line in lines[:4])


def test_a_sweep_on_other_data_names_it() -> None:
    trial = {"status": "OK", "test_accuracy": 0.8, "params": 10, "macs": 5, "receptive_field": [4, 4]}
    fashion = [{**trial, "config": {"dataset": "fashion_mnist", "kernel_size": k}} for k in (3, 5)]
    assert to_markdown(fashion).splitlines()[0].startswith("| rank | dataset | kernel_size | params |")
    mnist = [{**trial, "config": {"dataset": "mnist", "kernel_size": k}} for k in (3, 5)]
    assert to_markdown(mnist).splitlines()[0].startswith("| rank | kernel_size | params |")
