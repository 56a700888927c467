"""The process a ``seqgraph`` command runs in: TensorFlow loaded quietly, errors as exit codes.

``load_tensorflow`` imports TensorFlow through the one-Keras backend with its start-up noise
hidden; ``run_command`` runs a parsed command and turns user mistakes, divergence and Ctrl-C into
one line on stderr and the exit codes below. The memory-experiment workers and the benchmarks use
both, so they live here rather than in the command line itself.
"""

import contextlib
import logging
import os
import sys

from keras_models.utils.errors import TrainingDiverged, UsageError
from trainers.core.heap import keep_freed_memory

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@contextlib.contextmanager
def _stderr_to_devnull():
    """Point file descriptor 2 at /dev/null: TensorFlow's C++ start-up lines bypass Python."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_tensorflow(verbose, environment=None):
    """Import TensorFlow (through the one-Keras backend), hiding its start-up noise unless
    ``verbose``: the C++ lines printed before logging is set up, and INFO/WARNING logs.
    ``environment``: a command's TensorFlow variables, set unless the user set them. The
    process keeps the memory training frees for reuse (``trainers/core/heap.py``)."""
    keep_freed_memory()
    for name, value in (environment or {}).items():
        os.environ.setdefault(name, value)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "3"
    if verbose:
        import keras_models.backend  # noqa: F401
        return
    with _stderr_to_devnull():
        import keras_models.backend  # noqa: F401
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def run_command(args):
    """Run ``args.run(args)``, turning user mistakes, divergence and Ctrl-C into one line on
    stderr (prefixed ``seqgraph <args.command>``) and an exit code."""
    try:
        return args.run(args) or 0
    except UsageError as error:
        print(f"seqgraph {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingDiverged as error:
        print(f"seqgraph {args.command}: training diverged: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(
            f"seqgraph {args.command}: interrupted; run the same command again to resume "
            "from the last checkpoint",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
