"""The README's example of using the lab in one's own Keras project runs as written."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _section_code(heading: str) -> str:
    text = README.read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, f"no python block under '## {heading}'"
    return blocks[0]


@pytest.mark.backend_agnostic
def test_the_own_project_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    example = {"__name__": "readme"}
    exec(compile(_section_code("Use it in your own Keras project"), str(README), "exec"), example)
    printed = capsys.readouterr().out
    suggested = float(re.search(r"suggested learning rate: (\S+)", printed).group(1))
    assert 1e-4 < suggested < 10.0
    name, iterations = re.search(r"^(\w+) (\d+)$", printed, flags=re.M).groups()
    assert name == "Adam" and int(iterations) > 0
    assert (tmp_path / "lr_finder.png").stat().st_size > 0
    assert list((tmp_path / "logs" / "demo" / "train").glob("events.out.tfevents.*"))

    # the TensorBoard section's snippet reads the example's logs back
    reading = {"__name__": "readme"}
    exec(compile(_section_code("TensorBoard"), str(README), "exec"), reading)
    history = example["model"].history.history
    losses = reading["losses"]
    assert list(losses.columns) == ["train", "validation"]
    assert losses.index.tolist() == list(range(len(history["loss"])))
    np.testing.assert_allclose(losses["train"], history["loss"], rtol=1e-6)
    np.testing.assert_allclose(losses["validation"], history["val_loss"], rtol=1e-6)
    assert "train" in capsys.readouterr().out
    scalars = reading["scalars"]
    per_step = scalars[(scalars["run"] == "train") & (scalars["tag"] == "gradient_norm")]  # TrainingDiagnostics
    assert len(per_step) > 0 and (per_step["step"] % 10 == 0).all() and (per_step["value"] > 0).all()

@pytest.mark.slow
def test_the_own_problem_example_runs_through_the_main_job(tmp_path, monkeypatch):
    import pandas as pd

    from experiments import compare_optimizers

    (tmp_path / "mymodule.py").write_text(_section_code("Problems: the lab's and your own"))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    argv = ["--problems", "mymodule:PROBLEM", "--optimizers", "sgd", "keras:Adam", "--epochs", "5", "--seeds", "1",
            "--no-tensorboard", "--no-progress", "--out", str(out)]  # fmt: skip
    assert compare_optimizers.main(argv) == 0
    results = pd.read_csv(out / "results.csv")
    assert set(results["problem"]) == {"cancer"} and len(results) == 2 * 5
    assert results["val_accuracy"].iloc[-1] > 0.85  # five epochs of Adam learn the data set
