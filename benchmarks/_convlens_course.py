"""convlens side of the course-model benchmarks (run in a subprocess, like the peers)."""

from __future__ import annotations

import json
import sys
import time

import convlens as cl  # before NumPy, as a user's `import convlens as cl` script or the CLI loads it

# isort: split
import numpy as np


def main() -> None:
    args = json.loads(sys.argv[1])
    cl.utils.set_random_seed(0)
    n, batch, repeats, mode = args["n"], args["batch"], args["repeats"], args["mode"]
    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n)
    model = cl.course.build_course_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    def train_epoch() -> None:
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)

    def infer() -> None:
        model.predict(x, batch_size=batch, verbose=0)

    fn = train_epoch if mode == "train" else infer
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    import resource

    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"times": times, "peak_mb": peak_kb / 1024}))


if __name__ == "__main__":
    main()
