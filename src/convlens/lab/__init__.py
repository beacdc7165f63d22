"""The lab: arithmetic, explanations, animations, visualisations and sweeps built on the engine.

Nothing in the engine (geometry, ops, layers, models) imports from here, except ``Sequential``'s
optional detailed summary, which loads :mod:`convlens.lab.summary` lazily.
"""
