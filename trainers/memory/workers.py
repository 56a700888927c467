"""The worker process of ``seqgraph memory --jobs N``: ``python -m trainers.memory.workers
RUN_DIR SAVED_MODELS`` trains the run whose ``config.json`` is in ``RUN_DIR`` (resuming from its
backup), exports it and writes ``result.json``. The parent's side is
``trainers/core/worker_pool.py``.
"""

import json
import sys

from trainers.core.worker_pool import worker_main
from trainers.memory.config import TENSORFLOW_ENVIRONMENT, MemoryConfig


def train_one(run_dir, saved_models):
    """Train, export and record the run in ``run_dir``; its status follows the outcome."""
    from trainers.memory.train import record_run

    config = MemoryConfig(**json.loads((run_dir / "config.json").read_text(encoding="utf-8")))
    record_run(config, run_dir, saved_models, run_dir / "result.json")
    return 0


if __name__ == "__main__":
    sys.exit(worker_main("memory", train_one, TENSORFLOW_ENVIRONMENT))
