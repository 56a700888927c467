"""The ``seqgraph`` command: one subcommand per capability.

Each subcommand lives in a light module (no TensorFlow at import time) with ``add_arguments``
and ``run``; TensorFlow loads only once the arguments are parsed, quietly unless ``--verbose``.
User mistakes raise ``UsageError`` and become one line on stderr with exit code 2.
"""

import argparse
import importlib
import sys
from importlib.metadata import version

from trainers.core.runtime import EXIT_USAGE, load_tensorflow, run_command

COMMANDS = {
    "memory": ("trainers.memory.command", "sequence-memory experiments (palindromes and friends)"),
    "text": ("trainers.text.command", "character-level text generation: train, sample"),
    "graph": ("trainers.graph.command", "graph networks: node classifiers, link predictors"),
    "demo": ("trainers.demo", "a guided tour of everything on built-in data (no downloads)"),
}


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


def main(argv=None):
    """Entry point of the ``seqgraph`` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    load_tensorflow(args.verbose, args.tensorflow_environment)
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
