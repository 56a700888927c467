"""Run a sequence-memory grid: every ``MemoryConfig`` in a folder of its own, skipping finished
runs, one after another or ``jobs`` at a time in worker processes (``trainers/core/worker_pool.py``
running ``trainers/memory/workers.py``).
"""

import dataclasses
import json
from pathlib import Path

from keras_models.backend import keras, tf

from trainers.core.distribute import chief_path
from trainers.core.run_folders import read_status, start_over_if_failed, write_config
from trainers.memory.config import LOG_EVERY
from trainers.memory.train import record_run, result_line


def run_grid(configs, grid_dir, saved_models, *, log=print, strategy=None, jobs=1):
    """Run every config in ``grid_dir/<name>/`` (skipping finished ones); return the results.

    Each run builds and trains its model under ``strategy.scope()`` (default: one device). Every
    worker of a cluster skips what the chief's folder says is finished, so they stay in step.
    With ``jobs`` > 1 (one device only) the unfinished runs train ``jobs`` at a time, each in a
    process of its own (``trainers.memory.workers``).
    """
    strategy = strategy or tf.distribute.get_strategy()
    results, unfinished = {}, []
    for i, config in enumerate(configs, 1):
        label = f"[{i}/{len(configs)}] {config.name}"
        run_dir = Path(grid_dir) / config.name
        chief_run_dir = chief_path(run_dir, strategy)
        result_file = chief_run_dir / "result.json"
        if read_status(chief_run_dir) == "finished" and result_file.exists():
            log(f"{label}: finished earlier, skipped")
            results[config.name] = json.loads(result_file.read_text(encoding="utf-8"))
            continue
        if start_over_if_failed(run_dir):
            log(f"{label}: failed earlier, started over")
        run_dir.mkdir(parents=True, exist_ok=True)
        write_config(run_dir, dataclasses.asdict(config))
        unfinished.append((label, config, run_dir, result_file))
    if jobs > 1:
        from trainers.core.worker_pool import WorkerRun, train_in_processes

        runs = [WorkerRun(label, run_dir, config.steps, LOG_EVERY)
                for label, config, run_dir, _ in unfinished]
        by_folder = train_in_processes(runs, jobs, "trainers.memory.workers", [str(saved_models)],
                                       result_line=result_line, log=log)
        results.update({config.name: by_folder[run_dir] for _, config, run_dir, _ in unfinished})
    else:
        for label, config, run_dir, result_file in unfinished:
            log(f"{label}: training up to {config.steps} steps ...")
            with strategy.scope():
                results[config.name] = record_run(config, run_dir, saved_models, result_file)
            log(f"{label}: {result_line(results[config.name])}")
            keras.backend.clear_session()
    return [results[config.name] for config in configs]
