"""The run-folder convention: ``runs/<name>-<YYYYmmdd-HHMMSS>/`` holding one run's artefacts.

Inside: ``config.json`` (the hyperparameters), ``status.json`` (running, interrupted, failed or
finished), ``history.csv``, ``tensorboard/``, ``backup/`` (BackupAndRestore state until the
run's result is written), plots and a markdown summary. Running the same command again after a
crash or Ctrl-C reopens the unfinished folder with the same configuration, and training resumes
from its backup.
"""

import contextlib
import csv
import json
import math
import shutil
import time
from pathlib import Path

from keras_models.utils.atomic import write_text

RUNS_ROOT = Path("runs")
BACKUP = "backup"  # the BackupAndRestore folder inside a run folder


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


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_status(run_dir):
    """The run's status string, or None when it has none."""
    return (_read_json(Path(run_dir) / "status.json") or {}).get("status")


def open_run_dir(name, config, root=RUNS_ROOT):
    """Reopen the newest unfinished run of ``name`` with this exact config, or start a new one.

    Returns ``(run_dir, resumed)``. Unfinished means status ``running`` (the process died) or
    ``interrupted`` (Ctrl-C); finished and failed runs are never reopened.
    """
    wanted = json.loads(json.dumps(config))
    for path in sorted(Path(root).glob(f"{name}-*"), reverse=True):
        unfinished = read_status(path) in ("running", "interrupted")
        if unfinished and _read_json(path / "config.json") == wanted:
            return path, True
    path = new_run_dir(name, root)
    write_config(path, config)
    return path, False


def _write_status(run_dir, status):
    write_text(Path(run_dir) / "status.json", json.dumps({"status": status}) + "\n")


@contextlib.contextmanager
def run_status(run_dir):
    """Mark the run ``running`` while the block runs, then ``finished``, ``interrupted`` or
    ``failed``; exceptions propagate unchanged.

    A finished run's backup is deleted: put everything up to the saved result inside the block,
    so that a crash in the evaluation or the export reruns from the backup with training done.
    """
    _write_status(run_dir, "running")
    try:
        yield
    except KeyboardInterrupt:
        _write_status(run_dir, "interrupted")
        raise
    except BaseException:
        _write_status(run_dir, "failed")
        raise
    _write_status(run_dir, "finished")
    shutil.rmtree(Path(run_dir) / BACKUP, ignore_errors=True)


def read_history(path):
    """A run's ``history.csv`` (Keras' CSVLogger) as ``{column: [floats]}``; "NA" becomes NaN."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    columns = rows[0].keys() if rows else ()
    return {k: [math.nan if r[k] in ("", "NA") else float(r[k]) for r in rows] for k in columns}
