"""The sequence-memory classifier: ``Embedding → RNN(cell) → Dense(softmax)``.

Input: int32 tokens ``[batch, time]`` with 0 as left padding (masked by the embedding).
Output: class probabilities ``[batch, num_classes]`` read from the last hidden state.
"""

from keras_models.backend import keras
from keras_models.recurrent import CELL_CHOICES, make_rnn

MEMORY_CELLS = CELL_CHOICES + ("bilstm",)


def build_memory_model(cell, *, vocab_size, num_classes, units, embedding_dim,
                       embedding_stddev=1.0, initializer=None, name="memory_model"):
    """A Keras model mapping tokens ``[batch, time]`` to probabilities ``[batch, num_classes]``.

    Args:
        cell: one of ``MEMORY_CELLS``; ``"bilstm"`` is ``Bidirectional(make_rnn("keras_lstm"))``.
        embedding_stddev: the embedding starts as N(0, stddev²) (PyTorch's ``nn.Embedding`` uses
            N(0, 1); with a narrow embedding, Keras' uniform ±0.05 barely trains).
        initializer: kernel initialiser of the recurrent layer (e.g. ``"kaiming_normal"``), or
            None for the cell's defaults.
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
        rnn = make_rnn(cell, units, initializer=initializer, name="rnn")
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(
        rnn(x)
    )
    return keras.Model(tokens, probabilities, name=name)
