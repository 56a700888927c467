"""Train one run of a sequence-memory grid with ``model.fit``.

A run streams its task's infinite dataset with ``steps_per_epoch = LOG_EVERY`` (so CSV and
TensorBoard get a point every 10 steps), records its hyperparameters in TensorBoard's hparams
view, evaluates on a fixed held-out set drawn with another seed, and exports a SavedModel
(tokens → class probabilities) as the next version of ``saved_models/memory_<task>_<cell>_L<L>/``.
A resumed run restarts its data stream at the batch where its backup was.
"""

import dataclasses
import json
import math
from pathlib import Path

from keras_models.backend import keras, tf

from keras_models.models.memory_classifier import build_memory_model
from keras_models.serving.memory_classifier import serving_signatures
from keras_models.utils.atomic import write_text
from pipelines.memory.tasks import heldout_set, make_dataset, task_spec
from trainers.core.callbacks import (
    StepProgress,
    standard_callbacks,
    steps_backed_up,
    training_seconds,
)
from trainers.core.distribute import shard_by_data
from trainers.core.export import export_saved_model
from trainers.core.run_folders import read_history, run_status
from trainers.core.seeding import seed_everything
from trainers.memory.config import LOG_EVERY, REACHED


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
        model, f"memory_{config.task}_{config.cell}_L{config.length}",
        signatures=serving_signatures(model), root=saved_models,
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
