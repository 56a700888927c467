"""Train a memory grid's runs side by side, each in a process of its own (``--jobs N``).

The parent (``train_in_processes``) starts ``python -m trainers.memory.workers RUN_DIR
SAVED_MODELS`` per run; the worker (``main``) trains the run whose ``config.json`` is in
``RUN_DIR`` (resuming from its backup), exports it and writes ``result.json``. Errors and Ctrl-C
end a worker as they end ``seqgraph memory`` (one line, the same exit codes).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from keras_models.utils.errors import UsageError
from trainers.core import runtime
from trainers.memory.config import LOG_EVERY, TENSORFLOW_ENVIRONMENT, MemoryConfig

POLL_SECONDS = 1.0  # how often the parent looks at its workers
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # workers import the parent's code


def train_in_processes(unfinished, saved_models, jobs, *, log=print):
    """Train ``unfinished`` runs (``(label, config, run_dir, result_file)``) ``jobs`` at a time,
    each in a ``python -m trainers.memory.workers`` process with ``cores // jobs`` TensorFlow
    threads (unless ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS`` are set) and this
    process's code; one progress bar over all their steps. Returns ``{name: result}``.

    A second thread speeds these small recurrent models up far less than twice, so two one-thread
    runs side by side finish a grid sooner than one two-thread run after another (1.5× sooner at
    the ``assignment`` setting, ``docs/benchmarks.md``).
    Each worker's output goes to ``<run>/worker.log``. A failed worker stops the others (they
    stop as on Ctrl-C, resumable) and raises one line naming the run; Ctrl-C (which reaches only
    this process: workers run in sessions of their own) is passed on to each worker once.
    """
    from keras_models.backend import keras

    from trainers.memory.train import result_line

    threads = str(max(1, len(os.sched_getaffinity(0)) // jobs))
    python_path = [str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    # PYTHONFAULTHANDLER: a worker dying in native code leaves its Python stack in worker.log.
    env = {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads,
           "PYTHONFAULTHANDLER": "1", **os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
    waiting, running, results, shown = list(unfinished), {}, {}, None
    bar = keras.utils.Progbar(sum(config.steps for _, config, *_ in unfinished),
                              unit_name="step", interval=0.5 if sys.stdout.isatty() else 30.0)
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                label, config, run_dir, result_file = waiting.pop(0)
                log(f"{label}: training up to {config.steps} steps in a process of its own ...")
                with open(run_dir / "worker.log", "a", encoding="utf-8") as out:
                    worker = subprocess.Popen(  # own session: Ctrl-C reaches only the parent
                        [sys.executable, "-m", "trainers.memory.workers", str(run_dir),
                         str(saved_models)], stdout=out, stderr=subprocess.STDOUT, env=env,
                        start_new_session=True)
                running[worker] = (label, config, run_dir, result_file)
            time.sleep(POLL_SECONDS)
            for worker in [w for w in running if w.poll() is not None]:
                label, config, run_dir, result_file = running.pop(worker)
                _check_worker(worker.returncode, label, run_dir / "worker.log")
                results[config.name] = json.loads(result_file.read_text(encoding="utf-8"))
                log(f"{label}: {result_line(results[config.name])}")
            done = sum(
                config.steps if config.name in results else _steps_logged(run_dir, config.steps)
                for _, config, run_dir, _ in unfinished)
            if done != shown:
                bar.update(done)
                shown = done
    except BaseException:
        _stop_workers(running)
        raise
    return results


def _steps_logged(run_dir, steps):
    """Steps a run's ``history.csv`` shows (capped at ``steps``), 0 before its first row."""
    try:
        with open(Path(run_dir) / "history.csv", encoding="utf-8") as f:
            rows = sum(1 for _ in f) - 1
    except OSError:
        return 0
    return min(steps, max(0, rows) * LOG_EVERY)


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


def train_one(run_dir, saved_models):
    """Train, export and record the run in ``run_dir``; its status follows the outcome."""
    from trainers.memory.train import record_run

    config = MemoryConfig(**json.loads((run_dir / "config.json").read_text(encoding="utf-8")))
    record_run(config, run_dir, saved_models, run_dir / "result.json")
    return 0


def main(argv=None):
    run_dir, saved_models = (Path(a) for a in (argv or sys.argv[1:]))
    runtime.load_tensorflow(False, TENSORFLOW_ENVIRONMENT)
    return runtime.run_command(argparse.Namespace(
        command="memory", run=lambda _: train_one(run_dir, saved_models)))


if __name__ == "__main__":
    sys.exit(main())
