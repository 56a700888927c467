"""One factory for every recurrent layer seqgraph trains: our two cells or Keras' built-ins.

``make_rnn("peephole", 128)`` is ``FusedLSTM(PeepholeLSTMCell(128))``: ``keras.layers.RNN`` over
our cell with a fused whole-sequence path (``"lstm"``, ``"peephole_classic"`` likewise). Wrap the
result in ``keras.layers.Bidirectional`` for a bidirectional layer.
"""

from keras_models.backend import keras

from keras_models.cell_base import resolve_initializer
from keras_models.fused_lstm import FusedLSTM
from keras_models.lstm_cell import LSTMCell
from keras_models.peephole_lstm_cell import PeepholeLSTMCell
from trainers.errors import UsageError

CELL_CHOICES = ("lstm", "peephole", "peephole_classic", "keras_lstm", "keras_gru")


def make_rnn(cell, units, *, return_sequences=False, return_state=False, initializer=None,
             name=None):
    """A recurrent layer of ``units`` units built from ``cell`` (one of ``CELL_CHOICES``).

    ``initializer`` (e.g. ``"kaiming_normal"``) sets both the input and the recurrent kernel's
    initialiser; None keeps each layer's defaults (Glorot uniform and orthogonal).
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
    if cell == "lstm":
        return FusedLSTM(LSTMCell(units, **init), **options)
    variant = "classic" if cell == "peephole_classic" else "assignment"
    return FusedLSTM(PeepholeLSTMCell(units, variant=variant, **init), **options)
