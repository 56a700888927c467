"""``--strategy default|mirrored|multiworker``: TensorFlow's own distribution engine.

``mirrored`` copies the model onto every local device (``MirroredStrategy``); ``multiworker``
joins the cluster described by the standard ``TF_CONFIG`` environment variable
(``MultiWorkerMirroredStrategy``), so the same command runs on one machine or many. The global
batch is split across replicas. Only the chief writes logs, checkpoints and exports; other
workers write to a scratch folder that is deleted afterwards, and restore from the chief's
backup (so with several machines the runs folder must be on storage they all see, at the same
absolute path, for a resume).

TensorFlow is imported inside the functions: command modules add these flags at ``--help`` time.
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from keras_models.utils.errors import UsageError

STRATEGIES = ("default", "mirrored", "multiworker")
PATH_BYTES = 4096
CLUSTER_TIMEOUT = 300.0
_created = {}  # one strategy of each kind per process: their collective keys must not clash


def add_strategy_argument(parser):
    """Add ``--strategy`` and ``--deterministic`` to a trainer's argument parser."""
    parser.add_argument(
        "--strategy", choices=STRATEGIES, default="default",
        help="default: one device; mirrored: all local devices; multiworker: the cluster in "
        "TF_CONFIG (one process per worker)",
    )
    parser.add_argument(
        "--deterministic", action="store_true",
        help="deterministic TensorFlow ops: same seed, same machine, same numbers (slower)",
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


def _cluster_timeout():
    raw = os.environ.get("SEQGRAPH_CLUSTER_TIMEOUT", str(CLUSTER_TIMEOUT))
    try:
        return float(raw)
    except ValueError:
        raise UsageError(f"SEQGRAPH_CLUSTER_TIMEOUT is {raw!r}; give seconds, e.g. 300") from None


_WATCHDOG = """
import os, signal, sys, time
parent, timeout, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
time.sleep(timeout)
if os.getppid() == parent:  # else the command already ended and its pid may be reused
    print(message, file=sys.stderr, flush=True)
    os.kill(parent, signal.SIGKILL)
"""


def _join_cluster(tf):
    """Create ``MultiWorkerMirroredStrategy``, giving up after a bounded wait for the peers.

    TensorFlow's constructor waits for every worker forever while holding the interpreter lock
    (no thread or signal handler can interrupt it), so a tiny watchdog process prints the
    error and kills this one if the cluster has not formed in time.
    """
    import subprocess
    import sys

    timeout = _cluster_timeout()
    message = (
        f"seqgraph: error: the workers in TF_CONFIG did not all answer within {timeout:g} s; "
        "start the command on every worker listed (or fix the addresses, or raise "
        "SEQGRAPH_CLUSTER_TIMEOUT)"
    )
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout), message]
    )
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    finally:
        watchdog.kill()
        watchdog.wait()


def make_strategy(name, *, deterministic=False):
    """Build the named ``tf.distribute`` strategy; call before creating any model or dataset.

    ``multiworker`` starts this worker's server and waits at most ``SEQGRAPH_CLUSTER_TIMEOUT``
    seconds (default 300) for the other workers. Each strategy is created once per process;
    later calls return the same one.
    """
    if name not in STRATEGIES:
        raise UsageError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "multiworker":
        _cluster_from_environment()
    from keras_models.backend import tf

    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if name == "default":
        return tf.distribute.get_strategy()
    if name not in _created:
        mirrored = name == "mirrored"
        _created[name] = tf.distribute.MirroredStrategy() if mirrored else _join_cluster(tf)
    return _created[name]


def is_chief(strategy):
    """True where this process should write logs, checkpoints and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().jobs
    )


def _is_multiworker(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    return resolver is not None and bool(resolver.cluster_spec().as_dict())


@contextlib.contextmanager
def output_dirs(strategy, *dirs):
    """Yield ``dirs`` on the chief, and the same folders inside a scratch folder elsewhere.

    The scratch folder is deleted when the block ends, however it ends.
    """
    if is_chief(strategy):
        yield dirs
        return
    scratch = Path(tempfile.mkdtemp(prefix="seqgraph-worker-"))
    try:
        yield tuple(scratch / f"out{i}" for i in range(len(dirs)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def chief_path(path, strategy=None):
    """The chief's absolute version of ``path``, on every worker (all workers must call this).

    Workers write their logs to scratch folders but must restore from the chief's backup: the
    chief's path is broadcast with one all-reduce (replica 0, on the chief, contributes it).
    """
    from keras_models.backend import tf

    strategy = strategy or tf.distribute.get_strategy()
    path = Path(path).absolute()
    if not _is_multiworker(strategy):
        return path
    import numpy as np

    raw = str(path).encode("utf-8")
    if len(raw) > PATH_BYTES:
        raise UsageError(f"the run folder path is over {PATH_BYTES} bytes; use a shorter one")
    encoded = tf.constant(np.frombuffer(raw.ljust(PATH_BYTES, b"\0"), np.uint8).astype(np.int32))

    def contribute():
        first = tf.equal(tf.distribute.get_replica_context().replica_id_in_sync_group, 0)
        return tf.where(first, encoded, tf.zeros_like(encoded))

    total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(contribute), axis=None)
    return Path(bytes(total.numpy().astype(np.uint8)).rstrip(b"\0").decode("utf-8"))


def shard_by_data(dataset):
    """Let multiworker training split ``dataset`` by element (it has no files to split by)."""
    from keras_models.backend import tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def whole_elements_per_replica(strategy, make_dataset):
    """``make_dataset()`` distributed whole: each replica takes one element per step, each input
    pipeline (one per worker) every ``num_input_pipelines``-th element.

    For datasets whose elements are not batches along their first axis (a sampled subgraph:
    ``(n_sampled, …)`` tensors that belong together); ``fit``'s own distribution would split
    each element across the replicas. Under the default strategy, the dataset itself.
    """
    def per_pipeline(context):
        return make_dataset().shard(context.num_input_pipelines, context.input_pipeline_id)

    return strategy.distribute_datasets_from_function(per_pipeline)


def split_cpu(devices):
    """Split the CPU into ``devices`` logical devices (for trying ``mirrored`` without GPUs).

    Must run before TensorFlow initialises its devices.
    """
    from keras_models.backend import tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
    )
