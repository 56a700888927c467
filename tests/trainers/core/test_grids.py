"""Sweep grids: product and one-factor designs against hand-worked lists, repeated values
refused, and config flags that take one or more values."""

import argparse
import dataclasses

import pytest

from keras_models.utils.errors import UsageError
from trainers.core.config_flags import add_flags, flag, flag_values
from trainers.core.grids import expand_grid, varied


def test_product_crosses_every_value_first_option_slowest_seeds_innermost():
    options = {"lr": [0.1, 0.01], "cell": ["lstm", "gru"], "seed": [0, 1]}
    assert expand_grid(options, "product", replicate=("seed",)) == [
        {"lr": 0.1, "cell": "lstm", "seed": 0}, {"lr": 0.1, "cell": "lstm", "seed": 1},
        {"lr": 0.1, "cell": "gru", "seed": 0}, {"lr": 0.1, "cell": "gru", "seed": 1},
        {"lr": 0.01, "cell": "lstm", "seed": 0}, {"lr": 0.01, "cell": "lstm", "seed": 1},
        {"lr": 0.01, "cell": "gru", "seed": 0}, {"lr": 0.01, "cell": "gru", "seed": 1},
    ]


def test_one_factor_is_the_base_then_each_other_value_alone():
    """The report's design: base lr 2e-3, 2 layers, 256 units; each option varied in turn."""
    options = {"lr": [2e-3, 2e-4, 2e-2], "layers": [2, 1, 3], "units": [256], "seed": [7]}
    base = {"lr": 2e-3, "layers": 2, "units": 256, "seed": 7}
    assert expand_grid(options, "one-factor", replicate=("seed",)) == [
        base,
        {**base, "lr": 2e-4}, {**base, "lr": 2e-2},
        {**base, "layers": 1}, {**base, "layers": 3},
    ]
    assert varied(options, replicate=("seed",)) == ["lr", "layers"]


def test_one_factor_repeats_every_setting_for_each_seed():
    options = {"seed": [1, 2], "units": [64, 128]}
    assert expand_grid(options, "one-factor", replicate=("seed",)) == [
        {"seed": 1, "units": 64}, {"seed": 2, "units": 64},
        {"seed": 1, "units": 128}, {"seed": 2, "units": 128},
    ]


def test_a_repeated_value_is_refused_naming_the_flag():
    with pytest.raises(UsageError) as error:
        expand_grid({"lr": [0.002, 0.002], "seed": [0]}, "product", labels={"lr": "--lr"})
    assert str(error.value) == "--lr repeats 0.002; give each value once"
    with pytest.raises(UsageError, match="^unknown sweep mode 'grid'; choose one of product, "
                       "one-factor$"):
        expand_grid({"lr": [1]}, "grid")


@dataclasses.dataclass(frozen=True)
class Settings:
    rate: float = flag(0.5, help="a rate")
    width: int = flag(4, help="a width", name="--w")
    loud: bool = flag(False, help="a switch")


def _parser(**kwargs):
    parser = argparse.ArgumentParser()
    add_flags(parser, Settings, **kwargs)
    return parser


def test_several_values_per_flag_come_back_as_lists():
    parser = _parser(several=True)
    args = parser.parse_args(["--rate", "0.1", "0.2", "--loud"])
    assert flag_values(args, Settings) == {"rate": [0.1, 0.2], "width": [4], "loud": True}
    unset = _parser(several=True, defaults=False).parse_args(["--w", "3"])
    assert flag_values(unset, Settings) == {"rate": None, "width": [3], "loud": False}
    single = _parser().parse_args(["--w", "3"])  # without several: one value, as before
    assert flag_values(single, Settings) == {"rate": 0.5, "width": 3, "loud": False}
