"""The run-folder convention: ``runs/<name>-<YYYYmmdd-HHMMSS>/`` holding one run's artefacts.

Inside: ``config.json`` (the hyperparameters), ``history.csv``, ``tensorboard/``, ``backup/``
(BackupAndRestore state while training), plots and a markdown summary.
"""

import json
import time
from pathlib import Path

from trainers.atomic import write_text

RUNS_ROOT = Path("runs")


def timestamp():
    """Local time as ``YYYYmmdd-HHMMSS``, the suffix of run folders."""
    return time.strftime("%Y%m%d-%H%M%S")


def new_run_dir(name, root=RUNS_ROOT):
    """Create and return a fresh run folder ``root/<name>-<timestamp>`` (suffixed if taken)."""
    base = Path(root) / f"{name}-{timestamp()}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def write_config(run_dir, config):
    """Write the run's hyperparameters to ``run_dir/config.json`` atomically."""
    write_text(Path(run_dir) / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
