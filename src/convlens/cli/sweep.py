"""``convlens sweep run`` (train a grid of CNNs into SQLite) and ``convlens sweep report DB``."""

from __future__ import annotations

import argparse
from typing import Any

from convlens.cli._common import positive_int

_AXIS_FLAGS = (
    ("dataset", "mnist, fashion_mnist and/or cifar10 (default mnist; the model's input follows the data)"),
    ("kernel-size", "square kernel sizes, e.g. 3,5,7 (default 3)"),
    ("strides", "conv strides, e.g. 1,2 (default 1)"),
    ("padding", "same and/or valid (default same)"),
    ("filters", "Conv2D filters (default 32)"),
    ("conv-blocks", "number of Conv2D(+pooling) blocks (default 1)"),
    ("pooling", "max, avg and/or none (default max)"),
    ("pool-size", "pooling windows (default 2)"),
    ("activation", "conv activations, e.g. relu,tanh (default relu)"),
    ("optimizer", "adam, sgd and/or rmsprop (default adam)"),
    ("learning-rate", "learning rates, or 'default' (default: the optimizer's)"),
    ("batch-size", "batch sizes (default 32)"),
    ("epochs", "epochs (default 1)"),
    ("seed", "seeds: each one repeats the whole grid (default 0)"),
)


def add_parser(sub: Any) -> None:
    """Register ``sweep`` with its ``run`` and ``report`` forms."""
    sweep = sub.add_parser(
        "sweep",
        help="train a grid of CNN settings on MNIST (or Fashion-MNIST, CIFAR-10) into SQLite, then report",
        description="Sweep the course's CNN over kernel size, strides, padding, ... (comma lists), storing one "
        "row per finished trial in an SQLite file; then `convlens sweep report DB`.",
    )
    forms = sweep.add_subparsers(dest="sweep_command", metavar="{run,report}", required=True)
    run_parser = forms.add_parser(
        "run",
        help="run a sweep",
        description="Every combination of the given axes is one trial (axes left out keep the course model's "
        "value). Example: convlens sweep run --kernel-size 3,5,7 --strides 1,2 --padding same,valid "
        "--train-limit 2000 --test-limit 1000 --db results.db",
    )
    axes = run_parser.add_argument_group("grid axes (comma-separated lists)")
    for flag, text in _AXIS_FLAGS:
        axes.add_argument(f"--{flag}", metavar="LIST", default=None, help=text)
    axes.add_argument("--config", metavar="TOML", default=None, help="read axes from a TOML file (flags win)")
    data = run_parser.add_argument_group("data and sampling")
    data.add_argument("--train-limit", type=positive_int, default=None, help="train on the first N images")
    data.add_argument("--test-limit", type=positive_int, default=None, help="test on the first N test images")
    data.add_argument("--sample", type=positive_int, default=None, metavar="N", help="run a random N of the grid")
    data.add_argument("--sample-seed", type=int, default=0, help="seed of --sample (default 0)")
    where = run_parser.add_argument_group("execution and results")
    where.add_argument("--executor", choices=["local", "dask"], default="local", help="default local")
    where.add_argument(
        "--workers", type=int, default=None, help="local processes (default: one per core; 0 = in this process)"
    )
    where.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://host:8786")
    where.add_argument("--db", default="results.db", help="SQLite results file (default results.db)")
    where.add_argument("--resume", action="store_true", help="skip the trials already in --db and run the rest")
    where.add_argument("--dry-run", action="store_true", help="list the trials and exit")

    report = forms.add_parser(
        "report",
        help="report a sweep's results",
        description="Rank a results database by test accuracy: a terminal table, CSV, Markdown, a PNG of the "
        "plots, or an HTML page with plots (Pareto fronts) and feature-map thumbnails.",
    )
    report.add_argument("db", metavar="RESULTS.db", help="the SQLite file `sweep run` wrote")
    report.add_argument("-o", "--output", default=None, help="output file (html/png need one)")
    report.add_argument(
        "--format",
        choices=["html", "csv", "markdown", "table", "png"],
        default=None,
        help="default: from the -o suffix (.html, .csv, .md, .png), else table",
    )
    report.add_argument("--sweep", default=None, help="only this sweep id (default: every trial in the file)")


def _grid(args: argparse.Namespace) -> dict[str, list[Any]]:
    from convlens.lab.sweep.grid import grid_from_toml, parse_axis

    grid = grid_from_toml(args.config) if args.config else {}
    for flag, _ in _AXIS_FLAGS:
        value = getattr(args, flag.replace("-", "_"))
        if value is not None:
            grid[flag.replace("-", "_")] = parse_axis(flag, value)
    for key in ("train_limit", "test_limit"):
        if getattr(args, key) is not None:
            grid[key] = [getattr(args, key)]
    return grid


def _run(args: argparse.Namespace) -> int:
    from convlens.cli._common import PROGRESS
    from convlens.errors import ConfigError
    from convlens.lab.sweep.executors import run_sweep, varying_keys
    from convlens.lab.sweep.grid import expand, sample
    from convlens.lab.sweep.progress import SweepProgress
    from convlens.lab.sweep.store import ResultStore, sweep_id_for

    if args.workers is not None and args.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {args.workers}.")
    configs = sample(expand(_grid(args)), args.sample, args.sample_seed)
    keys = varying_keys(configs)
    if args.dry_run:
        for config in configs:
            print(config.label(keys or None))
        print(f"{len(configs)} trials (sweep {sweep_id_for(configs)})")
        return 0
    done = 0
    if args.resume:
        with ResultStore(args.db) as store:
            done = len(store.finished_hashes(sweep_id_for(configs)))
    where = f"dask at {args.scheduler}" if args.executor == "dask" else f"local, workers={args.workers or 'cores'}"
    print(f"convlens sweep: {len(configs)} trials ({done} already done) over {keys or 'one setting'}; {where}")
    progress = SweepProgress(len(configs), done, keys)
    PROGRESS.finished = lambda: (
        f"{progress.done - done} trial(s) finished in this run ({progress.done} of {len(configs)} in all), each "
        f"saved in {args.db} as it finished; workers stopped; rerun with --resume for the rest"
    )
    result = run_sweep(
        configs,
        args.db,
        executor=args.executor,
        workers=args.workers,
        scheduler=args.scheduler,
        resume=args.resume,
        progress=progress,
    )
    print(f"Results in {args.db} (sweep {result.sweep_id}). Report: convlens sweep report {args.db} -o report.html")
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from convlens.lab.sweep.report import write_report
    from convlens.lab.sweep.store import ResultStore

    fmt = args.format
    if fmt is None:
        suffix = Path(args.output).suffix.lower() if args.output else ""
        fmt = {".html": "html", ".htm": "html", ".csv": "csv", ".md": "markdown", ".png": "png"}.get(suffix, "table")
    with ResultStore(args.db, create=False) as store:
        trials = store.trials(args.sweep)
    written = write_report(trials, fmt, args.output)
    if written:
        print(f"Wrote {written} ({len(trials)} trials)")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch to ``sweep run`` or ``sweep report``."""
    return _run(args) if args.sweep_command == "run" else _report(args)
