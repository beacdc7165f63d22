"""The sweep grid: parsing axes, TOML, expansion order, seeded sampling, config hashes."""

from __future__ import annotations

import pytest

from convlens.errors import ConfigError
from convlens.lab.sweep.grid import DEFAULTS, TrialConfig, expand, grid_from_toml, parse_axis, sample


def test_parse_axis_comma_list_dedupes_and_types() -> None:
    assert parse_axis("kernel-size", "3,5,3,7") == [3, 5, 7]
    assert parse_axis("padding", "same, VALID") == ["same", "valid"]
    assert parse_axis("learning_rate", "default,0.01") == [None, 0.01]
    assert parse_axis("strides", [1, 2]) == [1, 2]
    assert parse_axis("epochs", 2) == [2]


@pytest.mark.parametrize(
    ("axis", "value", "match"),
    [
        ("kernel_size", "3,0", r"axis `kernel_size` value '0' is not valid \(must be >= 1\)"),
        ("padding", "full", r"axis `padding` value 'full' is not valid \(must be one of \['same', 'valid'\]\)"),
        ("pooling", "min", r"axis `pooling` value 'min'"),
        ("learning_rate", "-1", r"axis `learning_rate` value '-1' is not valid"),
        ("dilation", "2", r"unknown axis 'dilation'"),
        ("strides", "", r"axis `strides` needs at least one value"),
        ("epochs", [True], r"axis `epochs` got a boolean True"),
    ],
)
def test_parse_axis_rejects(axis: str, value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_axis(axis, value)  # type: ignore[arg-type]


def test_expand_is_the_product_in_axis_order_with_defaults() -> None:
    configs = expand({"padding": ["same", "valid"], "kernel_size": [3, 5], "strides": [1, 2], "train_limit": [64]})
    assert len(configs) == 8
    assert [(c.kernel_size, c.strides, c.padding) for c in configs[:3]] == [
        (3, 1, "same"),
        (3, 1, "valid"),
        (3, 2, "same"),
    ]
    assert all(c.train_limit == 64 and c.filters == DEFAULTS["filters"] == 32 for c in configs)
    assert len({c.config_hash() for c in configs}) == 8


def test_expand_rejects_several_limits_and_unknown_axes() -> None:
    with pytest.raises(ConfigError, match=r"`train_limit` takes one value for the whole sweep, got \[1, 2\]"):
        expand({"train_limit": [1, 2]})
    with pytest.raises(ConfigError, match=r"unknown axis 'colour'"):
        expand({"colour": ["red"]})


def test_config_hash_is_stable_and_round_trips() -> None:
    config = TrialConfig(kernel_size=5, learning_rate=0.01)
    assert config.config_hash() == TrialConfig.from_dict(config.to_dict()).config_hash()
    assert config.config_hash() != TrialConfig(kernel_size=5).config_hash()
    with pytest.raises(ConfigError, match=r"unknown trial setting\(s\) \['bogus'\]"):
        TrialConfig.from_dict({"bogus": 1})


def test_sample_is_seeded_ordered_subset() -> None:
    configs = expand({"kernel_size": [1, 2, 3, 4, 5, 6, 7, 8]})
    first, again = sample(configs, 3, seed=4), sample(configs, 3, seed=4)
    assert first == again
    assert len(first) == 3
    positions = [configs.index(c) for c in first]
    assert positions == sorted(positions)
    assert sample(configs, None) == configs
    assert sample(configs, 100) == configs
    with pytest.raises(ConfigError, match=r"`sample` must be a positive integer, got 0"):
        sample(configs, 0)


def test_grid_from_toml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "grid.toml"
    path.write_text('[grid]\nkernel-size = [3, 5]\npadding = "valid"\ntrain_limit = 128\n')
    grid = grid_from_toml(path)
    assert grid == {"kernel_size": [3, 5], "padding": ["valid"], "train_limit": [128]}
    bad = tmp_path / "bad.toml"
    bad.write_text("kernel_size = [3,\n")
    with pytest.raises(ConfigError, match=r"is not valid TOML"):
        grid_from_toml(bad)
    with pytest.raises(ConfigError, match=r"cannot read the grid file"):
        grid_from_toml(tmp_path / "missing.toml")


def test_dataset_axis() -> None:
    assert parse_axis("dataset", "mnist, fashion_mnist,cifar10") == ["mnist", "fashion_mnist", "cifar10"]
    with pytest.raises(
        ConfigError,
        match=r"^sweep: axis `dataset` value 'imagenet' is not valid \(must be one of \['mnist', 'fashion_mnist', "
        r"'cifar10'\]\)\.$",
    ):
        parse_axis("dataset", "imagenet")
    configs = expand({"dataset": ["mnist", "fashion_mnist"], "kernel_size": [3, 5]})
    assert [(c.dataset, c.kernel_size) for c in configs] == [
        ("mnist", 3),
        ("mnist", 5),
        ("fashion_mnist", 3),
        ("fashion_mnist", 5),
    ]


def test_mnist_configurations_keep_the_hashes_recorded_before_the_dataset_axis() -> None:
    # Digests computed with the grid module as it was before `dataset` existed: old sweep files still resume.
    assert TrialConfig().config_hash() == "0f98515ef7ee9f3b"
    assert TrialConfig(kernel_size=5, strides=2, train_limit=2000).config_hash() == "2a79fd8ecc58aeda"
    assert TrialConfig(dataset="fashion_mnist").config_hash() != TrialConfig().config_hash()
