"""Shared plumbing: run folders that resume, the NaN guard, seeding, strategies, the allocator."""

import json
import os
import subprocess
import sys
from pathlib import Path

from keras_models.backend import keras, tf

import numpy as np
import pytest

from keras_models.utils.errors import TrainingDiverged, UsageError
from trainers.core import distribute
from trainers.core import run_folders as run_dir
from trainers.core.callbacks import EpochTensorBoard, StopOnNaN, standard_callbacks
from trainers.core.seeding import seed_everything


def test_unfinished_run_is_reopened_finished_is_not(tmp_path):
    config = {"cell": "lstm", "lengths": [10, 20]}
    first, resumed = run_dir.open_run_dir("memory", config, root=tmp_path)
    assert not resumed and json.loads((first / "config.json").read_text()) == config
    with pytest.raises(KeyboardInterrupt), run_dir.run_status(first):
        raise KeyboardInterrupt
    assert run_dir.read_status(first) == "interrupted"
    again, resumed = run_dir.open_run_dir("memory", config, root=tmp_path)
    assert (again, resumed) == (first, True)
    other, resumed = run_dir.open_run_dir("memory", {**config, "cell": "gru"}, root=tmp_path)
    assert other != first and not resumed
    with run_dir.run_status(first):
        pass
    assert run_dir.read_status(first) == "finished"
    fresh, resumed = run_dir.open_run_dir("memory", config, root=tmp_path)
    assert fresh not in (first, other) and not resumed



def test_a_failed_grid_is_reopened_a_failed_run_is_not(tmp_path):
    config = {"runs": [{"seed": 1}, {"seed": 2}]}
    grid, _ = run_dir.open_run_dir("memory", config, root=tmp_path)
    with pytest.raises(RuntimeError), run_dir.run_status(grid):
        raise RuntimeError("one run of the grid failed")
    assert run_dir.read_status(grid) == "failed"
    fresh, resumed = run_dir.open_run_dir("memory", config, root=tmp_path)
    assert fresh != grid and not resumed
    run_dir.release(fresh)
    again, resumed = run_dir.open_run_dir("memory", config, root=tmp_path,
                                          reopen=run_dir.UNFINISHED_GRID)
    assert (again, resumed) == (grid, True)
    run_dir.release(grid)
    assert run_dir.start_over_if_failed(grid) and not grid.exists()
    assert not run_dir.start_over_if_failed(fresh) and fresh.exists()  # no status: not failed


HOLD_A_RUN = """
import sys, time
from trainers.core import run_folders
path, resumed = run_folders.open_run_dir("text", {"seed": 1}, root=sys.argv[1])
with run_folders.run_status(path):
    print(path, resumed, flush=True)
    time.sleep(600)
"""


def test_a_run_held_by_a_live_process_is_not_reopened_until_it_dies(tmp_path):
    """Another process trains in a folder (status ``running``, same config): an identical command
    gets a folder of its own; once that process is SIGKILLed, its lock is gone and the next
    identical command resumes the folder."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_A_RUN, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        held, resumed = holder.stdout.readline().split()
        assert resumed == "False" and run_dir.read_status(held) == "running"
        second, resumed = run_dir.open_run_dir("text", {"seed": 1}, root=tmp_path)
        assert str(second) != held and not resumed
        run_dir.release(second)
    finally:
        holder.kill()
        holder.wait()
    again, resumed = run_dir.open_run_dir("text", {"seed": 1}, root=tmp_path)
    assert (str(again), resumed) == (held, True)
    with run_dir.run_status(again):  # the lock ends with the block: another process may take it
        pass
    taker = subprocess.run([sys.executable, "-c", "import sys\nfrom trainers.core import "
                            "run_folders as r\nprint(r.claim(sys.argv[1]))", str(again)],
                           capture_output=True, text=True, check=True)
    assert taker.stdout.strip() == "True"


def test_run_folders_asked_for_in_the_same_second_are_distinct(tmp_path, monkeypatch):
    monkeypatch.setattr(run_dir, "timestamp", lambda: "20260101-000000")
    folders = [run_dir.new_run_dir("text", root=tmp_path) for _ in range(3)]
    assert [f.name for f in folders] == ["text-20260101-000000", "text-20260101-000000-2",
                                         "text-20260101-000000-3"]


def test_output_folders_are_checked_without_creating_anything(tmp_path):
    from trainers.core.preflight import check_output_folders

    (tmp_path / "file").write_text("")
    check_output_folders({"--runs-dir": tmp_path / "new" / "deeper", "--saved-models": tmp_path})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing created
    for path, message in [
        (tmp_path / "file", f"--runs-dir {tmp_path / 'file'} exists and is not a folder; give a "
                            "folder path"),
        (tmp_path / "file" / "x", f"--runs-dir {tmp_path / 'file' / 'x'} cannot be created: "
                                  f"{tmp_path / 'file'} is not a folder; give a folder path"),
        (Path("/sys"), "--runs-dir /sys is not writable (Permission denied); give a folder you "
                       "can write to"),  # even for root: sysfs refuses new files
    ]:
        with pytest.raises(UsageError) as error:
            check_output_folders({"--runs-dir": path})
        assert str(error.value) == message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_failure_marks_run_failed(tmp_path):
    with pytest.raises(ValueError), run_dir.run_status(tmp_path):
        raise ValueError("boom")
    assert run_dir.read_status(tmp_path) == "failed"


def _fit(model, run, x, y, epochs):
    model.fit(x, y, batch_size=4, epochs=epochs, verbose=0, callbacks=standard_callbacks(run))


def _scalar_events(log_dir):
    """``(writer folder, tag, step, value, plugin)`` of every scalar event under ``log_dir``."""
    events = []
    for path in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                events.append((path.parent.name, value.tag, event.step,
                               float(tf.make_ndarray(value.tensor)),
                               value.metadata.plugin_data.plugin_name))
    return sorted(events)


@pytest.mark.parametrize("steps_per_second", [False, True])
def test_epoch_tensorboard_writes_the_events_keras_tensorboard_writes(tmp_path, steps_per_second):
    """Reference: Keras' own ``TensorBoard`` beside ours in the same fit (the same logs), with
    a learning-rate schedule (logged by Keras as ``learning_rate``), with and without
    ``steps_per_second``, and the NaN guard, which makes Keras call the batch hooks."""
    seed_everything(0)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    model.compile(keras.optimizers.SGD(schedule), "mse", metrics=["mae"])
    callbacks = [cls(str(tmp_path / name), write_graph=False,
                     write_steps_per_second=steps_per_second)
                 for cls, name in ((keras.callbacks.TensorBoard, "keras"),
                                   (EpochTensorBoard, "ours"))]
    with pytest.MonkeyPatch.context() as patch:  # the same steps per second in both
        for callback in callbacks:
            patch.setattr(callback, "_compute_steps_per_second", lambda: 4.0)
        model.fit(x, x[:, :1], validation_data=(x, x[:, :1]), batch_size=8, epochs=3,
                  verbose=0, callbacks=[StopOnNaN(), *callbacks])
    timed = "batch_steps_per_second"  # per batch, by the wall clock: differs between the two
    theirs, ours = ([e for e in _scalar_events(tmp_path / name) if e[1] != timed]
                    for name in ("keras", "ours"))
    epoch_tags = {e[1] for e in theirs if e[1].startswith("epoch_")}
    per_second = {"epoch_steps_per_second"} if steps_per_second else set()
    assert epoch_tags == {"epoch_loss", "epoch_mae", "epoch_learning_rate", *per_second}
    assert sum(e[1].startswith("epoch_") for e in theirs) == 3 * (len(epoch_tags) + 2)
    assert ours == theirs


def test_nan_stops_and_keeps_last_good_backup(tmp_path):
    seed_everything(0)
    x = np.ones((8, 2), "float32")
    y = np.ones((8, 1), "float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    with run_dir.run_status(tmp_path):
        _fit(model, tmp_path, x, y, epochs=1)
        assert any((tmp_path / "backup").rglob("*.index")), "fit's end deleted the backup"
    assert not (tmp_path / "backup").exists(), "a finished run kept its backup"

    class PoisonAtEpoch2(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                self.model.layers[0].kernel.assign(tf.fill((2, 1), np.nan))

    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        model.fit(
            x, y, batch_size=4, epochs=5, verbose=0,
            callbacks=[PoisonAtEpoch2(), *standard_callbacks(tmp_path / "nan")],
        )
    assert any((tmp_path / "nan" / "backup").rglob("*.index")), "last good backup was deleted"


def test_seeding_reproduces_initial_weights():
    def weights():
        seed_everything(7)
        layer = keras.layers.Dense(3)
        layer.build((None, 4))
        return layer.kernel.numpy()

    np.testing.assert_array_equal(weights(), weights())


def test_multiworker_without_tf_config_is_a_usage_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UsageError, match="needs TF_CONFIG"):
        distribute.make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(UsageError, match="TF_CONFIG is not valid"):
        distribute.make_strategy("multiworker")


def test_default_strategy_is_chief():
    assert distribute.is_chief(distribute.make_strategy("default"))


@pytest.mark.parametrize("argv, preset, expected", [
    (["memory", "--lengths", "-2"], None, "true"),
    (["memory", "--lengths", "-2"], "false", "false"),
    (["text", "sample", "--model", "x", "--length", "0"], None, None),
], ids=["memory", "memory, user's choice", "text"])
def test_the_memory_command_picks_the_bfc_cpu_allocator_before_tensorflow_loads(
    argv, preset, expected
):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    if preset is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = preset
    code = (
        "import os, sys\n"
        "from trainers import cli\n"
        "assert 'tensorflow' not in sys.modules\n"
        f"assert cli.main({argv!r}) == 2\n"
        "print(os.environ.get('TF_CPU_ALLOCATOR_USE_BFC'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=300).stdout
    assert out.strip().splitlines()[-1] == str(expected)
