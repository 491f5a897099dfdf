"""Training under a distribution strategy: one entry point for single device, many devices, many workers.

Usage -- build the model *and* the optimiser inside the scope, and compile and fit there too
(TensorFlow would accept ``fit`` outside; JAX needs the distribution still set)::

    from lab.distribution import distribution_scope

    with distribution_scope("mirrored") as distributed:
        model = moons_net(seed=0)
        optimizer = build_optimizer("adam")
        model.compile(
            optimizer=optimizer,
            loss="sparse_categorical_crossentropy",
            steps_per_execution=distributed.steps_per_execution(32),  # 1 under tf.distribute
        )
        model.fit(x, y, batch_size=64)   # 64 is the GLOBAL batch: each of the
                                          # distributed.num_replicas replicas gets 64 / num_replicas

A strategy fixes the process's devices, so create it once per program, first; to build several
models, keep the ``Distributed`` from ``make_strategy`` and re-enter ``distributed.scope()``.

Names (``STRATEGY_NAMES``):

``"none"`` (default)
    No strategy: Keras's default placement on one device.
``"mirrored"``
    TensorFlow: ``tf.distribute.MirroredStrategy`` over the local GPUs; with no GPU, over the
    logical CPU devices when there are several (see ``logical_cpus``), else over the one CPU.
    JAX: ``keras.distribution.DataParallel`` over ``keras.distribution.list_devices()``.
``"data_parallel"``
    The same as ``"mirrored"`` on both backends (the name Keras uses on JAX).
``"multiworker"``
    TensorFlow only: ``tf.distribute.MultiWorkerMirroredStrategy`` configured from the
    ``TF_CONFIG`` environment variable, which every worker sets to the same cluster and its own
    task, e.g. for worker 1 of 2::

        {"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 1}}

    The strategy must be created at program start, before TensorFlow runs any operation, and
    every worker runs the same program. Worker 0 is the chief (``Distributed.is_chief``): it alone
    should write results.

Global batch semantics: the ``batch_size`` given to ``fit`` is the global batch, split evenly
over all replicas (on all workers); gradients are averaged over replicas (Keras scales the loss
by ``1 / num_replicas``), so one step sees the same examples and makes the same update as an
undistributed step with that batch size, up to floating-point summation order. The global batch
should be a multiple of the number of replicas.

Data sharding across workers: for NumPy arrays Keras sets the tf.data ``AutoShardPolicy.DATA``
policy, so every worker reads the whole array and keeps only its slice of each global batch.
Pass the same arrays in the same order on every worker, and either ``shuffle=False`` or the
same ``keras.utils.set_random_seed`` on every worker.

``logical_cpus=N`` (``"mirrored"``/``"data_parallel"``) splits the CPU into N logical devices so
multi-device training can be run and tested without GPUs. It must happen before the backend
initialises its devices (TensorFlow: before the first operation; JAX: before the first
``jax.devices()``); when it is too late a ``RuntimeError`` says so and how to fix it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from typing import Any, Iterator

import keras

from lab.checks import check_choice, check_positive_int

STRATEGY_NAMES = ("none", "mirrored", "data_parallel", "multiworker")
TF_CONFIG_VAR = "TF_CONFIG"


@dataclass(frozen=True)
class Distributed:
    """What a scope trains on: the strategy name, the backend object and the replica count.

    ``strategy`` is a ``tf.distribute.Strategy`` (TensorFlow), a
    ``keras.distribution.Distribution`` (JAX) or ``None`` for ``"none"``.
    """

    name: str
    backend: str
    strategy: Any
    num_replicas: int
    num_workers: int = 1
    worker_index: int = 0

    def scope(self) -> contextlib.AbstractContextManager:
        """The strategy's scope (a no-op for ``"none"``); re-enter it for every model you build."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def steps_per_execution(self, requested: int) -> int:
        """The ``steps_per_execution`` to compile with: ``requested``, but 1 under tf.distribute.

        Keras 3's TensorFlow multi-step loop (``steps_per_execution > 1``) fails inside a
        tf.distribute strategy ("You must feed a value for placeholder tensor",
        keras-team/keras#19246), so one step per call is used there.
        """
        check_positive_int("steps_per_execution", requested)
        if self.backend == "tensorflow" and self.strategy is not None:
            return 1
        return int(requested)

    @property
    def is_chief(self) -> bool:
        """Whether this process should write results (worker 0; always true on one worker)."""
        return self.worker_index == 0


@dataclass(frozen=True)
class TFConfig:
    """A validated ``TF_CONFIG``: the worker addresses and this process's index among them."""

    workers: tuple[str, ...]
    task_type: str
    task_index: int


def check_strategy_name(name: str) -> str:
    """The canonical name; ``ValueError`` listing the valid names otherwise."""
    return check_choice("strategy", name.strip().lower() if isinstance(name, str) else name, STRATEGY_NAMES)


def parse_tf_config(text: str | None = None) -> TFConfig:
    """Parse and check ``TF_CONFIG`` (the environment variable when ``text`` is None).

    ``ValueError`` says what is missing or malformed: the variable itself, its JSON, the
    ``cluster.worker`` address list, or a ``task`` whose type/index is not in the cluster.
    """
    example = '{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type": "worker", "index": 0}}'
    if text is None:
        text = os.environ.get(TF_CONFIG_VAR)
    if text is None or not text.strip():
        raise ValueError(
            f"strategy 'multiworker' needs the {TF_CONFIG_VAR} environment variable, set on every worker "
            f"to the cluster and that worker's task, e.g. {example}"
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{TF_CONFIG_VAR} is not valid JSON ({error}); expected e.g. {example}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{TF_CONFIG_VAR} must be a JSON object; expected e.g. {example}")
    cluster = config.get("cluster")
    workers = cluster.get("worker") if isinstance(cluster, dict) else None
    if not isinstance(workers, list) or not workers or not all(isinstance(w, str) and ":" in w for w in workers):
        raise ValueError(
            f"{TF_CONFIG_VAR} needs cluster.worker, a non-empty list of 'host:port' addresses; got {cluster!r}"
        )
    extra_jobs = sorted(set(cluster) - {"worker", "chief"})
    if extra_jobs:
        raise ValueError(f"{TF_CONFIG_VAR}: MultiWorkerMirroredStrategy uses only worker (and chief) jobs; got {extra_jobs}")
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError(f"{TF_CONFIG_VAR} needs task.type and task.index (this worker's place); got {task!r}")
    task_type, task_index = task["type"], task["index"]
    if task_type not in cluster:
        raise ValueError(f"{TF_CONFIG_VAR}: task.type {task_type!r} is not a job of the cluster ({', '.join(cluster)})")
    jobs = cluster[task_type]
    if not isinstance(task_index, int) or isinstance(task_index, bool) or not 0 <= task_index < len(jobs):
        raise ValueError(
            f"{TF_CONFIG_VAR}: task.index must be an integer in [0, {len(jobs)}) for job {task_type!r}; got {task_index!r}"
        )
    return TFConfig(tuple(workers), task_type, task_index)


def configure_logical_cpus(count: int) -> None:
    """Split the host CPU into ``count`` logical devices, on the current backend.

    Must run before the backend initialises its devices; ``RuntimeError`` (with the fix) if not.
    Calling it again with the count already in place is a no-op.
    """
    check_positive_int("logical_cpus", count)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError:
            have = len(tf.config.list_logical_devices("CPU"))
            if have == count:
                return
            raise RuntimeError(
                f"too late to split the CPU into {count} logical devices: TensorFlow has already initialised "
                f"its devices (it has {have} CPU device(s)). Call "
                "configure_logical_cpus() / distribution_scope(..., logical_cpus=N) at program start, before "
                "any TensorFlow operation runs."
            ) from None
    elif backend == "jax":
        import jax

        try:
            jax.config.update("jax_num_cpu_devices", count)
        except RuntimeError:
            have = len(jax.devices("cpu"))
            if have == count:
                return
            raise RuntimeError(
                f"too late to split the CPU into {count} logical devices: JAX has already initialised its "
                f"backend (it has {have} CPU device(s)). Call configure_logical_cpus() before the first JAX "
                f"computation, or start Python with XLA_FLAGS=--xla_force_host_platform_device_count={count}."
            ) from None
    else:
        raise ValueError(f"logical CPU devices are supported on tensorflow and jax, not {backend!r}")


def make_strategy(name: str = "none", *, logical_cpus: int | None = None) -> Distributed:
    """Create the strategy called ``name`` for the current Keras backend (see the module doc).

    ``ValueError`` for an unknown name (listing the valid ones), for ``logical_cpus`` with a
    strategy that does not use it, for ``"multiworker"`` without a valid ``TF_CONFIG`` or on a
    backend other than TensorFlow.
    """
    name = check_strategy_name(name)
    backend = keras.backend.backend()
    if logical_cpus is not None and name not in ("mirrored", "data_parallel"):
        raise ValueError(f"logical_cpus applies to the 'mirrored' and 'data_parallel' strategies, not {name!r}")
    if logical_cpus is not None:
        configure_logical_cpus(logical_cpus)
    if name == "none":
        return Distributed(name, backend, None, 1)
    if backend == "tensorflow":
        return _tensorflow_strategy(name)
    if backend == "jax":
        if name == "multiworker":
            raise ValueError(
                "strategy 'multiworker' uses tf.distribute and needs KERAS_BACKEND=tensorflow; on JAX, run "
                "'data_parallel' after keras.distribution.initialize() on every process"
            )
        distribution = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
        return Distributed(name, backend, distribution, int(distribution.num_model_replicas))
    raise ValueError(f"strategy {name!r} is supported on the tensorflow and jax backends, not {backend!r}")


def _tensorflow_strategy(name: str) -> Distributed:
    import tensorflow as tf

    if name == "multiworker":
        config = parse_tf_config()
        try:
            strategy = _multi_worker_mirrored_strategy()
        except (RuntimeError, ValueError) as error:
            raise RuntimeError(
                "could not start MultiWorkerMirroredStrategy; it must be created at program start, before "
                f"any TensorFlow operation runs ({error})"
            ) from error
        return Distributed(
            name,
            "tensorflow",
            strategy,
            int(strategy.num_replicas_in_sync),
            num_workers=len(config.workers),
            worker_index=config.task_index,
        )
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus if gpus else tf.config.list_logical_devices("CPU")
    strategy = tf.distribute.MirroredStrategy(devices=[device.name for device in devices])
    return Distributed(name, "tensorflow", strategy, int(strategy.num_replicas_in_sync))


def _multi_worker_mirrored_strategy() -> Any:
    """``tf.distribute.MultiWorkerMirroredStrategy`` with a ``reduce`` that Keras 3's trainer can use.

    Keras 3's TensorFlow trainer calls ``strategy.reduce`` in two ways that MirroredStrategy
    accepts and MultiWorkerMirroredStrategy does not (keras-team/keras#20585):

    - once on a whole (x, y) batch before the first step: MirroredStrategy maps the reduction
      over the structure, MultiWorkerMirroredStrategy fails with "Attempt to convert a value
      (PerReplica...)". Here it is mapped over the structure;
    - on every step's logs with ``axis=0``, also on scalars (the loss), which fails with "Invalid
      reduction dimension 0 for input with 0 dimensions". Here a scalar is reduced across the
      replicas only (``axis=None``), which is what ``axis=0`` means for a vector of per-replica
      values.

    Nothing else changes: the all-reduce of the gradients and the variables' synchronisation are
    TensorFlow's own.
    """
    import tensorflow as tf

    class KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op: Any, value: Any, axis: Any = None) -> Any:
            parent = super()

            def reduce_one(item: Any) -> Any:
                local = self.experimental_local_results(item)[0]
                item_axis = None if axis is not None and getattr(local.shape, "rank", None) == 0 else axis
                return parent.reduce(reduce_op, item, axis=item_axis)

            return tf.nest.map_structure(reduce_one, value)

    return KerasMultiWorkerMirroredStrategy()


@contextlib.contextmanager
def distribution_scope(name: str = "none", *, logical_cpus: int | None = None) -> Iterator[Distributed]:
    """``with distribution_scope("mirrored") as distributed:`` -- create model and optimiser inside.

    Enters ``strategy.scope()`` (TensorFlow) or ``Distribution.scope()`` (JAX) for the block, so
    the variables the block creates are mirrored/replicated; ``model.fit`` later picks the
    strategy up from the model (TensorFlow) or from the distribution still set (JAX: the scope
    keeps the distribution set until it exits, so call ``fit`` inside the block there, or use
    ``keras.distribution.set_distribution(distributed.strategy)``). Calling ``fit`` inside the
    block is correct on both backends and is what the lab's experiments do.
    """
    distributed = make_strategy(name, logical_cpus=logical_cpus)
    with distributed.scope():
        yield distributed
