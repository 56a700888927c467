"""The ``seqgraph`` command: one subcommand per capability.

Each subcommand lives in a light module (no TensorFlow at import time) with ``add_arguments``
and ``run``; TensorFlow loads only once the arguments are parsed, quietly unless ``--verbose``.
User mistakes raise ``UsageError`` and become one line on stderr with exit code 2.
"""

import argparse
import contextlib
import importlib
import logging
import os
import sys
from importlib.metadata import version

from keras_models.utils.errors import TrainingDiverged, UsageError
from trainers.core.heap import keep_freed_memory

COMMANDS = {
    "memory": ("trainers.memory.command", "sequence-memory experiments (palindromes and friends)"),
    "text": ("trainers.text.command", "character-level text generation: train, sample"),
    "graph": ("trainers.graph.command", "graph networks: inspect graphs, train GCN/GAT"),
    "demo": ("trainers.demo", "a guided tour of everything on built-in data (no downloads)"),
}

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the problem and where to look."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser():
    """The full argument parser, with every subcommand registered."""
    parser = OneLineParser(
        prog="seqgraph",
        description="Recurrent and graph neural networks on Keras 2 (tf-keras).",
    )
    parser.add_argument("--version", action="version", version=f"seqgraph {version('seqgraph')}")
    parser.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's own start-up and log messages"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(
            name, help=help_text, description=module.__doc__.split("\n\n")[0]
        )
        module.add_arguments(sub)
        sub.set_defaults(
            run=module.run, tensorflow_environment=getattr(module, "TENSORFLOW_ENVIRONMENT", {})
        )
    return parser


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
    ``environment``: a subcommand's TensorFlow variables, set unless the user set them. The
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


def main(argv=None):
    """Entry point of the ``seqgraph`` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    load_tensorflow(args.verbose, args.tensorflow_environment)
    return run_command(args)


def run_command(args):
    """Run the parsed subcommand, turning user mistakes and Ctrl-C into one line on stderr."""
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


if __name__ == "__main__":
    sys.exit(main())
