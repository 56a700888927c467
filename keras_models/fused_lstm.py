"""``keras.layers.RNN(LSTMCell)`` with a fused whole-sequence path when nothing forbids it.

Same weights, same outputs and states, same config as the per-step layer; unmasked, forward,
non-stateful calls run ``lstm_sequence`` (one input matmul for all steps, one matmul per step,
BPTT by hand) instead of calling the cell once per step. Anything else (a mask, ``go_backwards``,
``stateful``, ``unroll``, a dtype other than float32) falls back to ``keras.layers.RNN``.
"""

from keras_models.backend import keras, tf

from keras_models.lstm_cell import LSTMCell
from keras_models.lstm_sequence import lstm_sequence


@keras.saving.register_keras_serializable(package="seqgraph")
class FusedLSTM(keras.layers.RNN):
    """An RNN layer over an ``LSTMCell``: inputs ``[batch, time, input_dim]``.

    Takes the arguments of ``keras.layers.RNN``; ``cell`` must be an ``LSTMCell``. Outputs as
    ``keras.layers.RNN``: ``[batch, time, units]`` with ``return_sequences`` else
    ``[batch, units]``, followed by ``h, c`` with ``return_state``.
    """

    def __init__(self, cell, **kwargs):
        if not isinstance(cell, LSTMCell):
            raise TypeError(f"FusedLSTM needs an LSTMCell, got {type(cell).__name__}")
        super().__init__(cell, **kwargs)

    def _fusable(self, inputs, mask, constants):
        return (
            mask is None
            and constants is None
            and not (self.go_backwards or self.stateful or self.unroll or self.time_major)
            and not isinstance(inputs, (list, tf.RaggedTensor))
            and inputs.dtype == tf.float32
        )

    def call(self, inputs, mask=None, training=None, initial_state=None, constants=None):
        if not self._fusable(inputs, mask, constants):
            return super().call(inputs, mask=mask, training=training,
                                initial_state=initial_state, constants=constants)
        inputs, (h0, c0), _ = self._process_inputs(inputs, initial_state, None)
        cell = self.cell
        hs, h, c = lstm_sequence(
            tf.transpose(inputs, [1, 0, 2]), h0, c0,
            tf.convert_to_tensor(cell.kernel), tf.convert_to_tensor(cell.recurrent_kernel),
            tf.convert_to_tensor(cell.bias),
        )
        output = tf.transpose(hs, [1, 0, 2]) if self.return_sequences else h
        return [output, h, c] if self.return_state else output
