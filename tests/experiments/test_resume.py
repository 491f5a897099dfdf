"""--resume of the training experiments (experiments.cli): a SIGKILLed run continues to the same
results, and every misuse is an "error: ..." with exit code 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from experiments import gd_variants, lr_finder, lr_sensitivity, schedules, weight_decay
from experiments.cli import RUN_FILE, run_main
from tests.experiments.processes import sigkill_when_written

ROOT = Path(__file__).resolve().parents[2]
TRAINING_EXPERIMENTS = {
    "gd_variants": gd_variants,
    "lr_finder": lr_finder,
    "lr_sensitivity": lr_sensitivity,
    "schedules": schedules,
    "weight_decay": weight_decay,
}
# four full-batch moons runs of 30 epochs: long enough to be killed in the middle of the third
WEIGHT_DECAY_ARGS = ("--quick", "--epochs", "30", "--weight-decays", "0", "0.01")


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
    (folder / RUN_FILE).write_text(json.dumps({"experiment": "weight_decay", "arguments": [], "backend": "torch"}))
    assert "set KERAS_BACKEND=torch" in _usage_error(weight_decay, ["--resume", folder], capsys)


def _command(*args) -> list[str]:
    return [sys.executable, "-m", "experiments.weight_decay", *(str(a) for a in args)]


def _environment() -> dict[str, str]:
    return {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _numbers(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns=["seconds"])


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    done = subprocess.run(
        _command(*WEIGHT_DECAY_ARGS, "--out", reference), cwd=ROOT, env=_environment(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr

    out = tmp_path / "killed"
    process = subprocess.Popen(
        _command(*WEIGHT_DECAY_ARGS, "--out", out),
        cwd=ROOT,
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # runs go coupled_l2 wd 0, 0.01, then decoupled wd 0, 0.01: kill once the third has an epoch
    state = out / "checkpoints" / "decoupled_wd0" / "state.json"
    sigkill_when_written(process, state)
    killed = json.loads(state.read_text())
    assert 1 <= killed["epoch"] < 30 and not killed["finished"]
    assert not (out / "results.csv").exists()
    first = json.loads((out / "checkpoints" / "coupled_l2_wd0" / "state.json").read_text())
    assert first["finished"] and len(first["rows"]) == 30

    resumed = subprocess.run(_command("--resume", out), cwd=ROOT, env=_environment(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    pd.testing.assert_frame_equal(_numbers(reference / "results.csv"), _numbers(out / "results.csv"))
    # the final weight norms come from the reloaded final weights of the runs finished before the kill
    pd.testing.assert_frame_equal(pd.read_csv(reference / "summary.csv"), pd.read_csv(out / "summary.csv"))
    assert not (out / "checkpoints").exists()
    assert (out / "weight_decay.png").is_file()
