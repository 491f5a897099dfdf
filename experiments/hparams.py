"""TensorBoard's HParams dashboard for the lab's runs (``tensorboard.plugins.hparams``).

A run folder written by ``keras.callbacks.TensorBoard`` (``train/``, ``validation/``) becomes a
session of the dashboard once it holds an event with the run's hyperparameters
(``write_session``); the log folder's root describes the experiment: its hyperparameters and the
metrics the table shows (``write_experiment``). Both are written with TensorBoard's own event
writer, so they need no TensorFlow; a session is written once (a resumed run does not repeat it).
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

SESSION_SUFFIX = ".hparams"
EXPERIMENT_SUFFIX = ".hparams_config"


def _write(folder: Path, summary, suffix: str) -> Path:
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(folder), filename_suffix=suffix)
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=0, summary=summary))
    writer.close()
    return folder


def _plain(value):
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)


def write_session(folder: Path, hyperparameters: Mapping[str, object]) -> bool:
    """Mark ``folder`` as one session with these hyperparameters (numbers, strings, booleans);
    ``False`` when it already is one."""
    from tensorboard.plugins.hparams import summary_v2

    folder = Path(folder)
    if any(folder.glob(f"events.out.tfevents.*{SESSION_SUFFIX}")):
        return False
    values = {name: _plain(value) for name, value in hyperparameters.items()}
    _write(folder, summary_v2.hparams_pb(values, trial_id=folder.as_posix()), SESSION_SUFFIX)
    return True


def write_experiment(folder: Path, hyperparameters: Sequence[str], metrics: Sequence[tuple[str, str]]) -> bool:
    """The experiment's columns at the log folder's root: ``hyperparameters`` by name and
    ``metrics`` as ``(group, tag)`` pairs such as ``("validation", "epoch_accuracy")``;
    ``False`` when the folder already has them."""
    from tensorboard.plugins.hparams import summary_v2

    folder = Path(folder)
    if any(folder.glob(f"events.out.tfevents.*{EXPERIMENT_SUFFIX}")):
        return False
    summary = summary_v2.hparams_config_pb(
        hparams=[summary_v2.HParam(name) for name in hyperparameters],
        metrics=[summary_v2.Metric(tag, group=group, display_name=f"{group} {tag}") for group, tag in metrics],
    )
    _write(folder, summary, EXPERIMENT_SUFFIX)
    return True


def read_sessions(folder: Path) -> dict[str, dict[str, object]]:
    """Every session under ``folder``: its path (relative) -> hyperparameters (for checks)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    sessions = {}
    for path in sorted(Path(folder).rglob(f"events.out.tfevents.*{SESSION_SUFFIX}")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag != metadata.SESSION_START_INFO_TAG:
                    continue
                data = metadata.parse_session_start_info_plugin_data(value.metadata.plugin_data.content)
                hyperparameters = {}
                for name, item in data.hparams.items():
                    kind = item.WhichOneof("kind")
                    hyperparameters[name] = getattr(item, kind)
                sessions[path.parent.relative_to(folder).as_posix()] = hyperparameters
    return sessions
