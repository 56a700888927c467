"""The LSTM cell of the assignment, as a Keras RNN cell with fused weights.

Equations (x input at step t; h, c previous hidden and cell state; σ sigmoid; ⊙ element-wise)::

    g  = tanh(W_gx x + W_gh h + b_g)    input modulation
    i  = σ(W_ix x + W_ih h + b_i)       input gate
    f  = σ(W_fx x + W_fh h + b_f)       forget gate
    o  = σ(W_ox x + W_oh h + b_o)       output gate
    c' = g ⊙ i + c ⊙ f
    h' = tanh(c') ⊙ o

The blocks sit in ``tf.keras.layers.LSTMCell``'s order (i, f, g, o), so weights move between the
two unchanged. Parameters: 4·(H·I + H·H + H) for H units and input width I.
"""

from keras_models.backend import keras, tf

from keras_models.layers.cell_base import GatedCellBase

_BLOCKS = {
    "kernel": ("W_ix", "W_fx", "W_gx", "W_ox"),
    "recurrent_kernel": ("W_ih", "W_fh", "W_gh", "W_oh"),
    "bias": ("b_i", "b_f", "b_g", "b_o"),
}


@keras.saving.register_keras_serializable(package="seqgraph")
class LSTMCell(GatedCellBase):
    """LSTM cell: one matmul on x and one on h per step.

    Input: ``[batch, input_dim]``; states ``[h, c]``, each ``[batch, units]``.
    Output: ``h'`` ``[batch, units]``; new states ``[h', c']``.
    Weights: ``kernel [input_dim, 4·units]``, ``recurrent_kernel [units, 4·units]``,
    ``bias [4·units]``, blocks (i, f, g, o); ``gate_weights()`` names them (``W_gx``, ``b_f``, …).

    Args:
        units: H, the width of h and c.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras initialisers or
            ``"kaiming_normal"`` (He normal, untruncated, as PyTorch's ``kaiming_normal_``).
        unit_forget_bias: start the forget-gate bias at one.
    """

    weight_blocks = _BLOCKS

    def build_weights(self, input_dim):
        self.add_fused_weight("kernel", input_dim, self.kernel_initializer)
        self.add_fused_weight("recurrent_kernel", self.units, self.recurrent_initializer)
        self.add_fused_weight("bias", None, self.bias_initializer)

    def call(self, inputs, states):
        h, c = states
        z = tf.matmul(inputs, self.kernel) + tf.matmul(h, self.recurrent_kernel) + self.bias
        z_i, z_f, z_g, z_o = tf.split(z, 4, axis=-1)
        c_new = tf.tanh(z_g) * tf.sigmoid(z_i) + c * tf.sigmoid(z_f)
        h_new = tf.tanh(c_new) * tf.sigmoid(z_o)
        return h_new, [h_new, c_new]
