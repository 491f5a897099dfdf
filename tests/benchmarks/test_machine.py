"""benchmarks.machine: the machine's description and the one tidy CSV per benchmark."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.machine import PACKAGES, append_csv_row, describe_machine


def test_the_description_names_every_backend_version():
    description = describe_machine()
    assert {"keras", "tensorflow", "jax", "torch", "numpy"} <= set(description)
    assert description["numpy"] and description["usable_cores"] >= 1
    assert "torch" in PACKAGES


def test_rows_are_appended_and_a_new_column_is_added_empty_to_earlier_rows(tmp_path):
    path = tmp_path / "bench.csv"
    append_csv_row(path, [{"jax": "0.1", "ratio": 1.0}, {"jax": "0.1", "ratio": 0.9}])
    append_csv_row(path, [{"jax": "0.2", "ratio": 1.1}])
    append_csv_row(path, [{"jax": "0.3", "torch": "2.13.0", "ratio": 1.2}])  # a version recorded since
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(table.columns) == ["jax", "torch", "ratio"]
    assert table.to_dict("list") == {"jax": ["0.1", "0.1", "0.2", "0.3"], "torch": ["", "", "", "2.13.0"],
                                     "ratio": ["1.0", "0.9", "1.1", "1.2"]}
    append_csv_row(path, [{"ratio": 1.3, "torch": "2.13.0", "jax": "0.3"}])  # the file's order, any key order
    assert pd.read_csv(path).iloc[-1].to_dict() == {"jax": 0.3, "torch": "2.13.0", "ratio": 1.3}


def test_rows_that_lack_a_column_of_the_file_are_refused(tmp_path):
    path = tmp_path / "bench.csv"
    append_csv_row(path, [{"jax": "0.1", "ratio": 1.0}])
    with pytest.raises(ValueError, match="has columns"):
        append_csv_row(path, [{"ratio": 1.0}])
    with pytest.raises(ValueError, match="different columns"):
        append_csv_row(path, [{"ratio": 1.0}, {"jax": "0.1"}])
