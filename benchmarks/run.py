"""Run every benchmark in turn: python benchmarks/run.py [--quick]

Without PyTorch installed the scripts print absolute numbers only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = ["startup.py", "conv_ops.py", "inference.py", "train_epoch.py"]


def main() -> None:
    quick = "--quick" in sys.argv
    for script in SCRIPTS:
        args = ["--rounds", "1"] if quick and script != "startup.py" else []
        print(f"\n## {script}\n", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *args], check=True)


if __name__ == "__main__":
    main()
