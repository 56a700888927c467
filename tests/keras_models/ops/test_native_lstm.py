"""The compiled LSTM loop (keras_models/ops/native_lstm.cc) against the TensorFlow loop, NumPy."""

import numpy as np
import pytest

from keras_models import LSTMCell, PeepholeLSTMCell, keras, tf
from keras_models.layers.fused_lstm import TENSORFLOW_SEQUENCES, FusedLSTM
from keras_models.models.char_language_model import CharModel
from keras_models.ops import native_lstm
from keras_models.ops.lstm_sequence import (
    LOOP_PROJECTION_WIDTH,
    NATIVE_CELLS,
    native_lstm_on_ids,
    native_lstm_sequence,
    native_sequence,
)

needs_native = pytest.mark.skipif(native_lstm.find_compiler() is None,
                                  reason="no C++ compiler to build the ops")
NATIVE_OPS = {"SeqgraphRecurrence", "SeqgraphRecurrenceGrad", "SeqgraphWeightGradient"}
CELLS = {"lstm": lambda units: LSTMCell(units),
         "classic": lambda units: PeepholeLSTMCell(units, variant="classic"),
         "matrix": lambda units: PeepholeLSTMCell(units, variant="matrix")}


@pytest.fixture
def fresh_ops_cache():
    """``recurrence_ops`` looks again (and is reset afterwards for the other tests)."""
    native_lstm.recurrence_ops.cache_clear()
    yield native_lstm.recurrence_ops
    native_lstm.recurrence_ops.cache_clear()


def sequence_and_gradients(sequence, batch, steps, seed=0, inputs=5, units=7, x=None,
                           cell="lstm"):
    """Outputs of ``sequence`` and the gradients of a random projection of all three outputs
    with respect to every argument (x, both initial states, W, U, b, and p for ``"classic"``);
    x random ``[B, T, I]`` unless given. ``U`` is ``[H, 3H]`` for ``"matrix"``."""
    rng = np.random.default_rng(seed)
    recurrent_columns = (3 if cell == "matrix" else 4) * units
    shapes = [(batch, steps, inputs), (batch, units), (batch, units), (inputs, 4 * units),
              (units, recurrent_columns), (4 * units,)] + ([(3 * units,)] if cell == "classic"
                                                           else [])
    args = [tf.constant(rng.normal(0, 1.0 if i == 0 else 0.5, shape), tf.float32)
            for i, shape in enumerate(shapes)]
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
@pytest.mark.parametrize("cell", NATIVE_CELLS)
@pytest.mark.parametrize("batch, steps, inputs", [(1, 1, 5), (3, 6, 5), (17, 4, 20), (40, 9, 1)])
def test_native_loop_equals_the_tensorflow_loop(cell, batch, steps, inputs):
    """Outputs h, h_T, c_T and the gradients of every argument, for each cell; batches of 17 and
    40 are split into one chain per intra-op thread on a machine with more than one core. Inputs
    of width 20 are projected before the loop, narrower ones inside it. (The TensorFlow loops are
    held to NumPy and to autodiff through the cells in test_cells.py.)"""
    assert native_lstm.recurrence_ops() is not None
    assert 5 <= LOOP_PROJECTION_WIDTH < 20

    def native(*args):
        return native_sequence(cell, *args)

    def run_sequence(sequence):
        return sequence_and_gradients(sequence, batch, steps, inputs=inputs, cell=cell)

    run = tf.function(lambda: run_sequence(native))
    expected = run_sequence(TENSORFLOW_SEQUENCES[cell])
    for ours, reference in zip(run(), expected, strict=True):
        np.testing.assert_allclose(ours, reference, atol=2e-5, rtol=2e-5)


def masked_outputs_and_gradients(layer, xs, mask, states):
    """Outputs, final states and the gradients of a random projection of them with respect to
    the inputs, the initial states and every weight of the layer's cell."""
    probes = [tf.constant(np.random.default_rng(4).normal(size=shape), tf.float32)
              for shape in ((*xs.shape[:2], layer.cell.units), states[0].shape, states[0].shape)]
    with tf.GradientTape() as tape:
        tape.watch([xs, *states])
        outputs = layer(xs, mask=mask, initial_state=states)
        loss = sum(tf.reduce_sum(o * p) for o, p in zip(outputs, probes, strict=True))
    gradients = tape.gradient([loss], [xs, *states, *layer.cell.trainable_weights],
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return [*outputs, *gradients]


@needs_native
@pytest.mark.parametrize("cell", NATIVE_CELLS)
def test_masked_native_loop_equals_the_masked_keras_rnn(cell):
    """``FusedLSTM`` with a mask (the compiled loop) against ``keras.layers.RNN`` with the same
    cell and mask: outputs, states and every gradient. Rows are left-padded by 0 to 9 steps (some
    wholly padded), two have gaps; 40 rows are cut into one block per intra-op thread."""
    batch, steps, inputs, units = 40, 9, 3, 6
    rng = np.random.default_rng(5)
    mask = np.arange(steps)[None, :] >= rng.integers(0, steps + 1, batch)[:, None]
    mask[:2, 4] = False  # a gap in the middle of two rows
    mask, xs = tf.constant(mask), tf.constant(rng.normal(size=(batch, steps, inputs)), tf.float32)
    states = [tf.constant(rng.normal(size=(batch, units)), tf.float32) for _ in range(2)]
    options = {"return_sequences": True, "return_state": True}
    fused = FusedLSTM(CELLS[cell](units), **options)
    fused.build((None, None, inputs))
    fused.set_weights([rng.normal(0, 0.5, w.shape) for w in fused.get_weights()])
    assert fused.per_step_reason(xs, mask) is None
    per_step = keras.layers.RNN(fused.cell, **options)
    run = tf.function(masked_outputs_and_gradients)
    ours = run(fused, xs, mask, states)
    for a, b in zip(ours, masked_outputs_and_gradients(per_step, xs, mask, states),
                    strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=2e-5)
    for a, b in zip(ours, run(fused, xs, mask, states), strict=True):
        np.testing.assert_array_equal(a, b)  # the same bits again (--deterministic)


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
@pytest.mark.parametrize("masked", [False, True], ids=["all_rows", "kept_rows"])
def test_weight_gradient_op_equals_numpy(masked):
    """``inputsᵀ δZ`` over N = T·B rows; with keep [T, B], each step adds only the span of its
    kept rows (δz is zero on the others, as the backward loop leaves it); ``columns`` takes the
    first columns of δZ (the matrix peephole's U meets the first 3H)."""
    rng = np.random.default_rng(1)
    steps, batch = 5, 10
    inputs, d_z = rng.normal(size=(steps * batch, 3)), rng.normal(size=(steps * batch, 37))
    keep = rng.random((steps, batch)) < 0.6 if masked else np.zeros((0, 0), bool)
    if masked:
        keep[2] = False  # a step with no kept row
        d_z[~keep.reshape(-1)] = 0.0
    ours = native_lstm.recurrence_ops().seqgraph_weight_gradient(
        tf.constant(inputs, tf.float32), tf.constant(d_z, tf.float32), tf.constant(keep),
        columns=30)
    np.testing.assert_allclose(ours, inputs.T @ d_z[:, :30], atol=1e-4, rtol=1e-5)


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
