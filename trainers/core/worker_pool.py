"""Train a grid's runs side by side, each in a process of its own (``--jobs N``).

The parent (``train_in_processes``) starts ``python -m <worker module> RUN_DIR ARGS...`` per run;
the worker module's ``main`` calls ``worker_main``, which trains the run whose ``config.json`` is
in ``RUN_DIR`` (resuming from its backup) and writes its ``result.json``. Errors and Ctrl-C end a
worker as they end the command itself (one line, the same exit codes). ``seqgraph memory``
(``trainers/memory/workers.py``) and ``seqgraph text sweep`` (``trainers/text/sweep.py``) use it.
"""

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from keras_models.utils.errors import UsageError
from trainers.core import runtime

POLL_SECONDS = 1.0  # how often the parent looks at its workers
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # workers import the parent's code


@dataclasses.dataclass(frozen=True)
class WorkerRun:
    """One run for a worker: its progress label, its folder (with ``config.json``), its training
    steps and the steps each row of its ``history.csv`` stands for (for the progress bar)."""

    label: str
    run_dir: Path
    steps: int
    steps_per_row: int


def train_in_processes(runs, jobs, worker_module, worker_args=(), *, result_line, log=print):
    """Train ``runs`` (``WorkerRun``) ``jobs`` at a time, each in a ``python -m worker_module
    RUN_DIR *worker_args`` process with ``cores // jobs`` TensorFlow threads (unless
    ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS`` are set) and this process's code; one
    progress bar over all their steps. Returns ``{run_dir: result}`` read from each run's
    ``result.json``; ``result_line(result)`` is logged as each run finishes.

    A second thread speeds these small recurrent models up far less than twice, so two one-thread
    runs side by side finish a grid sooner than one two-thread run after another (1.5× sooner at
    the memory ``assignment`` setting, ``docs/benchmarks.md``).
    Each worker's output goes to ``<run>/worker.log``. A failed worker stops the others (they
    stop as on Ctrl-C, resumable) and raises one line naming the run; Ctrl-C (which reaches only
    this process: workers run in sessions of their own) is passed on to each worker once.
    """
    from keras_models.backend import keras

    threads = str(max(1, len(os.sched_getaffinity(0)) // jobs))
    python_path = [str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    # PYTHONFAULTHANDLER: a worker dying in native code leaves its Python stack in worker.log.
    env = {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads,
           "PYTHONFAULTHANDLER": "1", **os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
    waiting, running, results, shown = list(runs), {}, {}, None
    bar = keras.utils.Progbar(sum(run.steps for run in runs), unit_name="step",
                              interval=0.5 if sys.stdout.isatty() else 30.0)
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                run = waiting.pop(0)
                log(f"{run.label}: training up to {run.steps} steps in a process of its own ...")
                with open(run.run_dir / "worker.log", "a", encoding="utf-8") as out:
                    worker = subprocess.Popen(  # own session: Ctrl-C reaches only the parent
                        [sys.executable, "-m", worker_module, str(run.run_dir), *worker_args],
                        stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
                running[worker] = run
            time.sleep(POLL_SECONDS)
            for worker in [w for w in running if w.poll() is not None]:
                run = running.pop(worker)
                _check_worker(worker.returncode, run.label, run.run_dir / "worker.log")
                result_file = run.run_dir / "result.json"
                results[run.run_dir] = json.loads(result_file.read_text(encoding="utf-8"))
                log(f"{run.label}: {result_line(results[run.run_dir])}")
            done = sum(run.steps if run.run_dir in results else _steps_logged(run)
                       for run in runs)
            if done != shown:
                bar.update(done)
                shown = done
    except BaseException:
        _stop_workers(running)
        raise
    return results


def _steps_logged(run):
    """Steps a run's ``history.csv`` shows (capped at its steps), 0 before its first row."""
    try:
        with open(Path(run.run_dir) / "history.csv", encoding="utf-8") as f:
            rows = sum(1 for _ in f) - 1
    except OSError:
        return 0
    return min(run.steps, max(0, rows) * run.steps_per_row)


def _check_worker(returncode, label, log_path):
    """Raise for a worker that did not finish: KeyboardInterrupt after Ctrl-C, else one line."""
    if returncode == 0:
        return
    if returncode == runtime.EXIT_INTERRUPTED:
        raise KeyboardInterrupt
    lines = [line for line in Path(log_path).read_text(encoding="utf-8").splitlines() if line]
    reason = lines[-1] if lines else f"exit code {returncode}"
    raise UsageError(f"{label} stopped: {reason} (its log: {log_path})")


def _stop_workers(running):
    """Interrupt running workers as Ctrl-C would (each keeps its backup) and wait for them."""
    for worker in running:
        worker.send_signal(signal.SIGINT)
    for worker in running:
        worker.wait()


def worker_main(command, train_one, environment=None, argv=None):
    """A worker process's body: load TensorFlow quietly (with the command's ``environment``),
    then ``train_one(run_dir, *args)`` from ``argv`` (``RUN_DIR ARGS...``) under ``run_command``,
    so errors and Ctrl-C end it as they end ``seqgraph <command>``. Returns the exit code."""
    run_dir, *args = argv if argv is not None else sys.argv[1:]
    runtime.load_tensorflow(False, environment)
    return runtime.run_command(argparse.Namespace(
        command=command, run=lambda _: train_one(Path(run_dir), *args)))
