"""--resume of the training experiments (experiments.cli): every misuse is an "error: ..." with exit
code 2. (A SIGKILLed run resumed to the same results: test_studies_on_the_grid.py.)"""

import json
from pathlib import Path

import keras
import pytest

from experiments import gd_variants, lr_finder, lr_sensitivity, schedules, weight_decay
from experiments.cli import RUN_FILE, run_main

TRAINING_EXPERIMENTS = {
    "gd_variants": gd_variants,
    "lr_finder": lr_finder,
    "lr_sensitivity": lr_sensitivity,
    "schedules": schedules,
    "weight_decay": weight_decay,
}


def _usage_error(module, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_main(module.main, [str(item) for item in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def _write_run_file(folder: Path, experiment: str) -> None:
    folder.mkdir(parents=True)
    import keras

    info = {"experiment": experiment, "arguments": ["--quick"], "backend": keras.backend.backend()}
    (folder / RUN_FILE).write_text(json.dumps(info))


@pytest.mark.parametrize("name", sorted(TRAINING_EXPERIMENTS))
def test_resume_misuse_is_a_usage_error(name, tmp_path, capsys):
    module = TRAINING_EXPERIMENTS[name]
    missing = _usage_error(module, ["--resume", tmp_path / "nowhere"], capsys)
    assert f"no {RUN_FILE} there" in missing and name in missing

    other = tmp_path / "other"
    _write_run_file(other, "compare_optimizers")
    assert f"is not from {name} (experiment 'compare_optimizers')" in _usage_error(module, ["--resume", other], capsys)

    own = tmp_path / "own"
    _write_run_file(own, name)
    assert "drop --seed" in _usage_error(module, ["--resume", own, "--seed", "3"], capsys)
    # a new run never overwrites a folder that holds one
    assert f"use --resume {own}" in _usage_error(module, ["--quick", "--out", own], capsys)


def test_resume_on_another_backend_is_refused(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    other = "torch" if keras.backend.backend() != "torch" else "tensorflow"
    (folder / RUN_FILE).write_text(json.dumps({"experiment": "weight_decay", "arguments": [], "backend": other}))
    assert f"set KERAS_BACKEND={other}" in _usage_error(weight_decay, ["--resume", folder], capsys)
