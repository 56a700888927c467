"""The text trainer and ``seqgraph text``: outputs, loss definition, resume, sampling, errors."""

import csv
import json
import math
import re

from keras_models.backend import tf

import numpy as np
import pytest

from keras_models.models.char_language_model import CharModel
from pipelines.text.windows import training_dataset
from trainers import cli
from trainers.core import runtime
from trainers.text import train as text_train
from trainers.text.config import TextConfig

SENTENCES = "the cat sat on the mat. a dog ran in the fog. "


@pytest.fixture
def book(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(SENTENCES * 60, encoding="utf-8")
    return path


TINY = ["--seq-length", "10", "--units", "8", "--embedding-dim", "4", "--batch-size", "8",
        "--sample-length", "40"]


def test_loss_is_cross_entropy_averaged_over_time_steps():
    model = CharModel(5, embedding_dim=3, units=4, cell="keras_lstm")
    text_train.compile_model(model, TextConfig())
    rng = np.random.default_rng(0)
    inputs, targets = rng.integers(0, 5, (3, 7)), rng.integers(0, 5, (3, 7))
    loss, _, bits = model.evaluate(inputs, targets, verbose=0)
    log_p = tf.nn.log_softmax(model(inputs)).numpy()
    expected = -np.mean(np.take_along_axis(log_p, targets[..., None], -1))
    assert loss == pytest.approx(expected, rel=1e-5)
    assert bits == pytest.approx(expected / math.log(2), rel=1e-5)


def test_training_batches_take_the_fused_path(lstm_cell_calls):
    """The pipeline's windows have a static length, so a training step traced from its element
    spec (as ``fit`` traces it) runs FusedLSTM's whole-sequence op, never the per-step cell."""
    ids = tf.constant(np.arange(500) % 7, tf.int64)
    dataset = training_dataset(ids, seq_length=12, batch_size=4, seed=0)
    model = CharModel(7, embedding_dim=3, units=4, num_layers=2)
    text_train.compile_model(model, TextConfig())
    step = tf.function(model.train_step, input_signature=[dataset.element_spec])
    logs = step(next(iter(dataset)))
    assert np.isfinite(logs["loss"].numpy())
    assert lstm_cell_calls == []


def test_dropout_zeroes_and_rescales_layer_outputs_in_training_only():
    model = CharModel(5, embedding_dim=3, units=4, num_layers=2, dropout=0.5)
    plain = CharModel.from_config({**model.get_config(), "dropout": 0.0})
    ids = np.random.default_rng(0).integers(0, 5, (2, 6))
    model(ids), plain(ids)
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(model(ids, training=False), plain(ids), rtol=1e-6)
    layer_output = model.rnns[0](model.embedding(ids))[0]
    dropped = model.output_dropout(layer_output, training=True).numpy()
    kept = dropped != 0
    assert 0 < kept.mean() < 1  # some units dropped, some kept
    np.testing.assert_allclose(dropped[kept], 2 * layer_output.numpy()[kept], rtol=1e-6)
    assert not np.allclose(model(ids, training=True), plain(ids))
    assert CharModel.from_config(model.get_config()).dropout == 0.5
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1"):
        CharModel(5, dropout=1.0)


def test_interrupted_training_resumes_and_writes_samples_plots_history_and_export(
    book, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    command = ["text", "train", "--text", str(book), "--steps", "6", "--log-every", "2", *TINY]
    original = text_train.SamplesCallback.on_epoch_end

    def interrupt_at_second_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(text_train.SamplesCallback, "on_epoch_end", interrupt_at_second_epoch)
    assert cli.main(command) == runtime.EXIT_INTERRUPTED
    assert not (tmp_path / "saved_models").exists()
    monkeypatch.setattr(text_train.SamplesCallback, "on_epoch_end", original)
    assert cli.main(command) == 0

    (run_dir,) = (tmp_path / "runs").iterdir()  # the same folder, resumed
    with open(run_dir / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]  # the third epoch ran once, resumed
    for row in rows:
        assert float(row["val_bits_per_character"]) == pytest.approx(
            float(row["val_loss"]) / math.log(2), rel=1e-4)
    for name in ("loss.png", "accuracy.png", "vocabulary.txt", "config.json"):
        assert (run_dir / name).is_file()
    samples = (run_dir / "samples.md").read_text(encoding="utf-8")
    assert [f"({k}/3 of training)" in samples for k in (1, 2, 3)] == [True] * 3
    assert samples.count("**greedy, start") == 3 * 5 * 2
    for t in ("T = 0.5 (τ = 2)", "T = 1.0 (τ = 1)", "T = 2.0 (τ = 0.5)", "top-p 0.9 (T = 1)"):
        assert samples.count(t) == 3 * 2
    assert list((run_dir / "tensorboard" / "samples").glob("events.out.tfevents.*"))
    result = json.loads((run_dir / "result.json").read_text())
    assert result["resumed"] is True and result["export"] == "saved_models/char_lstm/1"
    capsys.readouterr()

    code = cli.main(["text", "sample", "--model", "saved_models/char_lstm/1", "--prompt", "the c",
                     "a dog", "--length", "20", "--temperature", "0.5"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith("the c") and len(lines[0]) == 25
    assert set(lines[1]) <= set(SENTENCES)


@pytest.mark.parametrize(
    "content, extra, message",
    [
        (None, [], "does not exist"),
        (b"", [], "is empty"),
        (b"caf\xe9", [], "not UTF-8 .* at byte offset 3"),
        (b"short text", [], "too short for windows of seq_length \\+ 1 = 11"),
        (SENTENCES.encode() * 60, ["--steps", "0"], "steps must be at least 1"),
        (SENTENCES.encode() * 60, ["--cell", "lstmm"], "unknown cell 'lstmm'"),
    ],
)
def test_bad_training_input_is_one_line_and_writes_nothing(
    tmp_path, monkeypatch, capsys, content, extra, message
):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "book.txt"
    if content is not None:
        path.write_bytes(content)
    assert cli.main(["text", "train", "--text", str(path), *TINY, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("seqgraph text: error:")
    assert re.search(message, err)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "saved_models").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--length", "0"], "--length must be at least 1"),
        (["--temperature", "-1"], "--temperature must be >= 0"),
        ([], "is not a SavedModel folder"),
    ],
)
def test_bad_sampling_input_is_one_line(tmp_path, capsys, extra, message):
    assert cli.main(["text", "sample", "--model", str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err
