"""TensorBoard logs: the writer the lab needs to make them, and reading their scalars back.

Writing. Keras's ``TensorBoard`` callback and ``TrainingDiagnostics`` write through
``tf.summary``, so they need TensorFlow even when Keras trains on JAX or PyTorch.
``tensorflow_summary`` is the one place that imports it for them: where TensorFlow is missing it
raises ``TensorBoardUnavailableError``, one line naming the fix, instead of a traceback ending in
``No module named 'tensorflow'`` at the first epoch. ``tensorboard_callback`` is Keras's callback
behind that check.

Reading. TensorFlow 2 stores a scalar as a rank-0 *tensor* event tagged with the ``scalars``
plugin, so ``EventAccumulator(...).Tags()["scalars"]`` is empty for these logs. ``read_scalars``
reads both kinds (TensorFlow 2 tensors and TensorFlow 1 / PyTorch scalar events) into one tidy
DataFrame, one row per run folder, tag and step; it needs the ``tensorboard`` package only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras
    import pandas as pd

INSTALL_HINT = "pip install tensorflow-cpu"
SCALAR_COLUMNS = ["run", "tag", "step", "wall_time", "value"]
_SCALARS_PLUGIN = "scalars"


class TensorBoardUnavailableError(ImportError):
    """TensorBoard logs were asked for, but TensorFlow, whose ``tf.summary`` writes them, is missing."""


def tensorflow_summary(writer: str = "TensorBoard logging") -> Any:
    """``tf.summary``, or ``TensorBoardUnavailableError`` saying that ``writer`` needs TensorFlow."""
    try:
        import tensorflow as tf
    except ImportError as error:
        raise TensorBoardUnavailableError(
            f"{writer} needs TensorFlow, which is not installed ({error}): {INSTALL_HINT}"
        ) from None
    return tf.summary


def tensorboard_callback(log_dir: str | os.PathLike, **kwargs: Any) -> "keras.callbacks.TensorBoard":
    """``keras.callbacks.TensorBoard(log_dir, **kwargs)``, once ``tensorflow_summary`` succeeds."""
    import keras

    tensorflow_summary("TensorBoard logging (keras.callbacks.TensorBoard)")
    return keras.callbacks.TensorBoard(log_dir=os.fspath(log_dir), **kwargs)


def read_scalars(log_dir: str | os.PathLike) -> "pd.DataFrame":
    """Every scalar under ``log_dir`` as a DataFrame with columns ``run, tag, step, wall_time, value``.

    ``run`` is the folder of the event files relative to ``log_dir`` (``"train"``,
    ``"validation"``, ``"moons/adam/seed0/train"``; ``"."`` for ``log_dir`` itself), as
    TensorBoard names runs. Rows are sorted by run, tag, step and wall time; a resumed run that
    logged a step twice keeps both rows. Non-scalar summaries (histograms, images, HParams) are
    left out.

    Raises:
        FileNotFoundError: ``log_dir`` holds no event file.
    """
    import pandas as pd
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    root = Path(log_dir)
    folders = sorted({path.parent for path in root.rglob("*tfevents*") if path.is_file()})
    if not folders:
        raise FileNotFoundError(f"no TensorBoard event files under {root}")
    rows = []
    for folder in folders:
        run = folder.relative_to(root).as_posix()
        # size 0 keeps every event instead of a reservoir sample
        events = EventAccumulator(str(folder), size_guidance={"tensors": 0, "scalars": 0})
        events.Reload()
        tags = events.Tags()
        for tag in tags["tensors"]:
            if events.SummaryMetadata(tag).plugin_data.plugin_name != _SCALARS_PLUGIN:
                continue
            for event in events.Tensors(tag):
                value = tensor_util.make_ndarray(event.tensor_proto)
                if value.size == 1:
                    rows.append((run, tag, event.step, event.wall_time, float(value.reshape(()))))
        for tag in tags["scalars"]:
            rows.extend((run, tag, event.step, event.wall_time, float(event.value)) for event in events.Scalars(tag))
    frame = pd.DataFrame(rows, columns=SCALAR_COLUMNS)
    frame["step"] = frame["step"].astype("int64")
    return frame.sort_values(["run", "tag", "step", "wall_time"], kind="stable", ignore_index=True)
