"""The character-level language model: ``Embedding → stacked RNN layers → Dense(vocab)``.

For ids ``x[b, t]``: ``e = E[x]``, ``h¹ = RNN₁(e)``, …, ``hᴸ = RNN_L(hᴸ⁻¹)``, logits
``y = hᴸ W + b`` of shape ``[batch, time, vocab_size]``; the next-character distribution is
``softmax(y)``. With ``dropout`` p > 0, each layer's output ``hˡ`` passes through inverted dropout
in training only (the non-recurrent dropout of Zaremba et al., 2014: the states carried from step
to step are never dropped). The RNN cell is any of ``keras_models.CELL_CHOICES`` (default: our
LSTM).
"""

from keras_models.backend import keras, tf

from keras_models.layers.fused_lstm import FusedLSTM
from keras_models.layers.rnn_factory import make_rnn


@keras.saving.register_keras_serializable(package="seqgraph")
class CharModel(keras.Model):
    """Character language model with states that can be passed in and out.

    ``call(inputs, states=None, return_state=False)``: ``inputs`` ids ``[batch, time]``;
    ``states`` one list of tensors per RNN layer (``[h, c]`` for LSTMs, each ``[batch, units]``),
    zeros when None. Returns logits ``[batch, time, vocab_size]``, and the final states too when
    ``return_state``. ``step(ids, states)`` advances one character (``ids`` ``[batch]``) by
    calling the cells directly (the reference the generator's loops are tested against).

    Args:
        vocab_size: number of ids, out-of-vocabulary id included.
        embedding_dim: width of the character embedding.
        units: width of every RNN layer.
        num_layers: number of stacked RNN layers.
        cell: one of ``keras_models.CELL_CHOICES``.
        dropout: rate of the dropout on each RNN layer's output, in ``[0, 1)``.
    """

    def __init__(self, vocab_size, embedding_dim=128, units=256, num_layers=2, cell="lstm",
                 dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.cell = cell
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dropout = float(dropout)
        self.embedding = keras.layers.Embedding(self.vocab_size, self.embedding_dim)
        self.rnns = [
            make_rnn(cell, self.units, return_sequences=True, return_state=True, fused=True,
                     name=f"rnn_{i}")
            for i in range(self.num_layers)
        ]
        self.output_dropout = keras.layers.Dropout(self.dropout)
        self.dense = keras.layers.Dense(self.vocab_size, name="logits")

    def build(self, input_shape):
        """Create every layer's weights, in call order, before ``call`` (which reads the
        embedding table directly); ``input_shape`` is ``[batch, time]``."""
        batch, steps = input_shape[0], input_shape[1]
        width = self.embedding_dim
        with tf.name_scope(self.embedding.name):
            self.embedding.build(input_shape)
        for rnn in self.rnns:
            with tf.name_scope(rnn.name):
                rnn.build(tf.TensorShape([batch, steps, width]))
            width = self.units
        with tf.name_scope(self.dense.name):
            self.dense.build(tf.TensorShape([batch, steps, width]))
        self.built = True

    def call(self, inputs, states=None, return_state=False, training=None):
        x, final_states = None, []
        for i, rnn in enumerate(self.rnns):
            initial_state = None if states is None else states[i]
            outputs = (self._first_layer(inputs, initial_state, training) if i == 0
                       else rnn(x, initial_state=initial_state, training=training))
            x = self.output_dropout(outputs[0], training=training)
            final_states.append(list(outputs[1:]))
        logits = self.dense(x)
        return (logits, final_states) if return_state else logits

    def _first_layer(self, ids, initial_state, training):
        """The first RNN layer on the embedded ids; a ``FusedLSTM`` may fold the lookup in."""
        rnn = self.rnns[0]
        if isinstance(rnn, FusedLSTM):
            return rnn.call_on_ids(ids, self.embedding.embeddings, initial_state=initial_state,
                                   training=training)
        return rnn(self.embedding(ids), initial_state=initial_state, training=training)

    def initial_states(self, batch_size):
        """Zero states for ``batch_size`` rows, in the structure ``call`` and ``step`` take."""
        return [
            [tf.zeros((batch_size, size)) for size in tf.nest.flatten(rnn.cell.state_size)]
            for rnn in self.rnns
        ]

    def step(self, ids, states):
        """One character per row: ids ``[batch]`` → logits ``[batch, vocab_size]``, new states."""
        x = self.embedding(ids)
        new_states = []
        for rnn, layer_states in zip(self.rnns, states, strict=True):
            x, cell_states = rnn.cell(x, layer_states)
            new_states.append(tf.nest.flatten(cell_states))
        return self.dense(x), new_states

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "num_layers": self.num_layers,
                "cell": self.cell,
                "dropout": self.dropout,
            }
        )
        return config
