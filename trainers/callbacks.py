"""The standard Keras callbacks every seqgraph trainer uses."""

from pathlib import Path

from keras_models.backend import keras


def standard_callbacks(run_dir, *, backup=True):
    """TensorBoard, CSV history, BackupAndRestore (resume after a crash) and TerminateOnNaN.

    Trainers that stream infinite data set ``steps_per_epoch`` to their logging interval, so one
    Keras "epoch" is one logging (and checkpoint) period.
    """
    run_dir = Path(run_dir)
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
    ]
    if backup:
        callbacks.insert(1, keras.callbacks.BackupAndRestore(str(run_dir / "backup")))
    return callbacks
