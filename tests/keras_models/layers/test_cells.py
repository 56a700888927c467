"""LSTMCell and PeepholeLSTMCell against independent references: NumPy, Keras' LSTM, formulas."""

import numpy as np
import pytest

from keras_models import CELL_CHOICES, LSTMCell, PeepholeLSTMCell, keras, make_rnn, tf
from keras_models.layers import fused_lstm
from keras_models.layers.fused_lstm import FusedLSTM
from keras_models.utils.errors import UsageError

BATCH, STEPS, INPUT, UNITS = 3, 6, 4, 5
CELLS = {
    "lstm": lambda: LSTMCell(UNITS),
    "assignment": lambda: PeepholeLSTMCell(UNITS),
    "classic": lambda: PeepholeLSTMCell(UNITS, variant="classic"),
}


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def reference_step(kind, w, x, h, c):
    """One step of the issue's equations in float64 NumPy, from the named gate blocks ``w``."""
    if kind == "assignment":
        f = sigmoid(x @ w["W_fx"] + c @ w["W_fh"] + w["b_f"])
        i = sigmoid(x @ w["W_ix"] + c @ w["W_ih"] + w["b_i"])
        o = sigmoid(x @ w["W_ox"] + c @ w["W_oh"] + w["b_o"])
        c_new = sigmoid(x @ w["W_cx"] + w["b_c"]) * i + c * f
        return np.tanh(c_new) * o, c_new
    g = np.tanh(x @ w["W_gx"] + h @ w["W_gh"] + w["b_g"])
    peep = kind == "classic"
    i = sigmoid(x @ w["W_ix"] + h @ w["W_ih"] + w["b_i"] + (w["p_i"] * c if peep else 0))
    f = sigmoid(x @ w["W_fx"] + h @ w["W_fh"] + w["b_f"] + (w["p_f"] * c if peep else 0))
    c_new = g * i + c * f
    o = sigmoid(x @ w["W_ox"] + h @ w["W_oh"] + w["b_o"] + (w["p_o"] * c_new if peep else 0))
    return np.tanh(c_new) * o, c_new


def reference_sequence(kind, w, xs, mask=None):
    """Outputs [batch, steps, units] and final (h, c); masked steps keep the previous state."""
    w = {name: np.asarray(v, np.float64) for name, v in w.items()}
    h = c = np.zeros((xs.shape[0], UNITS))
    outputs = []
    for t in range(xs.shape[1]):
        h_new, c_new = reference_step(kind, w, xs[:, t].astype(np.float64), h, c)
        keep = np.ones((xs.shape[0], 1), bool) if mask is None else mask[:, t : t + 1]
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def randomised_layer(kind, seed=0, layer_class=keras.layers.RNN, **kwargs):
    """``layer_class(cell)`` built on INPUT features with every weight drawn from N(0, 0.5²)."""
    layer = layer_class(CELLS[kind](), return_sequences=True, return_state=True, **kwargs)
    layer.build((None, None, INPUT))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    return layer


def random_inputs(seed=1):
    return np.random.default_rng(seed).normal(size=(BATCH, STEPS, INPUT)).astype(np.float32)


PADDED = np.array([[1] * STEPS, [1] * 4 + [0] * 2, [1, 0, 1, 1, 0, 0]], bool)


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("mask", [None, PADDED], ids=["no_mask", "mask"])
def test_cells_match_float64_numpy_reference(kind, mask):
    layer, xs = randomised_layer(kind), random_inputs()
    out, h, c = layer(xs, mask=None if mask is None else tf.constant(mask))
    ref_out, ref_h, ref_c = reference_sequence(kind, layer.cell.gate_weights(), xs, mask)
    np.testing.assert_allclose(h, ref_h, atol=1e-5)
    np.testing.assert_allclose(c, ref_c, atol=1e-5)
    np.testing.assert_allclose(out, ref_out, atol=1e-5)  # masked steps repeat the last output


LEFT_PADDED = np.array([[0, 0, 1, 1, 1, 1], [1] * STEPS, [0] * (STEPS - 1) + [1]], bool)


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("mask", [None, PADDED, LEFT_PADDED], ids=["no_mask", "mask", "left"])
def test_fused_layers_match_float64_numpy_reference(kind, mask):
    """With a mask, a row's state stays put where it is false (the compiled loop); masked
    outputs repeat the last output, except that Keras outputs zeros before a row's first step."""
    layer, xs = randomised_layer(kind, layer_class=FusedLSTM), random_inputs()
    out, h, c = layer(xs, mask=None if mask is None else tf.constant(mask))
    ref_out, ref_h, ref_c = reference_sequence(kind, layer.cell.gate_weights(), xs, mask)
    for ours, reference in ((out, ref_out), (h, ref_h), (c, ref_c)):
        np.testing.assert_allclose(ours, reference, atol=1e-5)


def keras_blocks_by_name(lstm):
    """tf.keras LSTM weights (gate order i, f, c, o) as our named blocks."""
    kernel, recurrent, bias = lstm.get_weights()
    named = {}
    for suffix, matrix in (("x", kernel), ("h", recurrent)):
        for gate, block in zip("ifgo", np.split(matrix, 4, axis=-1), strict=True):
            named[f"W_{gate}{suffix}"] = block
    named.update({f"b_{g}": b for g, b in zip("ifgo", np.split(bias, 4), strict=True)})
    return named


def assign_named(cell, named):
    for attribute, names in cell.weight_blocks.items():
        getattr(cell, attribute).assign(np.concatenate([named[n] for n in names], axis=-1))


LSTM_LAYERS = {"per_step": keras.layers.RNN, "fused": FusedLSTM}


def lstm_pair(layer_class, seed=2, **kwargs):
    """Keras' LSTM with N(0, 0.5²) weights and ``layer_class(LSTMCell)`` holding the same."""
    theirs = keras.layers.LSTM(UNITS, return_sequences=True, return_state=True, **kwargs)
    theirs.build((None, None, INPUT))
    rng = np.random.default_rng(seed)
    theirs.set_weights([rng.normal(0, 0.5, w.shape) for w in theirs.get_weights()])
    ours = layer_class(LSTMCell(UNITS), return_sequences=True, return_state=True, **kwargs)
    ours.build((None, None, INPUT))
    assign_named(ours.cell, keras_blocks_by_name(theirs))
    return ours, theirs


def outputs_and_gradients(layer, xs, initial_state=None, mask=None):
    """Outputs, states and gradients of a random projection of them (inputs, states, weights)."""
    rng = np.random.default_rng(3)
    probe = tf.constant(rng.normal(size=(BATCH, STEPS, UNITS)), tf.float32)
    sources = [xs] + list(initial_state or [])
    with tf.GradientTape() as tape:
        tape.watch(sources)
        out, h, c = layer(xs, mask=mask, initial_state=initial_state)
        loss = tf.reduce_sum(out * probe) + tf.reduce_sum(h * c)
    zero = tf.UnconnectedGradients.ZERO  # the assignment's cell never reads h
    return [out, h, c, *tape.gradient(loss, sources + layer.trainable_weights,
                                      unconnected_gradients=zero)]


@pytest.mark.parametrize("layer_class", LSTM_LAYERS.values(), ids=LSTM_LAYERS)
@pytest.mark.parametrize("mask", [None, PADDED], ids=["no_mask", "mask"])
def test_lstm_cell_matches_keras_lstm_outputs_states_and_gradients(layer_class, mask):
    xs = tf.constant(random_inputs())
    mask = None if mask is None else tf.constant(mask)
    ours, theirs = lstm_pair(layer_class)
    for a, b in zip(outputs_and_gradients(ours, xs, mask=mask),
                    outputs_and_gradients(theirs, xs, mask=mask), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("native", [True, False], ids=["compiled", "tensorflow_loop"])
@pytest.mark.parametrize("length, max_fused", [(STEPS, STEPS), (None, STEPS), (STEPS, STEPS - 1)],
                         ids=["known_length", "unknown_length", "longer_than_unrolled"])
def test_fused_lstm_in_a_graph_with_initial_state(monkeypatch, lstm_cell_calls, length,
                                                  max_fused, native):
    """Inside tf.function: the compiled loop takes any length; the TensorFlow loop a known length
    up to ``MAX_FUSED_STEPS`` (the cell is never called per step); otherwise the per-step layer
    runs. All equal Keras' LSTM."""
    monkeypatch.setattr(fused_lstm, "MAX_FUSED_STEPS", max_fused)
    if not native:
        monkeypatch.setattr(fused_lstm, "native_loop_available", lambda: False)
    ours, theirs = lstm_pair(FusedLSTM, seed=4)
    rng = np.random.default_rng(5)
    states = [tf.constant(rng.normal(size=(BATCH, UNITS)), tf.float32) for _ in range(2)]
    spec = tf.TensorSpec((BATCH, length, INPUT), tf.float32)
    expected = outputs_and_gradients(theirs, tf.constant(random_inputs()), states)
    run = tf.function(lambda xs: outputs_and_gradients(ours, xs, states), input_signature=[spec])
    for a, b in zip(run(tf.constant(random_inputs())), expected, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    fused = (native and fused_lstm.native_loop_available()) or length == max_fused
    assert bool(lstm_cell_calls) != fused


@pytest.mark.parametrize("kind", ["assignment", "classic"])
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
def test_fused_peephole_gradients_equal_the_per_step_layer(kind, graph):
    """Hand-written BPTT against autodiff through the per-step cell (checked against NumPy)."""
    per_step = randomised_layer(kind, seed=6)
    fused = randomised_layer(kind, seed=6, layer_class=FusedLSTM)
    rng = np.random.default_rng(7)
    states = [tf.constant(rng.normal(size=(BATCH, UNITS)), tf.float32) for _ in range(2)]
    xs = tf.constant(random_inputs())
    run = tf.function(outputs_and_gradients) if graph else outputs_and_gradients
    for a, b in zip(run(fused, xs, states), outputs_and_gradients(per_step, xs, states),
                    strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def test_fused_lstm_last_output_only_and_config_round_trip():
    layer = FusedLSTM(LSTMCell(UNITS))
    xs = random_inputs()
    last = layer(xs)
    np.testing.assert_allclose(last, keras.layers.RNN(layer.cell)(xs), atol=1e-6)
    clone = FusedLSTM.from_config(layer.get_config())
    clone.build((None, None, INPUT))
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(clone(xs), last, atol=1e-6)


def test_fused_lstm_needs_an_lstm_cell():
    with pytest.raises(TypeError, match="needs an LSTMCell or a PeepholeLSTMCell, got LSTMCell"):
        FusedLSTM(keras.layers.LSTMCell(UNITS))


def test_parameter_counts_follow_the_formulas():
    vocab, width, classes = 7, INPUT, 3

    def count(cell):
        model = keras.Sequential(
            [keras.Input((STEPS,)), keras.layers.Embedding(vocab, width), keras.layers.RNN(cell),
             keras.layers.Dense(classes)]
        )
        return model.count_params() - vocab * width

    h, i, o = UNITS, width, classes
    assert count(LSTMCell(h)) == 4 * (h * h + h * i + h) + h * o + o
    assert count(PeepholeLSTMCell(h)) == 4 * h * i + 3 * h * h + 4 * h + h * o + o
    classic = PeepholeLSTMCell(h, variant="classic")
    assert count(classic) == 4 * (h * h + h * i + h) + 3 * h + h * o + o


@pytest.mark.parametrize("kind", CELLS)
def test_gate_weights_name_every_block_with_its_shape(kind):
    cell = randomised_layer(kind).cell
    named = cell.gate_weights()
    assert named["W_ix"].shape == (INPUT, UNITS) and named["b_f"].shape == (UNITS,)
    recurrent = [n for n in named if n.startswith("W_") and n.endswith("h")]
    assert all(named[n].shape == (UNITS, UNITS) for n in recurrent)
    expected = {"lstm": 12, "assignment": 11, "classic": 15}[kind]
    assert len(named) == expected
    assert sum(int(np.prod(v.shape)) for v in named.values()) == cell.count_params()


def test_unit_forget_bias_and_kaiming_normal_initialisation():
    cell = PeepholeLSTMCell(64, kernel_initializer="kaiming_normal")
    cell.build((None, 400))
    named = cell.gate_weights()
    np.testing.assert_array_equal(named["b_f"], np.ones(64))
    np.testing.assert_array_equal(named["b_i"], np.zeros(64))
    kernel = cell.kernel.numpy()
    assert abs(kernel.std() - np.sqrt(2 / 400)) < 0.003  # He: N(0, 2 / fan_in), untruncated
    assert np.abs(kernel).max() > 2.5 * np.sqrt(2 / 400)
    plain = LSTMCell(8, unit_forget_bias=False)
    plain.build((None, 3))
    np.testing.assert_array_equal(plain.bias.numpy(), np.zeros(32))


@pytest.mark.parametrize("kind", CELLS)
def test_config_round_trip(kind):
    cell = CELLS[kind]()
    layer = keras.layers.RNN(cell, return_sequences=True)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(clone.cell) is type(cell)
    assert clone.cell.get_config() == cell.get_config()
    rebuilt = type(cell).from_config(cell.get_config())
    assert rebuilt.get_config() == cell.get_config()
    kaiming = type(cell)(3, kernel_initializer="kaiming_normal")
    again = type(cell).from_config(kaiming.get_config())
    assert again.get_config() == kaiming.get_config()


def test_bidirectional_is_forward_and_reversed_reference():
    xs = random_inputs()
    layer = keras.layers.Bidirectional(keras.layers.RNN(PeepholeLSTMCell(UNITS)))
    out = layer(xs).numpy()
    forward, backward = layer.forward_layer.cell, layer.backward_layer.cell
    _, ref_forward, _ = reference_sequence("assignment", forward.gate_weights(), xs)
    _, ref_backward, _ = reference_sequence("assignment", backward.gate_weights(), xs[:, ::-1])
    np.testing.assert_allclose(out, np.concatenate([ref_forward, ref_backward], -1), atol=1e-5)


@pytest.mark.parametrize("kind", CELLS)
def test_go_backwards_reads_the_sequence_from_the_end(kind):
    xs = random_inputs()
    layer = keras.layers.RNN(CELLS[kind](), return_state=True, go_backwards=True)
    _, h, c = layer(xs)
    _, ref_h, ref_c = reference_sequence(kind, layer.cell.gate_weights(), xs[:, ::-1])
    np.testing.assert_allclose(h, ref_h, atol=1e-5)
    np.testing.assert_allclose(c, ref_c, atol=1e-5)


def test_stacked_cells_equal_the_references_in_sequence():
    xs = random_inputs()
    stacked = keras.layers.RNN(
        [LSTMCell(UNITS), PeepholeLSTMCell(UNITS, variant="classic")], return_sequences=True
    )
    out = stacked(xs).numpy()
    low, high = (c.gate_weights() for c in stacked.cell.cells)
    low_out, _, _ = reference_sequence("lstm", low, xs)
    high_out, _, _ = reference_sequence("classic", high, low_out)
    np.testing.assert_allclose(out, high_out, atol=1e-5)


@pytest.mark.parametrize("kind", CELLS)
def test_padded_steps_leave_the_state_unchanged(kind):
    tokens = np.array([[3, 1, 4, 1, 0, 0], [2, 7, 0, 0, 0, 0]])
    embed = keras.layers.Embedding(8, INPUT, mask_zero=True)
    layer = randomised_layer(kind)
    _, h, c = layer(embed(tokens))
    for row, length in enumerate((4, 2)):
        _, h_short, c_short = layer(embed(tokens[row : row + 1, :length]))
        np.testing.assert_allclose(h[row : row + 1], h_short, atol=1e-6)
        np.testing.assert_allclose(c[row : row + 1], c_short, atol=1e-6)
    _, h_unmasked, _ = layer(embed(tokens), mask=tf.ones(tokens.shape, bool))
    assert not np.allclose(h_unmasked, h, atol=1e-3)  # the padding would have changed it


@pytest.mark.parametrize("choice", CELL_CHOICES)
def test_make_rnn_builds_each_choice(choice):
    layer = make_rnn(choice, UNITS, return_sequences=True, return_state=True,
                     initializer="kaiming_normal", name="rec")
    out, *states = layer(random_inputs())
    assert layer.name == "rec" and out.shape == (BATCH, STEPS, UNITS)
    assert len(states) == (1 if choice == "keras_gru" else 2)
    expected_cell = {"lstm": LSTMCell, "peephole": PeepholeLSTMCell,
                     "peephole_classic": PeepholeLSTMCell}.get(choice)
    if expected_cell is not None:
        assert type(layer.cell) is expected_cell
    assert not isinstance(layer, FusedLSTM)
    if expected_cell is not None:
        fused = make_rnn(choice, UNITS, fused=True)
        assert type(fused) is FusedLSTM and type(fused.cell) is expected_cell
    assert layer.cell.kernel_initializer.get_config()["distribution"] == "untruncated_normal"


def test_make_rnn_rejects_unknown_cells_with_the_choices():
    choices = "lstm, peephole, peephole_classic, keras_lstm"
    with pytest.raises(UsageError, match=f"unknown cell 'gru'.*{choices}"):
        make_rnn("gru", UNITS)


def test_peephole_rejects_unknown_variant():
    with pytest.raises(ValueError, match="variant must be one of"):
        PeepholeLSTMCell(UNITS, variant="diagonal")
