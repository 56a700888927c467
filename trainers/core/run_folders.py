"""The run-folder convention: ``runs/<name>-<YYYYmmdd-HHMMSS>/`` holding one run's artefacts.

Inside: ``config.json`` (the hyperparameters), ``status.json`` (running, interrupted, failed or
finished), ``history.csv``, ``tensorboard/``, ``backup/`` (BackupAndRestore state until the
run's result is written), plots and a markdown summary. Running the same command again after a
crash or Ctrl-C reopens the unfinished folder with the same configuration, and training resumes
from its backup.

A process claims the folder it trains in with an exclusive ``flock`` on ``run_dir/.lock``, held
until its ``run_status`` block ends. The kernel drops the lock when the process dies, however it
dies (SIGKILL included), so a rerun takes over the folder of a killed run; a folder whose lock a
live process holds is never reopened: a second identical command started meanwhile gets a new
folder of its own.
"""

import contextlib
import csv
import fcntl
import json
import math
import os
import shutil
import time
from pathlib import Path

from keras_models.utils.atomic import write_text

RUNS_ROOT = Path("runs")
BACKUP = "backup"  # the BackupAndRestore folder inside a run folder
LOCK = ".lock"  # flock-ed by the process that trains in the run folder
_claimed = {}  # resolved run folder -> the open descriptor of its lock file


def timestamp():
    """Local time as ``YYYYmmdd-HHMMSS``, the suffix of run folders."""
    return time.strftime("%Y%m%d-%H%M%S")


def new_run_dir(name, root=RUNS_ROOT):
    """Create and return a fresh run folder ``root/<name>-<timestamp>`` (suffixed if taken).

    ``mkdir`` is the claim: of two processes asking in the same second, one gets the name and the
    other the next suffix.
    """
    base = Path(root) / f"{name}-{timestamp()}"
    Path(root).mkdir(parents=True, exist_ok=True)
    path, n = base, 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def claim(run_dir):
    """Take the exclusive lock of ``run_dir`` for this process; False if another process holds it.

    The lock lasts until ``release`` (``run_status`` releases it) or the process's end.
    """
    key = Path(run_dir).resolve()
    if key in _claimed:
        return True
    descriptor = os.open(key / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return False
    _claimed[key] = descriptor
    return True


def release(run_dir):
    """Drop this process's lock of ``run_dir`` (nothing if it holds none)."""
    descriptor = _claimed.pop(Path(run_dir).resolve(), None)
    if descriptor is not None:
        os.close(descriptor)  # closing the last descriptor of the lock file unlocks it


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


UNFINISHED = ("running", "interrupted")  # the process died, or Ctrl-C
# A grid whose run failed keeps its finished runs: it is reopened, and the failed run starts over.
UNFINISHED_GRID = (*UNFINISHED, "failed")


def open_run_dir(name, config, root=RUNS_ROOT, reopen=UNFINISHED):
    """Reopen the newest run of ``name`` with this exact config whose status is in ``reopen``, or
    start a new one; either way the folder is claimed for this process (``claim``).

    Returns ``(run_dir, resumed)``. A folder whose lock a live process holds is never reopened;
    finished runs never are, and failed ones only when ``reopen`` says so (``UNFINISHED_GRID``).
    """
    wanted = json.loads(json.dumps(config))
    for path in sorted(Path(root).glob(f"{name}-*"), reverse=True):
        unfinished = read_status(path) in reopen
        if unfinished and _read_json(path / "config.json") == wanted and claim(path):
            if read_status(path) in reopen:  # not finished meanwhile
                return path, True
            release(path)
    path = new_run_dir(name, root)
    claim(path)  # before config.json: nobody considers a folder without one
    write_config(path, config)
    return path, False


def start_over_if_failed(run_dir):
    """Empty ``run_dir`` if its run failed (an unreadable backup, an error inside training): such
    a run is not resumed but trained again from the start. True if it was emptied."""
    if read_status(run_dir) != "failed":
        return False
    shutil.rmtree(run_dir)
    return True


def _write_status(run_dir, status):
    write_text(Path(run_dir) / "status.json", json.dumps({"status": status}) + "\n")


@contextlib.contextmanager
def run_status(run_dir):
    """Mark the run ``running`` while the block runs, then ``finished``, ``interrupted`` or
    ``failed``; exceptions propagate unchanged. The folder's lock (``claim``) is released at the
    end.

    A finished run's backup is deleted: put everything up to the saved result inside the block,
    so that a crash in the evaluation or the export reruns from the backup with training done.
    """
    try:
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
    finally:  # after the final status: a rerun that takes the lock reads the truth
        release(run_dir)


def read_history(path):
    """A run's ``history.csv`` (Keras' CSVLogger) as ``{column: [floats]}``; "NA" becomes NaN."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    columns = rows[0].keys() if rows else ()
    return {k: [math.nan if r[k] in ("", "NA") else float(r[k]) for r in rows] for k in columns}
