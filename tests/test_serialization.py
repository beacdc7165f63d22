"""Looking up regularizers and constraints by name, record or object (convlens.serialization.lookup)."""

from __future__ import annotations

import pytest

import convlens as cl
from convlens import constraints, regularizers
from convlens.errors import ConfigError

Dense = cl.layers.Dense


def test_names_records_and_objects_give_the_same_kind() -> None:
    l2 = regularizers.L2(0.5)
    assert regularizers.get(None) is None
    assert regularizers.get(l2) is l2
    assert isinstance(regularizers.get("l2"), regularizers.L2)
    from_record = regularizers.get(regularizers.serialize(l2))
    assert isinstance(from_record, regularizers.L2)
    assert from_record.l2 == 0.5
    max_norm = constraints.MaxNorm(2)
    assert constraints.get(max_norm) is max_norm
    assert isinstance(constraints.get("non_neg"), constraints.NonNeg)
    assert constraints.get(constraints.serialize(max_norm)).max_value == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"kernel_regularizer": "l3"},
            r"^Dense 'd': unknown `kernel_regularizer` 'l3'; use None, one of 'l1', 'l2', .*'l1_l2', or an object "
            r"such as convlens\.regularizers\.L2\(0\.01\)\.$",
        ),
        (
            {"bias_constraint": 3},
            r"^Dense 'd': unknown `bias_constraint` 3; use None, one of 'MaxNorm', .*'max_norm'.*, or an object "
            r"such as convlens\.constraints\.MaxNorm\(2\)\.$",
        ),
        (
            {"kernel_constraint": {"class_name": "Nope"}},
            r"^Dense 'd': unknown `kernel_constraint` \{'class_name': 'Nope'\}; use None",
        ),
    ],
)
def test_unknown_identifiers_name_the_layer_and_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Dense(2, name="d", **kwargs)
