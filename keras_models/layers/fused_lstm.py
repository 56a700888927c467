"""``keras.layers.RNN`` over an LSTM cell, with a fused whole-sequence path when nothing forbids it.

For ``LSTMCell`` and ``PeepholeLSTMCell`` (both variants): same weights, outputs, states, masking
and config as the per-step layer. Forward, non-stateful float32 calls run the whole sequence as one
op instead of calling the cell once per step: ``native_sequence`` (compiled ops, any length, with or
without a mask) when ``native_lstm`` could build them, except while a SavedModel is being written;
otherwise the cell's TensorFlow loop of ``lstm_sequence`` (unrolled, one feature-major matmul per
step, BPTT by hand) for unmasked calls whose length is known when the graph is built and at most
``MAX_FUSED_STEPS``. Anything else falls back to ``keras.layers.RNN`` and logs one warning line
(shown by ``--verbose``) naming the reason. ``call_on_ids`` runs the layer on an embedding lookup,
folding the lookup into the input kernel when that is cheaper.
"""

from keras_models.backend import keras, tf

from tensorflow.python.saved_model import save_context

from keras_models.layers.lstm_cell import LSTMCell
from keras_models.layers.peephole_lstm_cell import PeepholeLSTMCell
from keras_models.ops.lstm_sequence import (
    lstm_sequence,
    matrix_peephole_sequence,
    native_lstm_on_ids,
    native_sequence,
    peephole_lstm_sequence,
)
from keras_models.ops.native_lstm import recurrence_ops

# The TensorFlow loop unrolls its steps: a longer sequence would make a graph slow to build.
MAX_FUSED_STEPS = 128
TENSORFLOW_SEQUENCES = {"lstm": lstm_sequence, "classic": peephole_lstm_sequence,
                        "matrix": matrix_peephole_sequence}


def cell_kind(cell):
    """``"lstm"``, ``"classic"`` or ``"matrix"`` for our cells, None for any other."""
    if type(cell) is LSTMCell:
        return "lstm"
    if type(cell) is PeepholeLSTMCell:
        return cell.variant
    return None


def native_loop_available():
    """Whether the compiled loop can run here: it was built, and no SavedModel is being written
    (a SavedModel must load where only TensorFlow is installed, TensorFlow Serving included)."""
    return not save_context.in_save_context() and recurrence_ops() is not None


@keras.saving.register_keras_serializable(package="seqgraph")
class FusedLSTM(keras.layers.RNN):
    """An RNN layer over ``LSTMCell`` or ``PeepholeLSTMCell``.

    Takes the arguments of ``keras.layers.RNN``. Inputs ``[batch, time, input_dim]``; outputs
    as ``keras.layers.RNN``: ``[batch, time, units]`` with ``return_sequences`` else
    ``[batch, units]``, followed by ``h, c`` with ``return_state``. A mask ``[batch, time]``
    holds a row's state where it is false, as in ``keras.layers.RNN``.
    """

    def __init__(self, cell, **kwargs):
        if cell_kind(cell) is None:
            raise TypeError("FusedLSTM needs an LSTMCell or a PeepholeLSTMCell, got "
                            f"{type(cell).__name__}")
        super().__init__(cell, **kwargs)
        self._fallback_noted = False

    def per_step_reason(self, inputs, mask=None, constants=None):
        """Why a call on ``inputs`` (with ``mask``) runs the per-step loop; None if it runs as
        one op. The compiled loop takes any length and a mask; the TensorFlow loop neither a
        mask nor a length unknown when the graph is built or above ``MAX_FUSED_STEPS``."""
        if self.go_backwards or self.stateful or self.unroll or self.time_major:
            return "go_backwards, stateful, unroll or time_major"
        if constants is not None or isinstance(inputs, (list, tuple, tf.RaggedTensor)):
            return "constants, nested or ragged inputs"
        if inputs.dtype != tf.float32 or inputs.shape.rank != 3:
            return f"inputs of {inputs.dtype.name} and rank {inputs.shape.rank}"
        steps = inputs.shape[1]
        if native_loop_available():
            return None
        if mask is not None:
            return "a mask without the compiled loop"
        if steps is None or not 1 <= steps <= MAX_FUSED_STEPS:
            return f"length {steps} without the compiled loop (at most {MAX_FUSED_STEPS})"
        return None

    def call(self, inputs, mask=None, training=None, initial_state=None, constants=None):
        reason = self.per_step_reason(inputs, mask, constants)
        if reason is not None:
            if not (self._fallback_noted or save_context.in_save_context()):
                tf.get_logger().warning(f"{self.name}: the per-step loop runs ({reason})")
                self._fallback_noted = True
            return super().call(inputs, mask=mask, training=training,
                                initial_state=initial_state, constants=constants)
        inputs, (h0, c0), _ = self._process_inputs(inputs, initial_state, None)
        cell, kind = self.cell, cell_kind(self.cell)
        weights = [tf.convert_to_tensor(getattr(cell, name)) for name in cell.weight_blocks]
        if native_loop_available():
            hs, h, c = native_sequence(kind, inputs, h0, c0, *weights, mask=mask)
        else:
            hs, h, c = TENSORFLOW_SEQUENCES[kind](inputs, h0, c0, *weights)
        if mask is not None and self.return_sequences:
            # keras.layers.RNN outputs zeros until a row's first kept step, then the held h.
            started = tf.cumsum(tf.cast(mask, tf.int32), axis=1) > 0
            hs = tf.where(started[:, :, None], hs, tf.zeros_like(hs))
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
            and cell_kind(self.cell) == "lstm"
            and native_loop_available()
            and not (self.go_backwards or self.stateful or self.unroll or self.time_major)
            and steps is not None
            and embeddings.dtype == tf.float32
            and batch is not None
            and embeddings.shape[0] is not None
            and embeddings.shape[0] <= steps * batch
        )
