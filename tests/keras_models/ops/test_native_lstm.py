"""The compiled LSTM loop (keras_models/ops/native_lstm.cc) against the TensorFlow loop, NumPy."""

import numpy as np
import pytest

from keras_models import LSTMCell, keras, tf
from keras_models.layers.fused_lstm import MAX_FUSED_STEPS, FusedLSTM
from keras_models.models.char_language_model import CharModel
from keras_models.ops import native_lstm
from keras_models.ops.lstm_sequence import lstm_sequence, native_lstm_on_ids, native_lstm_sequence

needs_native = pytest.mark.skipif(native_lstm.find_compiler() is None,
                                  reason="no C++ compiler to build the ops")
NATIVE_OPS = {"SeqgraphLstmRecurrence", "SeqgraphLstmRecurrenceGrad", "SeqgraphWeightGradient"}


@pytest.fixture
def fresh_ops_cache():
    """``recurrence_ops`` looks again (and is reset afterwards for the other tests)."""
    native_lstm.recurrence_ops.cache_clear()
    yield native_lstm.recurrence_ops
    native_lstm.recurrence_ops.cache_clear()


def sequence_and_gradients(sequence, batch, steps, seed=0, inputs=5, units=7, x=None):
    """Outputs of ``sequence`` and the gradients of a random projection of all three outputs
    with respect to every argument (x, both initial states, W, U, b); x random ``[B, T, I]``
    unless given."""
    rng = np.random.default_rng(seed)
    args = [tf.constant(rng.normal(0, scale, shape), tf.float32) for shape, scale in (
        ((batch, steps, inputs), 1.0), ((batch, units), 0.5), ((batch, units), 0.5),
        ((inputs, 4 * units), 0.5), ((units, 4 * units), 0.5), ((4 * units,), 0.5))]
    if x is not None:
        args[0] = x
    probes = [tf.constant(rng.normal(size=shape), tf.float32)
              for shape in ((batch, steps, units), (batch, units), (batch, units))]
    with tf.GradientTape() as tape:
        tape.watch(args)
        outputs = sequence(*args)
        loss = sum(tf.reduce_sum(o * p) for o, p in zip(outputs, probes, strict=True))
    return [*outputs, *map(tf.convert_to_tensor, tape.gradient(loss, args))]  # dense


@needs_native
@pytest.mark.parametrize("batch, steps", [(1, 1), (3, 6), (17, 4), (40, 9)])
def test_native_loop_equals_the_tensorflow_loop(batch, steps):
    """Outputs h, h_T, c_T and the gradients of all six arguments; batches of 17 and 40 are
    split into one chain per intra-op thread on a machine with more than one core."""
    assert native_lstm.recurrence_ops() is not None
    run = tf.function(lambda: sequence_and_gradients(native_lstm_sequence, batch, steps))
    for ours, reference in zip(run(),
                               sequence_and_gradients(lstm_sequence, batch, steps), strict=True):
        np.testing.assert_allclose(ours, reference, atol=2e-5, rtol=2e-5)


@needs_native
@pytest.mark.parametrize("batch, steps, vocabulary", [(1, 1, 3), (17, 4, 5), (6, 9, 40)])
def test_lookup_folded_into_the_input_kernel_equals_the_lookup(batch, steps, vocabulary):
    """``native_lstm_on_ids(ids, E, …)`` against ``native_lstm_sequence(E[ids], …)``: outputs and
    the gradients of E, both initial states, W, U and b; ids repeat (their δz add up) and some
    rows of E are never looked up (their gradient is zero)."""
    rng = np.random.default_rng(2)
    ids = tf.constant(rng.integers(0, vocabulary - 1, (batch, steps)))  # the last id unused
    embeddings = tf.constant(rng.normal(size=(vocabulary, 5)), tf.float32)

    def lookup_then_sequence(x, h0, c0, kernel, recurrent_kernel, bias):
        return native_lstm_sequence(tf.gather(x, ids), h0, c0, kernel, recurrent_kernel, bias)

    def folded(x, h0, c0, kernel, recurrent_kernel, bias):
        return native_lstm_on_ids(ids, x, h0, c0, kernel, recurrent_kernel, bias)

    def run(sequence):
        return sequence_and_gradients(sequence, batch, steps, x=embeddings)

    results = tf.function(lambda: run(folded))()
    for ours, expected in zip(results, run(lookup_then_sequence), strict=True):
        np.testing.assert_allclose(ours, expected, atol=2e-5, rtol=2e-5)
    assert np.all(results[3][-1] == 0)  # ∂E of the unused id


@needs_native
def test_char_model_folds_its_lookup_where_cheaper_and_trains_the_same(monkeypatch):
    """A training step of ``CharModel`` with the lookup folded into layer 1's input kernel
    leaves the same weights as one without; the fold is taken only for V ≤ T·B."""
    ids = tf.constant(np.random.default_rng(3).integers(0, 9, (8, 5)))
    rnn = CharModel(10, 4, 6, 2).rnns[0]
    rnn.build(tf.TensorShape([None, None, 4]))
    table = tf.zeros((10, 4))
    assert rnn._folds_lookup(ids, table)
    assert not rnn._folds_lookup(ids, tf.zeros((41, 4)))  # V > T·B
    assert not rnn._folds_lookup(tf.zeros((1, MAX_FUSED_STEPS + 1), tf.int64), table)
    seen = []  # a batch size unknown when the graph is built
    tf.function(lambda x: seen.append(rnn._folds_lookup(x, table)) or x).get_concrete_function(
        tf.TensorSpec([None, 5], tf.int64))
    assert seen == [False]

    def trained_weights():
        keras.utils.set_random_seed(0)
        model = CharModel(10, 4, 6, 2)
        model.compile(keras.optimizers.Adam(0.01, global_clipnorm=5.0),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(ids, tf.roll(ids, 1, axis=1), batch_size=8, epochs=2, verbose=0)
        return model.get_weights()

    folded = trained_weights()
    monkeypatch.setattr(FusedLSTM, "_folds_lookup", lambda self, ids, embeddings: False)
    for ours, expected in zip(folded, trained_weights(), strict=True):
        np.testing.assert_allclose(ours, expected, atol=1e-5)


@needs_native
def test_weight_gradient_op_equals_numpy():
    rng = np.random.default_rng(1)
    inputs, d_z = rng.normal(size=(50, 3)), rng.normal(size=(50, 37))
    ours = native_lstm.recurrence_ops().seqgraph_weight_gradient(
        tf.constant(inputs, tf.float32), tf.constant(d_z, tf.float32))
    np.testing.assert_allclose(ours, inputs.T @ d_z, atol=1e-4, rtol=1e-5)


def op_types(concrete_function):
    """Every op type in a traced function's graph, its nested functions included."""
    graph = concrete_function.graph.as_graph_def()
    return {node.op for node in graph.node} | {
        node.op for function in graph.library.function for node in function.node_def}


@needs_native
def test_training_runs_the_native_ops_and_saved_models_never_hold_them(tmp_path, fresh_python):
    """``fit`` runs the compiled loop; a SavedModel of the same model is written with the
    TensorFlow loop, so a process with only TensorFlow (no seqgraph) loads and runs it."""
    model = keras.Sequential([keras.Input((6, 4)), FusedLSTM(LSTMCell(5)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    x, y = np.ones((8, 6, 4), np.float32), np.zeros((8, 2), np.float32)
    model.fit(x, y, epochs=1, verbose=0)
    assert NATIVE_OPS <= op_types(model.train_function.get_concrete_function(
        iter(tf.data.Dataset.from_tensors((x, y)))))
    model.save(str(tmp_path / "model"), save_format="tf")
    saved = (tmp_path / "model" / "saved_model.pb").read_bytes()
    assert not any(op.encode() in saved for op in NATIVE_OPS)
    expected = model(x).numpy()
    child = fresh_python(f"""
        import numpy as np, tensorflow as tf
        model = tf.saved_model.load({str(tmp_path / "model")!r})
        print(np.asarray(model.signatures["serving_default"](tf.ones((8, 6, 4)))
                         [{model.output_names[0]!r}]).tolist())
    """)
    np.testing.assert_allclose(eval(child.stdout.strip().splitlines()[-1]), expected, atol=1e-5)


def test_switched_off_by_the_environment(monkeypatch, fresh_ops_cache):
    monkeypatch.setenv("SEQGRAPH_NATIVE", "0")
    assert fresh_ops_cache() is None


def test_a_failed_build_warns_and_falls_back_leaving_nothing_behind(monkeypatch, tmp_path, capsys,
                                                                     fresh_ops_cache):
    monkeypatch.setenv("CXX", "false")
    monkeypatch.setenv("SEQGRAPH_CACHE", str(tmp_path))
    assert fresh_ops_cache() is None
    compiling, warning = capsys.readouterr().err.splitlines()
    assert compiling.startswith("seqgraph: compiling the native LSTM loop")
    assert warning.startswith("seqgraph: warning: the native LSTM loop is unavailable (false "
                              "exited with 1); FusedLSTM uses its TensorFlow path")
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    layer, xs = FusedLSTM(LSTMCell(5)), np.ones((2, 3, 4), np.float32)
    np.testing.assert_allclose(layer(xs), keras.layers.RNN(layer.cell)(xs), atol=1e-6)
