"""Shared machinery of seqgraph's LSTM-family cells: fused weights, states, config.

A cell owns a few fused weight matrices whose last axis is a row of equal ``units``-wide
blocks, one per gate (for example an input kernel ``[input_dim, 4·units]``). Subclasses
declare those blocks in ``weight_blocks`` and implement ``build_weights`` and ``call``; the
base gives them the state contract of ``keras.layers.RNN`` (states ``[h, c]``, each
``[batch, units]``), the initialiser options, named read-only access to every gate's matrix
(``gate_weights()["W_fx"]``) and a complete ``get_config``.
"""

from keras_models.backend import keras, tf

KAIMING_NORMAL = "kaiming_normal"


def resolve_initializer(identifier):
    """A Keras initialiser from ``identifier``; ``"kaiming_normal"`` is He normal, untruncated.

    ``"kaiming_normal"`` is PyTorch's ``kaiming_normal_`` (N(0, 2 / fan_in), fan_in = input
    width), the setting of the assignment the cells come from; Keras' ``"he_normal"`` truncates.
    """
    if identifier == KAIMING_NORMAL:
        return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")
    return keras.initializers.get(identifier)


class _ForgetBiasOne(keras.initializers.Initializer):
    """Bias initialiser: ``base`` everywhere, then ones in block ``slot`` of ``blocks``."""

    def __init__(self, base, slot, blocks):
        self.base, self.slot, self.blocks = base, slot, blocks

    def __call__(self, shape, dtype=None, **kwargs):
        units = shape[-1] // self.blocks
        parts = tf.split(self.base(shape, dtype=dtype), self.blocks, axis=-1)
        parts[self.slot] = tf.ones((units,), dtype=dtype)
        return tf.concat(parts, axis=-1)


class GatedCellBase(keras.layers.Layer):
    """Base of the LSTM-family cells: states ``[h, c]`` of width ``units``, fused gate weights.

    Subclasses set ``weight_blocks``: a mapping from weight attribute name to the names of its
    ``units``-wide blocks in order, e.g. ``{"bias": ("b_i", "b_f", "b_g", "b_o")}``; the bias
    block named ``b_f`` is set to one when ``unit_forget_bias`` is on.
    """

    weight_blocks = {}

    def __init__(
        self,
        units,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(units) <= 0:
            raise ValueError(f"units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.kernel_initializer = resolve_initializer(kernel_initializer)
        self.recurrent_initializer = resolve_initializer(recurrent_initializer)
        self.bias_initializer = resolve_initializer(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    @property
    def output_size(self):
        return self.units

    def build(self, input_shape):
        self.build_weights(int(input_shape[-1]))
        self.built = True

    def build_weights(self, input_dim):
        """Create the weights named in ``weight_blocks`` (``add_fused_weight`` does the work)."""
        raise NotImplementedError

    def add_fused_weight(self, name, rows, initializer):
        """Add weight ``name`` of shape ``[rows, k·units]`` (``[k·units]`` when rows is None)."""
        blocks = self.weight_blocks[name]
        shape = (len(blocks) * self.units,) if rows is None else (rows, len(blocks) * self.units)
        if rows is None and self.unit_forget_bias and "b_f" in blocks:
            initializer = _ForgetBiasOne(initializer, blocks.index("b_f"), len(blocks))
        weight = self.add_weight(name=name, shape=shape, initializer=initializer)
        setattr(self, name, weight)
        return weight

    def gate_weights(self):
        """Read-only copies of every gate's block by name, e.g. ``{"W_ix": [input_dim, units]}``."""
        named = {}
        for attribute, names in self.weight_blocks.items():
            blocks = tf.split(tf.convert_to_tensor(getattr(self, attribute)), len(names), axis=-1)
            named.update(zip(names, blocks, strict=True))
        return named

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
        if inputs is not None:
            batch_size, dtype = tf.shape(inputs)[0], inputs.dtype
        zeros = tf.zeros((batch_size, self.units), dtype=dtype or self.compute_dtype)
        return [zeros, zeros]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "unit_forget_bias": self.unit_forget_bias,
            }
        )
        return config
