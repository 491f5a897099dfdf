"""lab.search_spaces: the registry's spaces, the scales, files (JSON and TOML) and their errors."""

from __future__ import annotations

import json
import math

import pytest

from lab.registry import OPTIMIZERS
from lab.search_spaces import (
    LEARNING_RATE_RANGE,
    SEARCH_SPACES,
    Dimension,
    load_search_spaces,
    parse_search_spaces,
    space_for,
    space_to_dict,
)

pytestmark = pytest.mark.backend_agnostic


def test_every_registry_name_has_a_space_with_the_wide_learning_rate():
    assert set(SEARCH_SPACES) == set(OPTIMIZERS)
    for name, space in SEARCH_SPACES.items():
        rate = space[0]
        assert (rate.name, rate.low, rate.high, rate.scale) == ("learning_rate", 1e-5, 10.0, "log"), name
        assert len(space) <= 3  # the rate plus the one or two that matter
    assert [d.name for d in SEARCH_SPACES["momentum"]] == ["learning_rate", "momentum"]
    assert [d.name for d in SEARCH_SPACES["adam"]] == ["learning_rate", "beta_1", "beta_2"]
    assert [d.name for d in SEARCH_SPACES["sgd"]] == ["learning_rate"]


def test_scales_map_the_sampled_value_to_the_hyperparameter():
    rate = Dimension("learning_rate", *LEARNING_RATE_RANGE, scale="log")
    assert rate.sampled_name == "learning_rate" and rate.sampled_range() == (1e-5, 10.0, True)
    assert rate.value(0.3) == 0.3
    beta = Dimension("beta_1", 0.5, 0.999, scale="log_one_minus")
    assert beta.sampled_name == "one_minus_beta_1"
    low, high, log = beta.sampled_range()
    assert (low, high, log) == (pytest.approx(0.001), 0.5, True)
    assert beta.value(0.1) == pytest.approx(0.9) and beta.value(low) == pytest.approx(0.999)
    linear = Dimension("rho", 0.1, 0.2, scale="linear")
    assert linear.sampled_range() == (0.1, 0.2, False)


def test_a_spec_fixes_what_it_overrides_and_an_import_path_tunes_the_rate():
    assert [d.name for d in space_for("adam:beta_2=0.99")] == ["learning_rate", "beta_1"]
    assert [d.name for d in space_for("keras:Adam")] == ["learning_rate"]
    with pytest.raises(ValueError, match="nothing to tune"):
        space_for("sgd:learning_rate=0.1")


def test_files_in_json_and_toml_replace_the_space_of_the_optimizers_they_name(tmp_path):
    data = {"adam": {"learning_rate": {"low": 1e-4, "high": 1.0}, "beta_1": {"low": 0.8, "high": 0.99, "scale": "linear"}}}
    (tmp_path / "spaces.json").write_text(json.dumps(data))
    (tmp_path / "spaces.toml").write_text(
        '[adam.learning_rate]\nlow = 1e-4\nhigh = 1.0\n\n[adam.beta_1]\nlow = 0.8\nhigh = 0.99\nscale = "linear"\n'
    )
    for name in ("spaces.json", "spaces.toml"):
        spaces = load_search_spaces(tmp_path / name)
        assert space_to_dict(spaces["adam"]) == {
            "learning_rate": {"low": 1e-4, "high": 1.0, "scale": "log"},
            "beta_1": {"low": 0.8, "high": 0.99, "scale": "linear"},
        }
        assert [d.name for d in space_for("adam", spaces)] == ["learning_rate", "beta_1"]
        assert space_for("sgd", spaces) == SEARCH_SPACES["sgd"]  # not named: the registry's


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"adam": {"learnin_rate": {"low": 1e-4, "high": 1}}}, "adam: unknown hyperparameter 'learnin_rate'; valid:"),
        ({"adam": {"learning_rate": {"low": 1.0, "high": 1.0}}}, "adam.learning_rate: empty range"),
        ({"adam": {"learning_rate": {"low": 2.0, "high": 1.0}}}, "empty range, `low` must be < `high`"),
        ({"adam": {"learning_rate": {"low": 0.0, "high": 1.0}}}, "a log scale needs `low` > 0"),
        ({"adam": {"beta_1": {"low": 0.5, "high": 1.0, "scale": "log_one_minus"}}}, "needs `high` < 1"),
        ({"adam": {"beta_1": {"low": 0.5, "high": 0.9, "scale": "cubic"}}}, "`scale` must be one of"),
        ({"adam": {"beta_1": {"low": 0.5}}}, "expected low, high"),
        ({"adam": {"beta_1": {"low": 0.5, "high": 0.9, "step": 2}}}, "unknown keys ['step']"),
        ({"adamm": {"learning_rate": {"low": 1e-4, "high": 1}}}, "unknown optimizer 'adamm'"),
        ({"adam": {}}, "expected a table of hyperparameters"),
        ([], "expected a table of optimizers"),
        ({"adam": {"learning_rate": {"low": "small", "high": 1}}}, "`low` must be a finite number"),
    ],
)
def test_bad_spaces_name_the_optimizer_and_the_hyperparameter(data, message):
    with pytest.raises(ValueError) as error:
        parse_search_spaces(data, "spaces.json")
    assert message in str(error.value) and str(error.value).startswith("spaces.json: ")


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ValueError, match="cannot read"):
        load_search_spaces(tmp_path / "missing.toml")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_search_spaces(tmp_path / "bad.json")
    (tmp_path / "bad.toml").write_text("[adam\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_search_spaces(tmp_path / "bad.toml")


def test_a_log_one_minus_range_spans_its_decades_evenly():
    momentum = SEARCH_SPACES["momentum"][1]
    low, high, log = momentum.sampled_range()
    assert log and math.isclose(math.log10(high / low), 3.0)  # 1 - momentum from 0.001 to 1
