"""``keras.layers.RNN`` over an LSTM cell, with a fused whole-sequence path when nothing forbids it.

For ``LSTMCell`` and ``PeepholeLSTMCell`` (both variants): same weights, outputs, states and config
as the per-step layer; unmasked, forward, non-stateful float32 calls whose length is known when the
graph is built (at most ``MAX_FUSED_STEPS``) run the cell's op of ``lstm_sequence`` (an unrolled
loop with one feature-major matmul per step, BPTT by hand) instead of calling the cell once per
step. ``LSTMCell`` takes ``native_lstm_sequence`` (the same equations in compiled ops) when
``native_lstm`` could build them, except while a SavedModel is being written. Anything else (a
mask, ``go_backwards``, ``stateful``, ``unroll``, another dtype, a length unknown or longer) falls
back to ``keras.layers.RNN``. ``call_on_ids`` runs the layer on an embedding lookup, folding the
lookup into the input kernel when that is cheaper.
"""

from keras_models.backend import keras, tf

from tensorflow.python.saved_model import save_context

from keras_models.layers.lstm_cell import LSTMCell
from keras_models.layers.peephole_lstm_cell import PeepholeLSTMCell
from keras_models.ops.lstm_sequence import (
    lstm_sequence,
    matrix_peephole_sequence,
    native_lstm_on_ids,
    native_lstm_sequence,
    peephole_lstm_sequence,
)
from keras_models.ops.native_lstm import recurrence_ops

# The fused op unrolls its loop: a longer sequence would make a graph slow to build.
MAX_FUSED_STEPS = 128


def _sequence_of(cell):
    """The fused op that runs ``cell`` over a whole sequence (None if there is none)."""
    if type(cell) is LSTMCell:
        # A SavedModel must load where only TensorFlow is installed (TensorFlow Serving).
        if save_context.in_save_context() or recurrence_ops() is None:
            return lstm_sequence
        return native_lstm_sequence
    if type(cell) is PeepholeLSTMCell:
        return {"classic": peephole_lstm_sequence,
                "matrix": matrix_peephole_sequence}[cell.variant]
    return None


@keras.saving.register_keras_serializable(package="seqgraph")
class FusedLSTM(keras.layers.RNN):
    """An RNN layer over ``LSTMCell`` or ``PeepholeLSTMCell``.

    Takes the arguments of ``keras.layers.RNN``. Inputs ``[batch, time, input_dim]``; outputs
    as ``keras.layers.RNN``: ``[batch, time, units]`` with ``return_sequences`` else
    ``[batch, units]``, followed by ``h, c`` with ``return_state``.
    """

    def __init__(self, cell, **kwargs):
        if _sequence_of(cell) is None:
            raise TypeError("FusedLSTM needs an LSTMCell or a PeepholeLSTMCell, got "
                            f"{type(cell).__name__}")
        super().__init__(cell, **kwargs)

    def _fusable(self, inputs, mask, constants):
        return (
            mask is None
            and constants is None
            and not isinstance(inputs, (list, tuple, tf.RaggedTensor))
            and inputs.dtype == tf.float32
            and inputs.shape.rank == 3
            and self._whole_sequence(inputs.shape[1])
        )

    def _whole_sequence(self, steps):
        """Whether a forward, non-stateful pass over ``steps`` steps can run as one op."""
        return (
            not (self.go_backwards or self.stateful or self.unroll or self.time_major)
            and steps is not None
            and 1 <= steps <= MAX_FUSED_STEPS
        )

    def call(self, inputs, mask=None, training=None, initial_state=None, constants=None):
        if not self._fusable(inputs, mask, constants):
            return super().call(inputs, mask=mask, training=training,
                                initial_state=initial_state, constants=constants)
        inputs, (h0, c0), _ = self._process_inputs(inputs, initial_state, None)
        cell = self.cell
        weights = [tf.convert_to_tensor(getattr(cell, name)) for name in cell.weight_blocks]
        hs, h, c = _sequence_of(cell)(inputs, h0, c0, *weights)
        output = hs if self.return_sequences else h
        return [output, h, c] if self.return_state else output

    def call_on_ids(self, ids, embeddings, initial_state=None, training=None):
        """The layer on ``embeddings[ids]`` (``ids [B, T]``, ``embeddings [V, I]``, no mask):
        the same outputs as ``self(tf.gather(embeddings, ids), initial_state=…)``.

        With the compiled loop, a batch size known when the graph is built and V ≤ T·B,
        ``native_lstm_on_ids`` applies the input kernel to the V embedding rows instead of the
        T·B looked-up vectors (``W x_t = (E W)[id_t]``), forward and backward.
        """
        if not ids.dtype.is_integer:
            ids = tf.cast(ids, tf.int32)
        if not self._folds_lookup(ids, embeddings):
            return self(tf.gather(embeddings, ids), initial_state=initial_state, training=training)
        if initial_state is None:
            initial_state = [tf.zeros((ids.shape[0], self.cell.units))] * 2
        cell = self.cell
        hs, h, c = native_lstm_on_ids(ids, embeddings, *initial_state, cell.kernel,
                                      cell.recurrent_kernel, cell.bias)
        output = hs if self.return_sequences else h
        return [output, h, c] if self.return_state else output

    def _folds_lookup(self, ids, embeddings):
        batch, steps = ids.shape if ids.shape.rank == 2 else (None, None)
        return (
            self.built
            and _sequence_of(self.cell) is native_lstm_sequence
            and self._whole_sequence(steps)
            and embeddings.dtype == tf.float32
            and batch is not None
            and embeddings.shape[0] is not None
            and embeddings.shape[0] <= steps * batch
        )
