"""The standard Keras callbacks every seqgraph trainer uses."""

import math
import sys
import time
from pathlib import Path

from keras_models.backend import keras, tf

import numpy as np

from keras_models.utils.errors import TrainingDiverged, UsageError
from trainers.core.distribute import chief_path
from trainers.core.run_folders import BACKUP

# The last finished epoch, as BackupAndRestore writes it into its checkpoints.
SAVED_EPOCH_KEY = "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"
# What TensorFlow raises on reading a corrupt or truncated checkpoint (a data file cut short is an
# IndexError from its reader).
UNREADABLE_CHECKPOINT = (tf.errors.OpError, ValueError, IndexError)


def standard_callbacks(run_dir, *, backup=True):
    """Epoch timer, NaN guard, BackupAndRestore (resume after a crash), TensorBoard and CSV history.

    The backup outlives ``fit``; ``run_status`` deletes it when the run has finished.

    Trainers that stream infinite data set ``steps_per_epoch`` to their logging interval, so one
    Keras "epoch" is one logging (and checkpoint) period. Under ``multiworker`` every worker
    backs up to (and restores from) the chief's ``backup/`` (Keras keeps non-chief writes in
    temporary subfolders); call this inside ``strategy.scope()``.
    """
    run_dir = Path(run_dir)
    callbacks = [
        EpochSeconds(),
        StopOnNaN(),
        EpochTensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]
    if backup:
        backup_dir = str(chief_path(run_dir / BACKUP))
        callbacks.insert(2, CheckedBackupAndRestore(backup_dir, delete_checkpoint=False))
    return callbacks


def training_seconds(history):
    """Seconds of training in a run's history (``read_history``), over every session that
    wrote to it: a resumed run counts the epochs of its earlier sessions too."""
    return math.fsum(s for s in history.get("seconds", ()) if math.isfinite(s))


def steps_backed_up(run_dir, steps_per_epoch):
    """Training steps held by ``run_dir``'s last backup, 0 without one: where a resumed run's
    data stream must start (``BackupAndRestore`` restores weights and epoch, not the data).

    An unreadable backup counts as none; ``CheckedBackupAndRestore`` then reports it.
    """
    # Every worker restores from the chief's folder, which BackupAndRestore calls "chief".
    latest = tf.train.latest_checkpoint(str(chief_path(Path(run_dir) / BACKUP) / "chief"))
    if latest is None:
        return 0
    try:
        epoch = tf.train.load_checkpoint(latest).get_tensor(SAVED_EPOCH_KEY)
    except UNREADABLE_CHECKPOINT:
        return 0
    return (int(epoch) + 1) * steps_per_epoch


class EpochSeconds(keras.callbacks.Callback):
    """Add each epoch's wall seconds (training and validation) to its logs as ``seconds``, so
    ``history.csv`` keeps them across resumes and TensorBoard plots them (``epoch_seconds``).

    Must come before the callbacks that write the logs.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self.start


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """Keras' ``TensorBoard`` that writes the same events at less cost per epoch.

    Keras writes an epoch's logs with one eager ``tf.summary.scalar`` per value; here one
    ``tf.function`` (traced again only when the names change) writes them all: the same
    events, ``epoch_<name>`` at step ``epoch`` as float32 (``tf.summary.scalar``'s dtype),
    ``val_`` values in ``validation/``, the others (with the learning rate of a schedule and
    ``steps_per_second`` when asked, as Keras adds them) in ``train/``. And Keras calls every
    callback's batch hooks once any callback has one (``StopOnNaN``): its ``TensorBoard`` then
    makes a ``batch_<name>`` scalar of every log after every batch, which with
    ``update_freq="epoch"`` no writer receives; this one skips them. Each saves about 1 ms per
    epoch (CPU time, one thread), where a full-batch Cora GAT epoch takes about 30 ms.
    """

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._write_epoch = None  # the writers are new for every fit; so is the function

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" and not self._implements_train_batch_hooks():
            return  # Keras would write batch_<name> scalars with no writer set: nothing
        super().on_train_batch_end(batch, logs)

    def _log_epoch_metrics(self, epoch, logs):
        if not logs:
            return
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        train = self._collect_learning_rate(train)
        if self.write_steps_per_second:
            train["steps_per_second"] = self._compute_steps_per_second()
        val = {k[len("val_"):]: v for k, v in logs.items() if k.startswith("val_")}
        if self._write_epoch is None:
            self._write_epoch = tf.function(self._write_scalars)
        self._write_epoch(
            tuple(f"epoch_{k}" for k in train), np.array(list(train.values()), np.float32),
            tuple(f"epoch_{k}" for k in val), np.array(list(val.values()), np.float32),
            tf.constant(epoch, tf.int64),
        )

    def _write_scalars(self, train_names, train_values, val_names, val_values, step):
        with tf.summary.record_if(True):
            for writer, names, values in ((self._train_writer, train_names, train_values),
                                          (self._val_writer, val_names, val_values)):
                if names:
                    with writer.as_default():
                        for name, value in zip(names, tf.unstack(values), strict=True):
                            tf.summary.scalar(name, value, step=step)


class StopAfterMinutes(keras.callbacks.Callback):
    """Stop training once ``minutes`` of wall time are spent: ``spent_seconds`` (earlier sessions
    of a resumed run, e.g. ``training_seconds`` of its history) plus this session's time since
    ``on_train_begin``, read from ``clock`` (seconds; ``time.perf_counter`` as ``EpochSeconds``).

    Checked after every batch: Keras then ends the epoch early (validation and the epoch's logs
    and backup still happen) and stops, so a run stops within one step of its budget. Runs of
    different sizes compared at the same budget are compared at equal cost.
    """

    def __init__(self, minutes, spent_seconds=0.0, clock=time.perf_counter):
        super().__init__()
        self.budget = 60.0 * minutes - spent_seconds
        self.clock = clock

    def on_train_begin(self, logs=None):
        self.start = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        if self.clock() - self.start >= self.budget:
            self.model.stop_training = True


class StopOnNaN(keras.callbacks.Callback):
    """Stop at the first NaN or infinite loss by raising ``TrainingDiverged``.

    Unlike ``TerminateOnNaN``, raising skips ``on_train_end``, so ``BackupAndRestore`` keeps the
    last good checkpoint (from the previous epoch end) instead of deleting it.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"loss became {loss} at batch {batch}; lower the learning rate or clip gradients"
            )


class CheckedBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose unreadable backup (corrupt, truncated) is one ``UsageError``."""

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except UNREADABLE_CHECKPOINT as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise UsageError(
                f"the backup in {self.backup_dir} cannot be read ({reason}); the run is marked "
                "failed: run the same command again to start it over"
            ) from None


class StepProgress(keras.callbacks.Callback):
    """One Keras progress bar over a whole run's optimizer steps, advanced every logging period.

    For trainers whose Keras "epoch" is a short logging interval, where Keras' own per-epoch
    bar would print hundreds of lines. Resumed runs start the bar where the backup left off.
    """

    def __init__(self, total_steps, metrics=("loss", "accuracy")):
        super().__init__()
        self.total_steps = total_steps
        self.metrics = metrics

    def on_train_begin(self, logs=None):
        interval = 0.5 if sys.stdout.isatty() else 30.0  # a line per 30 s in a log file
        self.bar = keras.utils.Progbar(
            self.total_steps, stateful_metrics=self.metrics, interval=interval, unit_name="step"
        )

    def _update(self, logs, finalize=None):
        values = [(m, logs[m]) for m in self.metrics if m in (logs or {})]
        self.bar.update(self.steps_done, values, finalize=finalize)

    @property
    def steps_done(self):
        return int(self.model.optimizer.iterations.numpy())

    def on_epoch_end(self, epoch, logs=None):
        self._update(logs)

    def on_train_end(self, logs=None):
        if self.steps_done < self.total_steps:  # stopped early: close the bar where it is
            self._update(logs, finalize=True)
