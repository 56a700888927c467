"""The standard Keras callbacks every seqgraph trainer uses."""

import math
from pathlib import Path

from keras_models.backend import keras, tf

from trainers.distribute import chief_path
from trainers.errors import TrainingDiverged, UsageError


def standard_callbacks(run_dir, *, backup=True):
    """NaN guard, BackupAndRestore (resume after a crash), TensorBoard and CSV history.

    Trainers that stream infinite data set ``steps_per_epoch`` to their logging interval, so one
    Keras "epoch" is one logging (and checkpoint) period. Under ``multiworker`` every worker
    backs up to (and restores from) the chief's ``backup/`` (Keras keeps non-chief writes in
    temporary subfolders); call this inside ``strategy.scope()``.
    """
    run_dir = Path(run_dir)
    callbacks = [
        StopOnNaN(),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]
    if backup:
        callbacks.insert(1, CheckedBackupAndRestore(str(chief_path(run_dir / "backup"))))
    return callbacks


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
        except (tf.errors.OpError, ValueError, IndexError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise UsageError(
                f"the backup in {self.backup_dir} cannot be read ({reason}); the run is marked "
                "failed: run the same command again to start it over"
            ) from None
