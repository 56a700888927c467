"""One run of a memory grid in a process of its own: ``python -m trainers.memory_worker RUN_DIR
SAVED_MODELS`` trains the run whose ``config.json`` is in ``RUN_DIR`` (resuming from its backup),
exports it and writes ``result.json``. ``seqgraph memory --jobs N`` starts these; errors and
Ctrl-C end it as they end ``seqgraph memory`` (one line on stderr, the same exit codes).
"""

import argparse
import json
import sys
from pathlib import Path

from trainers import cli
from trainers.memory_command import TENSORFLOW_ENVIRONMENT


def train_one(run_dir, saved_models):
    """Train, export and record the run in ``run_dir``; its status follows the outcome."""
    from trainers.memory import MemoryConfig, record_run

    config = MemoryConfig(**json.loads((run_dir / "config.json").read_text(encoding="utf-8")))
    record_run(config, run_dir, saved_models, run_dir / "result.json")
    return 0


def main(argv=None):
    run_dir, saved_models = (Path(a) for a in (argv or sys.argv[1:]))
    cli.load_tensorflow(False, TENSORFLOW_ENVIRONMENT)
    return cli.run_command(argparse.Namespace(
        command="memory", run=lambda _: train_one(run_dir, saved_models)))


if __name__ == "__main__":
    sys.exit(main())
