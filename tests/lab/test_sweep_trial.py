"""One trial: recorded measurements, INVALID configurations with their reason, FAILED trials with the error."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from convlens.lab.sweep.grid import TrialConfig
from convlens.lab.sweep.trial import FAILED, INVALID, OK, build_model, run_trial

SMALL = {"train_limit": 128, "test_limit": 64, "filters": 4}


def test_ok_trial_records_everything() -> None:
    record = run_trial(TrialConfig(epochs=2, **SMALL))  # type: ignore[arg-type]
    assert record["status"] == OK, record["reason"]
    # 3x3 conv 1->4 = 40 params; 'same' + 2x2 pool: 14*14*4 = 784 features -> Dense(10) = 7,850.
    assert record["params"] == 40 + 7850
    assert [layer["output_shape"] for layer in record["layers"]] == [
        [None, 28, 28, 4],
        [None, 14, 14, 4],
        [None, 784],
        [None, 10],
    ]
    assert len(record["history"]["loss"]) == len(record["history"]["accuracy"]) == 2
    assert 0.0 <= record["test_accuracy"] <= 1.0
    assert record["train_time"] > 0
    assert record["seed"] == 0
    assert record["feature_png"].startswith(b"\x89PNG")
    assert record["config"]["epochs"] == 2


def test_macs_and_receptive_field_come_from_the_lab_arithmetic() -> None:
    record = run_trial(TrialConfig(**SMALL))  # type: ignore[arg-type]
    conv, pool = record["layers"][0], record["layers"][1]
    assert conv["macs"] == 28 * 28 * 4 * 3 * 3  # OH*OW*F*KH*KW*C
    assert record["layers"][3]["macs"] == 784 * 10
    assert record["macs"] == sum(layer["macs"] for layer in record["layers"])
    # A 3x3 conv then a 2x2/2 pool sees 3 + (2 - 1) * 1 = 4 input pixels per side.
    assert np.ravel(pool["receptive_field"]).tolist() in ([4], [4, 4])


def test_one_block_is_the_course_model() -> None:
    from convlens.course import build_course_model

    model = build_model(TrialConfig())
    assert model.count_params() == 63_050 == build_course_model().count_params()
    deeper = build_model(TrialConfig(conv_blocks=2, filters=8))
    assert [type(layer).__name__ for layer in deeper.layers] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense",
    ]  # fmt: skip
    assert deeper.output_shape == (None, 10)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        # 'valid' 7x7: 28 -> 22, pool -> 11; 7x7 -> 5, pool -> 2; the third 7x7 cannot fit a 2x2 map.
        ({"kernel_size": 7, "padding": "valid", "conv_blocks": 3}, r"conv2d_2'.*7x7 window does not fit the 2x2 in"),
        ({"kernel_size": 29, "padding": "valid"}, r"'valid'-padded 29x29 window does not fit the 28x28 input"),
        ({"activation": "bogus"}, r"bogus"),
    ],
)
def test_invalid_configuration_is_recorded_with_its_reason(settings: dict[str, Any], match: str) -> None:
    record = run_trial(TrialConfig(**{**SMALL, **settings}))
    assert record["status"] == INVALID
    assert record["test_accuracy"] is None
    assert record["reason"] is not None
    assert re.search(match, record["reason"])


def test_bad_optimizer_is_failed_with_the_error() -> None:
    record = run_trial(TrialConfig(optimizer="adamw-nope", **SMALL))  # type: ignore[arg-type]
    assert record["status"] == FAILED
    assert record["reason"].startswith("ConfigError: optimizers.get: unknown optimizer 'adamw-nope'")
    assert "Traceback" in record["error"]


def test_crashing_builder_is_failed_not_raised() -> None:
    def broken(config: TrialConfig) -> Any:
        raise ZeroDivisionError("boom in the builder")

    record = run_trial(TrialConfig(**SMALL).to_dict(), builder=broken)  # type: ignore[arg-type]
    assert record["status"] == FAILED
    assert record["reason"] == "ZeroDivisionError: boom in the builder"
    assert record["finished"] >= record["started"]


def test_same_seed_same_result_different_seed_differs() -> None:
    a = run_trial(TrialConfig(seed=3, **SMALL))  # type: ignore[arg-type]
    b = run_trial(TrialConfig(seed=3, **SMALL))  # type: ignore[arg-type]
    c = run_trial(TrialConfig(seed=4, **SMALL))  # type: ignore[arg-type]
    assert a["history"] == b["history"]
    assert a["test_loss"] == b["test_loss"]
    assert c["history"] != a["history"]


def test_the_model_input_follows_the_data() -> None:
    rng = np.random.default_rng(0)
    colour = (
        (rng.random((16, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 16)),
        (rng.random((8, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 8)),
    )
    record = run_trial(TrialConfig(dataset="cifar10", filters=4), data=colour)
    assert record["status"] == OK, record["reason"]
    assert record["layers"][0]["output_shape"] == [None, 32, 32, 4]
    assert record["params"] == 3 * 3 * 3 * 4 + 4 + 16 * 16 * 4 * 10 + 10
    assert record["config"]["dataset"] == "cifar10"
