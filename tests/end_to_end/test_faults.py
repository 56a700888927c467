"""Faults: SIGKILL and rerun resumes, Ctrl-C stops cleanly, NaN keeps the last good backup,
an export killed midway leaves no version folder.

"Midway" is detected by polling the run folder (rows of ``history.csv``, written right after
each epoch's backup), never by sleeping blindly.
"""

import csv
import json
import math
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from keras_models.backend import tf

import numpy as np
import pytest
from run_helpers import MEMORY, TEXT, history_file, history_losses, write_corpus

from trainers.cli import main
from trainers.core.callbacks import CheckedBackupAndRestore
from trainers.core.run_folders import read_history
from trainers.core.runtime import EXIT_INTERRUPTED
from trainers.memory import train as memory
from trainers.text import train as text_train

# Long enough that the kill lands before the end, short enough to finish quickly on a rerun.
MEMORY_LONG = [*MEMORY, "--steps", "400"]
TEXT_LONG = [*TEXT, "--steps", "200", "--log-every", "10"]


def _start(argv, cwd):
    # A shell's background job inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: restore the default so Ctrl-C means Ctrl-C however pytest was started.
    return subprocess.Popen(
        [sys.executable, "-m", "trainers.cli", *argv], cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _epochs(root, task):
    """Logged epochs so far ([] before the first). The run folder changes while we look: an
    atomic write's scratch folder can vanish between listing and entering it."""
    try:
        return _rows(history_file(root, task), "epoch")
    except (AssertionError, FileNotFoundError):
        return []


def _rows(history_csv, column):
    """One column of a ``history.csv`` as numbers ([] while the file does not exist yet)."""
    try:
        with open(history_csv, newline="") as f:
            return [float(row[column]) for row in csv.DictReader(f)]
    except OSError:
        return []


def _kill_after_epoch(process, root, task, after, sig):
    """Send ``sig`` once ``history.csv`` shows more than ``after`` logged epochs."""
    deadline = time.monotonic() + 300
    while len(_epochs(root, task)) <= after:
        assert process.poll() is None, f"ended before the kill:\n{process.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, "no progress in 300 s"
        time.sleep(0.05)
    process.send_signal(sig)
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def _finish(argv, cwd):
    result = subprocess.run([sys.executable, "-m", "trainers.cli", *argv], cwd=cwd,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _status(folder):
    return json.loads((folder / "status.json").read_text())["status"]


def _assert_resumed_history(root, task, epochs, result):
    logged = _epochs(root, task)
    assert logged == sorted(set(logged)), f"epochs repeated (restarted, not resumed): {logged}"
    assert logged[-1] == epochs - 1 and len(logged) >= epochs - 1  # a kill may cost one row
    # The training time counts the epochs of the killed sessions too, not only the last one's.
    seconds = read_history(history_file(root, task))["seconds"]
    assert len(seconds) == len(logged) and min(seconds) > 0
    assert result["train_seconds"] == pytest.approx(math.fsum(seconds), abs=0.06)


def test_memory_ctrl_c_then_sigkill_then_rerun_completes(tmp_path):
    code, _, err = _kill_after_epoch(_start(MEMORY_LONG, tmp_path), tmp_path / "runs",
                                     "memory", 1, signal.SIGINT)
    assert code == 130
    assert err.strip().splitlines()[-1] == (
        "seqgraph memory: interrupted; run the same command again to resume from the last "
        "checkpoint"
    ) and "Traceback" not in err
    (grid,) = (tmp_path / "runs").iterdir()
    (run,) = (p for p in grid.iterdir() if p.is_dir())
    assert _status(grid) == _status(run) == "interrupted"
    assert list((run / "backup").rglob("*.index")), "Ctrl-C lost the last checkpoint"

    interrupted_at = len(_epochs(tmp_path / "runs", "memory"))
    _kill_after_epoch(_start(MEMORY_LONG, tmp_path), tmp_path / "runs", "memory",
                      interrupted_at + 1, signal.SIGKILL)
    assert _status(grid) == "running"  # a SIGKILL leaves no chance to write anything else

    out = _finish(MEMORY_LONG, tmp_path).stdout
    assert f"Resuming: runs/{grid.name}" in out
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [grid.name]
    result = json.loads((run / "result.json").read_text())
    assert result["steps_run"] == 400
    _assert_resumed_history(tmp_path / "runs", "memory", 40, result)
    assert _status(grid) == _status(run) == "finished"
    assert {"summary.md", "cells.png", "curves_lstm.png"} <= {p.name for p in grid.iterdir()}
    assert not list((run / "backup").rglob("*"))
    versions = [p.name for p in (tmp_path / "saved_models" / "memory_palindrome_lstm_L2").iterdir()]
    assert versions == ["1"]


def test_memory_jobs_ctrl_c_then_rerun_completes_and_matches_one_job(tmp_path):
    """``--jobs 2``: two runs in worker processes; a Ctrl-C sent to the parent alone reaches the
    workers, both resume, and the results equal those of the same grid run one job at a time."""
    two_seeds = [*MEMORY_LONG, "--seeds", "1", "2"]
    parallel = _start([*two_seeds, "--jobs", "2"], tmp_path)
    deadline = time.monotonic() + 300
    while len(_runs_with_rows(tmp_path / "runs", 2)) < 2:
        assert parallel.poll() is None, f"ended early:\n{parallel.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, "no progress in 300 s"
        time.sleep(0.05)
    parallel.send_signal(signal.SIGINT)
    _, err = parallel.communicate(timeout=120)
    assert parallel.returncode == EXIT_INTERRUPTED and "Traceback" not in err
    runs = _run_dirs(tmp_path / "runs")
    assert [_status(run) for run in runs] == ["interrupted", "interrupted"]
    assert all(list((run / "backup").rglob("*.index")) for run in runs)

    _finish([*two_seeds, "--jobs", "2"], tmp_path)
    _finish([*two_seeds, "--runs-dir", "sequential", "--saved-models", "sequential_models"],
            tmp_path)
    for run, sequential in zip(runs, _run_dirs(tmp_path / "sequential"), strict=True):
        logged = _rows(run / "history.csv", "epoch")
        assert logged == sorted(set(logged)) and logged[-1] == 39  # resumed, not restarted
        result, expected = (json.loads((r / "result.json").read_text()) for r in (run, sequential))
        assert result["steps_run"] == expected["steps_run"] == 400
        first_losses = [_rows(r / "history.csv", "loss")[0] for r in (run, sequential)]
        assert first_losses[0] == pytest.approx(first_losses[1], rel=1e-3)  # same seed, same data
        assert result["heldout_accuracy"] == pytest.approx(expected["heldout_accuracy"], abs=0.02)
    versions = sorted(p.name for p in (tmp_path / "saved_models" / "memory_palindrome_lstm_L2")
                      .iterdir())
    assert versions == ["1", "2"]  # two workers exporting one model name: a version each


def _run_dirs(root):
    return sorted(p for p in Path(root).glob("*/*") if p.is_dir())


def _runs_with_rows(root, rows):
    return [run for run in _run_dirs(root) if len(_rows(run / "history.csv", "epoch")) >= rows]


def test_text_sigkill_then_rerun_completes(tmp_path):
    write_corpus(tmp_path / "corpus.txt")
    _kill_after_epoch(_start(TEXT_LONG, tmp_path), tmp_path / "runs", "text", 2, signal.SIGKILL)
    (run,) = (tmp_path / "runs").iterdir()
    assert _status(run) == "running" and list((run / "backup").rglob("*.index"))

    _finish(TEXT_LONG, tmp_path)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run.name]
    result = json.loads((run / "result.json").read_text())
    assert result["resumed"] and result["steps"] == 200
    _assert_resumed_history(tmp_path / "runs", "text", 20, result)
    assert _status(run) == "finished"
    expected = {"samples.md", "loss.png", "accuracy.png", "vocabulary.txt", "config.json"}
    assert expected <= {p.name for p in run.iterdir()}
    assert (tmp_path / "saved_models" / "char_lstm" / "1" / "saved_model.pb").is_file()


def test_two_identical_commands_at_once_each_get_their_own_run_and_export(tmp_path):
    """Two terminals (or a script with ``&``) run the same ``text train`` at once. Before, the
    second resumed the first one's folder: two headers in ``history.csv``, a traceback, one
    export. The first is stopped (SIGSTOP) once it trains, so the second surely finds its
    ``running`` folder with the same config, held by a live process."""
    write_corpus(tmp_path / "corpus.txt")
    argv = [*TEXT, "--steps", "20", "--log-every", "5"]
    first = _start(argv, tmp_path)
    try:
        deadline = time.monotonic() + 300
        while not _epochs(tmp_path / "runs", "text"):
            assert first.poll() is None, first.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "no progress in 300 s"
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)
        second = _finish(argv, tmp_path)
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert "Resuming" not in out + second.stdout
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:
        header, *rows = (run / "history.csv").read_text().splitlines()
        assert header.startswith("epoch,") and [r.split(",")[0] for r in rows] == list("0123")
        assert _status(run) == "finished"
    exports = {json.loads((run / "result.json").read_text())["export"] for run in runs}
    assert exports == {str(Path("saved_models", "char_lstm", v)) for v in ("1", "2")}


@pytest.mark.parametrize("argv", [MEMORY, TEXT], ids=["memory", "text"])
def test_a_resumed_run_continues_the_data_stream_like_an_uninterrupted_one(
    argv, tmp_path, monkeypatch
):
    write_corpus(tmp_path / "corpus.txt")
    task = argv[0]
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--runs-dir", "straight"]) == 0
    expected = history_losses(tmp_path / "straight", task)

    backup = CheckedBackupAndRestore.on_epoch_end

    def back_up_then_interrupt(self, epoch, logs=None):
        backup(self, epoch, logs)
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(CheckedBackupAndRestore, "on_epoch_end", back_up_then_interrupt)
    assert main([*argv, "--runs-dir", "resumed"]) == EXIT_INTERRUPTED
    monkeypatch.setattr(CheckedBackupAndRestore, "on_epoch_end", backup)
    assert main([*argv, "--runs-dir", "resumed"]) == 0
    resumed = history_losses(tmp_path / "resumed", task)  # epoch 0's row fell with the interrupt
    # Before, the resumed run trained on the first batches again, and its losses differed.
    np.testing.assert_allclose(resumed, expected[-len(resumed):], rtol=1e-5)
    assert len(resumed) == len(expected) - 1


@pytest.mark.parametrize("argv", [MEMORY, TEXT], ids=["memory", "text"])
def test_an_interrupt_after_training_reruns_to_the_export_without_training_again(
    argv, tmp_path, monkeypatch
):
    """Ctrl-C in the export: the backup outlives ``fit`` until the result is written, so the
    rerun restores the trained weights, trains no step and exports. Before, the backup was
    deleted when ``fit`` ended, and the rerun trained from step 0 again (or, for text, the
    run counted as finished and had no result)."""
    write_corpus(tmp_path / "corpus.txt")
    monkeypatch.chdir(tmp_path)
    module = memory if argv is MEMORY else text_train
    export = module.export_saved_model

    def interrupted_export(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "export_saved_model", interrupted_export)
    assert main(argv) == EXIT_INTERRUPTED
    history = history_file(tmp_path / "runs", argv[0])
    run = history.parent
    trained = history.read_text()
    assert _status(run) == "interrupted" and list((run / "backup").rglob("*.index"))
    assert not (run / "result.json").exists()

    monkeypatch.setattr(module, "export_saved_model", export)
    assert main(argv) == 0
    assert history_file(tmp_path / "runs", argv[0]) == history
    assert history.read_text() == trained  # no epoch trained (or logged) again
    result = json.loads((run / "result.json").read_text())
    assert result.get("steps_run", result.get("steps")) == (20 if argv is MEMORY else 4)
    assert Path(result["export"], "saved_model.pb").is_file()
    assert _status(run) == "finished" and not (run / "backup").exists()


def test_nan_loss_stops_with_one_line_and_keeps_last_good_backup(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_corpus(tmp_path / "corpus.txt")
    # Adam moves every weight by about the learning rate: step 2's products of weights of 1e38
    # overflow float32, and the loss is NaN.
    code = main([*TEXT, "--steps", "5", "--lr", "1e38"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines() == [
        next(line for line in err.splitlines() if "training diverged" in line)
    ]
    assert "loss became" in err and "lower the learning rate" in err
    (run,) = (tmp_path / "runs").iterdir()
    assert _status(run) == "failed"
    assert list((run / "backup").rglob("*.index")), "the last good backup was deleted"
    assert not (tmp_path / "saved_models").exists()


def test_weights_that_explode_with_a_finite_loss_stop_before_the_backup(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    write_corpus(tmp_path / "corpus.txt")
    # Weights that exploded while the loss stayed finite (seen at --lr 1e30): the generator's
    # logits are not finite, and sampling must not draw an id outside the vocabulary (a
    # traceback before). Which learning rate gets there depends on the kernels' rounding, so
    # the explosion is made by hand at the first epoch end.
    sample = text_train.SamplesCallback.on_epoch_end

    def explode_then_sample(self, epoch, logs=None):
        bias = self.generator.model.dense.bias
        bias.assign(tf.fill(bias.shape, float("inf")))
        sample(self, epoch, logs)

    monkeypatch.setattr(text_train.SamplesCallback, "on_epoch_end", explode_then_sample)
    code = main([*TEXT, "--steps", "6", "--log-every", "2"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines() == [
        "seqgraph text: training diverged: by step 2 the model's logits are not finite although "
        "the loss was (the weights exploded); lower the learning rate (--lr)"
    ]
    (run,) = (tmp_path / "runs").iterdir()
    assert _status(run) == "failed"
    assert not list((run / "backup").rglob("*.index")), "the diverged weights were backed up"
    assert not (tmp_path / "saved_models").exists()


EXPORT_SLOWLY = textwrap.dedent(
    """
    import time
    from keras_models.backend import keras
    from trainers.core.export import export_saved_model

    save = keras.Model.save

    def save_then_hang(self, *args, **kwargs):
        save(self, *args, **kwargs)
        time.sleep(600)  # the SavedModel is complete in the temporary folder, not yet renamed

    keras.Model.save = save_then_hang
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    export_saved_model(model, "tiny", signatures=None)
    """
)


def test_export_killed_midway_leaves_no_version(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", EXPORT_SLOWLY], cwd=tmp_path,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    model_dir = tmp_path / "saved_models" / "tiny"
    while not list(model_dir.glob(".export.*/model/saved_model.pb")):
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.kill()
    process.wait()
    assert not (model_dir / "1").exists()

    from trainers.core.export import next_version

    assert next_version(model_dir) == 1  # the hidden leftover is not a version
