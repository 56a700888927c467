"""``--strategy default|mirrored|multiworker``: TensorFlow's own distribution engine.

``mirrored`` copies the model onto every local device (``MirroredStrategy``); ``multiworker``
joins the cluster described by the standard ``TF_CONFIG`` environment variable
(``MultiWorkerMirroredStrategy``), so the same command runs on one machine or many. The global
batch is split across replicas. Only the chief writes logs, checkpoints and exports; other
workers write to a scratch folder that is deleted afterwards.
"""

import json
import os

from keras_models.backend import tf
from trainers.errors import UsageError

STRATEGIES = ("default", "mirrored", "multiworker")


def add_strategy_argument(parser):
    """Add the ``--strategy`` flag to a trainer's argument parser."""
    parser.add_argument(
        "--strategy", choices=STRATEGIES, default="default",
        help="default: one device; mirrored: all local devices; multiworker: the cluster in "
        "TF_CONFIG (one process per worker)",
    )


def _cluster_from_environment():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise UsageError(
            "--strategy multiworker needs TF_CONFIG; set it to the cluster and this worker's task "
            '(e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}})'
        )
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(
            f"TF_CONFIG is not valid ({error}); give JSON with cluster.worker and task.index"
        ) from None
    if not 0 <= index < len(workers):
        raise UsageError(f"TF_CONFIG task.index {index} is outside the {len(workers)} workers")
    return config


def make_strategy(name):
    """Build the named ``tf.distribute`` strategy; call before creating any model or dataset."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        _cluster_from_environment()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UsageError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def is_chief(strategy):
    """True where this process should write logs, checkpoints and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().jobs
    )


def split_cpu(devices):
    """Split the CPU into ``devices`` logical devices (for trying ``mirrored`` without GPUs).

    Must run before TensorFlow initialises its devices.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
    )
