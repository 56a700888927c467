"""Peephole LSTM cells: full-matrix peepholes on the cell state, or the classic diagonal ones.

``variant="matrix"`` (default; ``"assignment"`` is an alias, the name of the course assignment
that defined it): the gates look at the previous cell state c through full
matrices and the candidate has no recurrent term::

    f  = σ(W_fx x + W_fh c + b_f)
    i  = σ(W_ix x + W_ih c + b_i)
    o  = σ(W_ox x + W_oh c + b_o)
    c' = σ(W_cx x + b_c) ⊙ i + c ⊙ f
    h' = tanh(c') ⊙ o

Parameters: 4·H·I + 3·H·H + 4·H for H units and input width I.

``variant="classic"`` (Gers, Schraudolph & Schmidhuber 2002): the LSTM of ``lstm_cell`` plus
diagonal peepholes p_i, p_f on c and p_o on c'::

    i  = σ(W_ix x + W_ih h + p_i ⊙ c + b_i)
    f  = σ(W_fx x + W_fh h + p_f ⊙ c + b_f)
    g  = tanh(W_gx x + W_gh h + b_g)
    c' = g ⊙ i + c ⊙ f
    o  = σ(W_ox x + W_oh h + p_o ⊙ c' + b_o)
    h' = tanh(c') ⊙ o

Parameters: 4·(H·I + H·H + H) + 3·H.
"""

from keras_models.backend import keras, tf

from keras_models.layers.cell_base import GatedCellBase, resolve_initializer

VARIANTS = ("matrix", "classic")
VARIANT_ALIASES = {"assignment": "matrix"}

_BLOCKS = {
    "matrix": {
        "kernel": ("W_fx", "W_ix", "W_ox", "W_cx"),
        "recurrent_kernel": ("W_fh", "W_ih", "W_oh"),
        "bias": ("b_f", "b_i", "b_o", "b_c"),
    },
    "classic": {
        "kernel": ("W_ix", "W_fx", "W_gx", "W_ox"),
        "recurrent_kernel": ("W_ih", "W_fh", "W_gh", "W_oh"),
        "bias": ("b_i", "b_f", "b_g", "b_o"),
        "peephole": ("p_i", "p_f", "p_o"),
    },
}


@keras.saving.register_keras_serializable(package="seqgraph")
class PeepholeLSTMCell(GatedCellBase):
    """Peephole LSTM cell (equations in the module docstring), one matmul on x and one on c or h.

    Input: ``[batch, input_dim]``; states ``[h, c]``, each ``[batch, units]``.
    Output: ``h'`` ``[batch, units]``; new states ``[h', c']``.
    Weights, ``"matrix"``: ``kernel [input_dim, 4·units]`` blocks (f, i, o, c),
    ``recurrent_kernel [units, 3·units]`` (on c) blocks (f, i, o), ``bias [4·units]``.
    ``"classic"``: as ``LSTMCell`` (blocks i, f, g, o) plus ``peephole [3·units]`` (p_i, p_f, p_o).
    ``gate_weights()`` returns every block by name.

    Args:
        units: H, the width of h and c.
        variant: ``"matrix"`` (alias ``"assignment"``) or ``"classic"``.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras initialisers or
            ``"kaiming_normal"``.
        peephole_initializer: initialiser of the classic variant's diagonal peepholes.
        unit_forget_bias: start the forget-gate bias at one.
    """

    def __init__(self, units, variant="matrix", peephole_initializer="zeros", **kwargs):
        variant = VARIANT_ALIASES.get(variant, variant)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        super().__init__(units, **kwargs)
        self.variant = variant
        self.peephole_initializer = resolve_initializer(peephole_initializer)

    @property
    def weight_blocks(self):
        return _BLOCKS[self.variant]

    def build_weights(self, input_dim):
        self.add_fused_weight("kernel", input_dim, self.kernel_initializer)
        self.add_fused_weight("recurrent_kernel", self.units, self.recurrent_initializer)
        self.add_fused_weight("bias", None, self.bias_initializer)
        if self.variant == "classic":
            self.add_fused_weight("peephole", None, self.peephole_initializer)

    def call(self, inputs, states):
        if self.variant == "classic":
            return self._classic_step(inputs, states)
        return self._matrix_step(inputs, states)

    def _matrix_step(self, inputs, states):
        _, c = states
        z_gates, z_cand = tf.split(
            tf.matmul(inputs, self.kernel) + self.bias, [3 * self.units, self.units], axis=-1
        )
        gates = tf.sigmoid(z_gates + tf.matmul(c, self.recurrent_kernel))
        f, i, o = tf.split(gates, 3, axis=-1)
        c_new = tf.sigmoid(z_cand) * i + c * f
        h_new = tf.tanh(c_new) * o
        return h_new, [h_new, c_new]

    def _classic_step(self, inputs, states):
        h, c = states
        z = tf.matmul(inputs, self.kernel) + tf.matmul(h, self.recurrent_kernel) + self.bias
        z_i, z_f, z_g, z_o = tf.split(z, 4, axis=-1)
        p_i, p_f, p_o = tf.split(self.peephole, 3)
        c_new = tf.tanh(z_g) * tf.sigmoid(z_i + p_i * c) + c * tf.sigmoid(z_f + p_f * c)
        h_new = tf.tanh(c_new) * tf.sigmoid(z_o + p_o * c_new)
        return h_new, [h_new, c_new]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "variant": self.variant,
                "peephole_initializer": keras.initializers.serialize(self.peephole_initializer),
            }
        )
        return config
