"""Train the sequence-memory grid: one ``model.fit`` run per cell × length × seed.

Each run streams its task's infinite dataset with ``steps_per_epoch = LOG_EVERY`` (so CSV and
TensorBoard get a point every 10 steps), records its hyperparameters in TensorBoard's hparams
view, evaluates on a fixed held-out set drawn with another seed, and exports a SavedModel
(tokens → class probabilities) as the next version of ``saved_models/memory_<task>_<cell>_L<L>/``.
A finished run keeps ``result.json``; rerunning an interrupted grid skips finished runs and
resumes the unfinished one from its backup, its data stream at the batch where the backup was.
"""

import dataclasses
import json
import math
from pathlib import Path

from keras_models.backend import keras, tf

from keras_models.models.memory_classifier import build_memory_model
from keras_models.utils.atomic import write_text
from pipelines.memory.tasks import heldout_set, make_dataset, task_spec
from trainers.core.callbacks import (
    StepProgress,
    standard_callbacks,
    steps_backed_up,
    training_seconds,
)
from trainers.core.distribute import chief_path, shard_by_data
from trainers.core.export import export_saved_model
from trainers.core.run_folders import read_history, read_status, run_status, write_config
from trainers.core.seeding import seed_everything

LOG_EVERY = 10
REACHED = 0.99
PRESETS = {
    # The assignment's setting (PyTorch's N(0, 1) embedding of width 1, Kaiming-normal kernels).
    "assignment": {
        "steps": 3000, "batch_size": 256, "units": 256, "embedding_dim": 1,
        "learning_rate": 1e-4, "clipnorm": 10.0, "initializer": "kaiming_normal",
        "forget_bias": None,
    },
    # Ours: a forget-gate bias of 4 lets the first bit survive the sequence at initialisation
    # (σ(4)^50 ≈ 0.4, σ(1)^50 ≈ 1e-7); with a wider embedding, fewer units (cheaper steps) and a
    # larger step size, L = 10 and 20 are learnt in about 50 steps (docs/benchmarks.md).
    "tuned": {
        "steps": 3000, "batch_size": 128, "units": 64, "embedding_dim": 8,
        "learning_rate": 3e-3, "clipnorm": 1.0, "initializer": None, "forget_bias": 4.0,
    },
}


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """One run's hyperparameters (``initializer``, ``forget_bias`` None keep the cell's own)."""

    task: str
    cell: str
    length: int
    seed: int
    steps: int
    batch_size: int
    units: int
    embedding_dim: int
    learning_rate: float
    clipnorm: float
    initializer: str | None
    forget_bias: float | None
    heldout_size: int = 10_000
    heldout_seed: int = 7
    early_stop: float | None = None
    eval_every: int = 100

    @property
    def name(self):
        return f"{self.cell}-L{self.length}-seed{self.seed}"

    def hparams(self):
        """Scalar-valued hyperparameters for TensorBoard's hparams view (None as "default")."""
        return {k: ("default" if v is None else v) for k, v in dataclasses.asdict(self).items()}


class StopAtHeldOutAccuracy(keras.callbacks.Callback):
    """Stop training once the held-out accuracy (``val_accuracy``) reaches ``threshold``."""

    def __init__(self, threshold):
        super().__init__()
        self.threshold = threshold

    def on_epoch_end(self, epoch, logs=None):
        if (logs or {}).get("val_accuracy", -1.0) >= self.threshold:
            self.model.stop_training = True


def read_steps_history(history_csv):
    """A run's history.csv as ``{"step": [...], column: [...]}``, one entry per logged period."""
    history = read_history(history_csv)
    history["step"] = [(int(epoch) + 1) * LOG_EVERY for epoch in history.get("epoch", [])]
    return history


def first_step_reaching(history_csv, threshold=REACHED, column="accuracy"):
    """The first step whose logged ``column`` is ≥ ``threshold`` (None if never)."""
    history = read_steps_history(history_csv)
    values = history.get(column, [math.nan] * len(history["step"]))
    reached = (s for s, v in zip(history["step"], values, strict=True) if v >= threshold)
    return next(reached, None)


def _validation_epochs(config, epochs):
    """Epochs (1-based) that evaluate the held-out set: every ``eval_every`` steps, and the first
    so the CSV has the column from its first row."""
    every = max(1, config.eval_every // LOG_EVERY)
    return sorted({1, *range(every, epochs + 1, every)})


def train_run(config, run_dir, saved_models):
    """Train, evaluate and export one run in ``run_dir``; return its result dict."""
    run_dir = Path(run_dir)
    seed_everything(config.seed)
    spec = task_spec(config.task, config.length)
    model = build_memory_model(
        config.cell, vocab_size=spec.vocab_size, num_classes=spec.num_classes,
        units=config.units, embedding_dim=config.embedding_dim, initializer=config.initializer,
        forget_bias=config.forget_bias, name=f"memory_{config.task}_{config.cell}",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=config.clipnorm),
        loss="sparse_categorical_crossentropy", metrics=["accuracy"],
    )
    train = shard_by_data(
        make_dataset(config.task, config.length, batch_size=config.batch_size, seed=config.seed,
                     start_batch=steps_backed_up(run_dir, LOG_EVERY))
    )
    heldout = heldout_set(config.task, config.length, config.heldout_size, config.heldout_seed)
    epochs = math.ceil(config.steps / LOG_EVERY)
    callbacks = [
        *standard_callbacks(run_dir), _hparams_callback(run_dir, config),
        StepProgress(config.steps),
    ]
    validation = {}
    if config.early_stop is not None:
        callbacks.append(StopAtHeldOutAccuracy(config.early_stop))
        validation = {
            "validation_data": heldout, "validation_batch_size": 1000,
            "validation_freq": _validation_epochs(config, epochs),
        }
    model.fit(train, steps_per_epoch=LOG_EVERY, epochs=epochs, callbacks=callbacks, verbose=0,
              **validation)
    loss, accuracy = model.evaluate(*heldout, batch_size=1000, verbose=0)
    steps_run = int(model.optimizer.iterations.numpy())
    with tf.summary.create_file_writer(str(run_dir / "tensorboard" / "heldout")).as_default():
        tf.summary.scalar("heldout_accuracy", accuracy, step=steps_run)
        tf.summary.scalar("heldout_loss", loss, step=steps_run)
    export = export_saved_model(
        model, f"memory_{config.task}_{config.cell}_L{config.length}", root=saved_models
    )
    return {
        **dataclasses.asdict(config),
        "input_length": spec.input_length,
        "heldout_accuracy": float(accuracy),
        "heldout_loss": float(loss),
        "steps_run": steps_run,
        "first_step_99": first_step_reaching(run_dir / "history.csv"),
        "first_step_99_heldout": first_step_reaching(
            run_dir / "history.csv", column="val_accuracy"
        ),
        "train_seconds": round(training_seconds(read_history(run_dir / "history.csv")), 1),
        "export": str(export),
    }


def _hparams_callback(run_dir, config):
    from tensorboard.plugins.hparams import api as hp

    return hp.KerasCallback(str(run_dir / "tensorboard"), config.hparams(), trial_id=config.name)


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
        run_dir.mkdir(parents=True, exist_ok=True)
        write_config(run_dir, dataclasses.asdict(config))
        unfinished.append((label, config, run_dir, result_file))
    if jobs > 1:
        from trainers.memory.workers import train_in_processes

        results.update(train_in_processes(unfinished, saved_models, jobs, log=log))
    else:
        for label, config, run_dir, result_file in unfinished:
            log(f"{label}: training up to {config.steps} steps ...")
            with strategy.scope():
                results[config.name] = record_run(config, run_dir, saved_models, result_file)
            log(f"{label}: {result_line(results[config.name])}")
            keras.backend.clear_session()
    return [results[config.name] for config in configs]


def record_run(config, run_dir, saved_models, result_file):
    """``train_run`` under the run's status (running, then finished, interrupted or failed),
    writing its result to ``result_file``."""
    with run_status(run_dir):
        result = train_run(config, run_dir, saved_models)
        write_text(result_file, json.dumps(result, indent=2) + "\n")
    return result


def result_line(result):
    """One line on a finished run: held-out accuracy, steps, first ≥ 0.99, training time."""
    return (
        f"held-out accuracy {result['heldout_accuracy']:.4f} after {result['steps_run']} steps, "
        f"training accuracy first ≥ {REACHED} at step {result['first_step_99'] or 'never'}, "
        f"{result['train_seconds']} s"
    )
