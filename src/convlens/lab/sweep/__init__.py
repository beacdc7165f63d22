"""Sweeps: train many small CNNs over a grid of settings, store each trial in SQLite, report.

The pieces, each in its own module:

- :mod:`~convlens.lab.sweep.grid`: the grid (command-line lists or a TOML file), expanded into
  :class:`~convlens.lab.sweep.grid.TrialConfig` objects, optionally a seeded random subset;
- :mod:`~convlens.lab.sweep.trial`: build, train and evaluate one configuration (never raises);
- :mod:`~convlens.lab.sweep.store`: the SQLite results database (one committed row per finished trial);
- :mod:`~convlens.lab.sweep.executors`: a local process pool or a Dask cluster, results written by the driver;
- :mod:`~convlens.lab.sweep.report`: tables (terminal, CSV, Markdown) and an HTML page with plots;
- :mod:`~convlens.lab.sweep.progress`: a live bar with the best result so far.

Nothing heavy is imported here; ``import convlens.lab.sweep`` stays cheap.
"""

from __future__ import annotations
