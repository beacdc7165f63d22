"""Start-up cost: `import convlens` and `convlens --help` (targets 0.3 s and 0.5 s).

Usage: python benchmarks/startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import machine, table


def _time(cmd: list[str], repeats: int = 7) -> float:
    subprocess.run(cmd, check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    python = sys.executable
    script = Path(python).with_name("convlens")
    rows = [
        ["python -c pass (interpreter alone)", f"{_time([python, '-c', 'pass']):.3f}", "-"],
        ["python -c 'import convlens'", f"{_time([python, '-c', 'import convlens']):.3f}", "0.3"],
        [
            "python -c 'import convlens.models' (engine loaded)",
            f"{_time([python, '-c', 'import convlens.models']):.3f}",
            "-",
        ],
        ["convlens --help", f"{_time([str(script), '--help']):.3f}", "0.5"],
    ]
    print(f"Start-up, median of 7 runs; {machine()}")
    print(table(["command", "seconds", "target"], rows))


if __name__ == "__main__":
    main()
