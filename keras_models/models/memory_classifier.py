"""The sequence-memory classifier: ``Embedding → RNN(cell) → Dense(softmax)``.

Input: int32 tokens ``[batch, time]`` with 0 as left padding (masked by the embedding).
Output: class probabilities ``[batch, num_classes]`` read from the last hidden state.

Our cells run in ``FusedLSTM``: the whole sequence as one compiled op, the mask included (a row's
state stays at its initial value until its first token), as ``keras.layers.RNN`` would compute it
step by step.
"""

from keras_models.backend import keras

from keras_models.layers.rnn_factory import CELL_CHOICES, make_rnn

MEMORY_CELLS = CELL_CHOICES + ("bilstm",)


def build_memory_model(cell, *, vocab_size, num_classes, units, embedding_dim,
                       embedding_stddev=1.0, initializer=None, forget_bias=None, fused=True,
                       name="memory_model"):
    """A Keras model mapping tokens ``[batch, time]`` to probabilities ``[batch, num_classes]``.

    Args:
        cell: one of ``MEMORY_CELLS``; ``"bilstm"`` is ``Bidirectional(make_rnn("keras_lstm"))``.
        embedding_stddev: the embedding starts as N(0, stddev²) (PyTorch's ``nn.Embedding`` uses
            N(0, 1); with a narrow embedding, Keras' uniform ±0.05 barely trains).
        initializer: kernel initialiser of the recurrent layer (e.g. ``"kaiming_normal"``), or
            None for the cell's defaults.
        forget_bias: start value of the forget-gate bias b_f (None keeps the cell's, 1). A gate
            σ(b_f) keeps σ(b_f)^T of the cell state over T steps: 0.73^50 ≈ 1e-7 for b_f = 1,
            0.98^50 ≈ 0.4 for b_f = 4, so a large b_f lets the first token's gradient through.
        fused: our cells in ``FusedLSTM`` (default) or in the per-step ``keras.layers.RNN``;
            both compute the same.
    """
    if cell not in MEMORY_CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(MEMORY_CELLS)}")
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(
        vocab_size, embedding_dim, mask_zero=True, name="embedding",
        embeddings_initializer=keras.initializers.RandomNormal(stddev=embedding_stddev),
    )(tokens)
    if cell == "bilstm":
        rnn = keras.layers.Bidirectional(
            make_rnn("keras_lstm", units, initializer=initializer), name="rnn"
        )
    else:
        rnn = make_rnn(cell, units, initializer=initializer, fused=fused, name="rnn")
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(
        rnn(x)
    )
    if forget_bias is not None:
        for layer in (rnn.forward_layer, rnn.backward_layer) if cell == "bilstm" else (rnn,):
            set_forget_bias(layer.cell, forget_bias)
    return keras.Model(tokens, probabilities, name=name)


def set_forget_bias(cell, value):
    """Set the forget-gate block ``b_f`` of a built LSTM-family cell's bias to ``value``.

    Our cells name their bias blocks in ``weight_blocks``; Keras' LSTMCell orders them i, f, c, o.
    """
    blocks = getattr(cell, "weight_blocks", {}).get("bias")
    if blocks is None and isinstance(cell, keras.layers.LSTMCell):
        blocks = ("b_i", "b_f", "b_c", "b_o")
    if blocks is None or "b_f" not in blocks:
        raise ValueError(f"{type(cell).__name__} has no forget gate to set a bias on")
    slot = blocks.index("b_f")
    bias = cell.bias.numpy()
    bias[slot * cell.units:(slot + 1) * cell.units] = value
    cell.bias.assign(bias)
