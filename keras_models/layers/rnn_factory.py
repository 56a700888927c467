"""One factory for every recurrent layer seqgraph trains: our two cells or Keras' built-ins.

``make_rnn("peephole", 128)`` is ``keras.layers.RNN(PeepholeLSTMCell(128))``; with ``fused=True``
our cells come in a ``FusedLSTM`` instead (the same layer with a whole-sequence path, which the
text and memory models use). Wrap the result in ``keras.layers.Bidirectional`` for a
bidirectional layer.
"""

from keras_models.backend import keras

from keras_models.layers.cell_base import resolve_initializer
from keras_models.layers.fused_lstm import FusedLSTM
from keras_models.layers.lstm_cell import LSTMCell
from keras_models.layers.peephole_lstm_cell import PeepholeLSTMCell
from keras_models.utils.errors import UsageError

CELL_CHOICES = ("lstm", "peephole", "peephole_classic", "keras_lstm", "keras_gru")


def make_rnn(cell, units, *, return_sequences=False, return_state=False, initializer=None,
             fused=False, name=None):
    """A recurrent layer of ``units`` units built from ``cell`` (one of ``CELL_CHOICES``).

    ``initializer`` (e.g. ``"kaiming_normal"``) sets both the input and the recurrent kernel's
    initialiser; None keeps each layer's defaults (Glorot uniform and orthogonal). ``fused``
    wraps our cells in ``FusedLSTM`` rather than ``keras.layers.RNN``.
    """
    if cell not in CELL_CHOICES:
        raise UsageError(f"unknown cell {cell!r}; choose one of {', '.join(CELL_CHOICES)}")
    init = {}
    if initializer is not None:
        init = {
            "kernel_initializer": resolve_initializer(initializer),
            "recurrent_initializer": resolve_initializer(initializer),
        }
    options = {"return_sequences": return_sequences, "return_state": return_state, "name": name}
    if cell == "keras_lstm":
        return keras.layers.LSTM(units, **init, **options)
    if cell == "keras_gru":
        return keras.layers.GRU(units, **init, **options)
    layer = FusedLSTM if fused else keras.layers.RNN
    if cell == "lstm":
        return layer(LSTMCell(units, **init), **options)
    variant = "classic" if cell == "peephole_classic" else "matrix"
    return layer(PeepholeLSTMCell(units, variant=variant, **init), **options)
