"""The memory grid end to end: training to 100% held-out accuracy, figures, summary, export,
presets and the one-line errors."""

import json

from keras_models.backend import tf

import numpy as np
import pytest

from keras_models.models.memory_classifier import build_memory_model
from keras_models.utils.errors import UsageError
from pipelines.memory.tasks import heldout_set
from trainers.cli import OneLineParser
from trainers.memory import command as memory_command
from trainers.memory.report import mean_std_curves


def parse(*argv):
    parser = OneLineParser(prog="seqgraph memory")
    memory_command.add_arguments(parser)
    return parser.parse_args([str(a) for a in argv])


def hparams_in_tensorboard(log_dir):
    """The tags of the hparams-plugin summaries in ``log_dir``'s own event files."""
    return {
        value.tag
        for path in log_dir.glob("events.out.tfevents.*")
        for event in tf.compat.v1.train.summary_iterator(str(path))
        for value in event.summary.value
        if value.metadata.plugin_data.plugin_name == "hparams"
    }


def test_short_run_learns_small_palindromes_perfectly_and_reports(tmp_path, capsys):
    args = parse(
        "--lengths", 2, "--cells", "lstm", "peephole", "--seeds", 42, "--units", 16,
        "--steps", 400, "--early-stop", 1.0, "--eval-every", 50,
        "--runs-dir", tmp_path / "runs", "--saved-models", tmp_path / "saved_models",
    )
    assert memory_command.run(args) == 0
    (grid,) = (tmp_path / "runs").glob("memory-palindrome-*")
    for cell in ("lstm", "peephole"):
        result = json.loads((grid / f"{cell}-L2-seed42" / "result.json").read_text())
        assert result["heldout_accuracy"] == 1.0 and result["heldout_size"] == 10_000
        assert result["steps_run"] < 400  # stopped early at 100% held-out accuracy
        assert (grid / f"{cell}-L2-seed42" / "history.csv").read_text().count("\n") == (
            result["steps_run"] // 10 + 1
        )
        assert (grid / f"curves_{cell}.png").read_bytes()[:4] == b"\x89PNG"
        assert "<svg" in (grid / f"curves_{cell}.svg").read_text()
    assert (grid / "cells.png").exists() and (grid / "cells.svg").exists()
    assert hparams_in_tensorboard(grid / "lstm-L2-seed42" / "tensorboard") == {
        "_hparams_/session_start_info", "_hparams_/session_end_info"
    }
    summary = (grid / "summary.md").read_text()
    assert "| lstm | 2 | 9 | 1.0000 ± 0.0000 | 42: 1.0000 |" in summary
    assert "| peephole | 2 | 9 | 1.0000 ± 0.0000 | 42: 1.0000 |" in summary
    assert f"Summary: {grid / 'summary.md'}" in capsys.readouterr().out

    # The export maps tokens to class probabilities and is right on fresh sequences.
    tokens, labels = heldout_set("palindrome", 2, 500, seed=99)
    served = tf.saved_model.load(str(tmp_path / "saved_models" / "memory_palindrome_lstm_L2" / "1"))
    serve = served.signatures["serving_default"]
    (probabilities,) = serve(tokens=tf.constant(tokens)).values()
    np.testing.assert_allclose(probabilities.numpy().sum(axis=1), 1.0, rtol=1e-5)
    assert (probabilities.numpy().argmax(axis=1) == labels).all()
    saved = (tmp_path / "saved_models" / "memory_palindrome_lstm_L2" / "1" / "saved_model.pb")
    assert b"Seqgraph" not in saved.read_bytes()  # standard TensorFlow ops only


@pytest.mark.parametrize("cell", ["lstm", "peephole", "peephole_classic"])
def test_fused_and_per_step_models_agree_on_padded_batches(cell):
    """The default model (``FusedLSTM``, the compiled loop with the mask) and the per-step
    ``keras.layers.RNN`` with the same weights: the same probabilities and the same gradient of
    every weight on left-padded palindromes of L = 1..4 in one batch."""
    batches = [heldout_set("palindrome", length, 8, seed=3) for length in (4, 3, 2, 1)]
    tokens = np.concatenate([np.pad(t, ((0, 0), (17 - t.shape[1], 0))) for t, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    assert (tokens[:, 0] == 0).mean() > 0.5  # mostly left-padded
    models = [build_memory_model(cell, vocab_size=3, num_classes=2, units=6, embedding_dim=2,
                                 fused=fused) for fused in (True, False)]
    models[1].set_weights(models[0].get_weights())
    assert type(models[0].get_layer("rnn")).__name__ == "FusedLSTM"
    assert type(models[1].get_layer("rnn")).__name__ == "RNN"
    results = []
    for model in models:
        with tf.GradientTape() as tape:
            probabilities = model(tokens)
            loss = tf.keras.losses.sparse_categorical_crossentropy(labels, probabilities)
        results.append([probabilities, *map(tf.convert_to_tensor, tape.gradient(
            loss, model.trainable_weights))])
    for fused, per_step in zip(*results, strict=True):
        np.testing.assert_allclose(fused, per_step, atol=1e-5, rtol=1e-5)


def test_the_per_step_fallback_says_so_once(monkeypatch):
    """Without the compiled loop a masked memory model runs the per-step layer, with one warning
    line on TensorFlow's logger (``--verbose`` shows TensorFlow's warnings)."""
    from keras_models.layers import fused_lstm

    monkeypatch.setattr(fused_lstm, "native_loop_available", lambda: False)
    notes = []  # the logger's own method: independent of the levels other tests leave behind
    monkeypatch.setattr(tf.get_logger(), "warning", notes.append)
    model = build_memory_model("lstm", vocab_size=3, num_classes=2, units=4, embedding_dim=2)
    tokens = heldout_set("palindrome", 2, 4, seed=3)[0]
    model(tokens)
    model(tokens)
    assert notes == ["rnn: the per-step loop runs (a mask without the compiled loop)"]


def test_mean_std_curves_of_runs_that_stopped_at_different_steps():
    runs = [
        {"step": [10, 20, 30], "accuracy": [0.5, 0.7, 0.9]},
        {"step": [10, 20], "accuracy": [0.7, 1.0]},
    ]
    steps, mean, std = mean_std_curves(runs, "accuracy")
    assert steps.tolist() == [10, 20, 30]
    np.testing.assert_allclose(mean, [0.6, 0.85, 0.9])
    np.testing.assert_allclose(std, [0.1, 0.15, 0.0])


def test_presets_and_overrides():
    assignment = memory_command.build_configs(parse("--preset", "assignment", "--seeds", 1))
    assert {(c.cell, c.length) for c in assignment} == {
        ("lstm", 10), ("lstm", 20), ("peephole", 10), ("peephole", 20)
    }
    first = assignment[0]
    assert (first.learning_rate, first.initializer, first.batch_size, first.units,
            first.clipnorm, first.steps) == (1e-4, "kaiming_normal", 256, 256, 10.0, 3000)
    (tuned,) = memory_command.build_configs(parse(
        "--cells", "keras_gru", "--lengths", 3, "--seeds", 5, "--preset", "tuned",
        "--units", 12, "--learning-rate", 0.5, "--initializer", "default",
    ))
    assert (tuned.cell, tuned.units, tuned.learning_rate, tuned.initializer) == (
        "keras_gru", 12, 0.5, None
    )
    assert tuned.forget_bias is None  # a GRU has no forget gate


@pytest.mark.parametrize("cell", ["lstm", "peephole", "bilstm"])  # bilstm: Keras' LSTMCell
def test_forget_bias_sets_only_the_forget_gate_block(cell):
    model = build_memory_model(cell, vocab_size=3, num_classes=2, units=4, embedding_dim=2,
                               forget_bias=4.0)
    rnn = model.get_layer("rnn")
    for layer in (rnn.forward_layer, rnn.backward_layer) if cell == "bilstm" else (rnn,):
        bias = layer.cell.bias.numpy().reshape(4, 4)  # four gate blocks of 4 units
        forget = 0 if cell == "peephole" else 1  # blocks (f, i, o, c) vs (i, f, g, o)
        np.testing.assert_array_equal(bias[forget], 4.0)
        np.testing.assert_array_equal(np.delete(bias, forget, axis=0), 0.0)
    with pytest.raises(ValueError, match="GRUCell has no forget gate"):
        build_memory_model("keras_gru", vocab_size=3, num_classes=2, units=4, embedding_dim=2,
                           forget_bias=4.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lengths", 0], "length 0 is out of range for palindrome; use 1..1000"),
        (["--task", "parity"], "unknown task 'parity'; choose one of palindrome"),
        (["--cells", "lstm", "rnn"], "unknown cell 'rnn'; choose from lstm, peephole"),
        (["--steps", 0], "--steps is 0; give an integer ≥ 1"),
        (["--seeds", 7], "--heldout-seed 7 is also a training seed; choose another"),
        (["--early-stop", 99], "--early-stop 99.0 is not an accuracy"),
        (["--jobs", 0], "--jobs is 0; give an integer ≥ 1"),
        (["--jobs", 2, "--strategy", "mirrored"], "--jobs 2 trains each run in a plain"),
        (["--jobs", 2, "--deterministic"], "use it without --strategy and --deterministic"),
    ],
)
def test_bad_values_are_usage_errors(argv, message):
    with pytest.raises(UsageError, match=message):
        memory_command.build_configs(parse(*argv))


def test_cli_prints_one_line_and_writes_nothing(cli, tmp_path):
    result = cli("memory", "--lengths", 10, -1, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "seqgraph memory: error: length -1 is out of range for palindrome; use 1..1000"
    )
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
