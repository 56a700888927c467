"""A ``CharModel``'s layers as step functions, for the loops of ``keras_models/text/generator.py``.

``steps_for(model)`` reads the weights into tensors (once per call of a traced function) and
returns an object with:

- ``initial(batch)``: zero states, one tuple per layer (the layer's output first: ``(h, c)``
  for LSTMs, ``(h,)`` for GRUs);
- ``embed(ids)``: the first layer's input for ids ``[batch]``;
- ``layer(l, x, state)``: one step of layer ``l``, returning ``(output, new_state)``;
- ``logits(output, oov=False)``: the output layer on the last layer's output, the
  out-of-vocabulary id at ``−∞`` unless ``oov``;
- ``greedy(logits)``, ``batch_major(logits)``, ``select(active, new, old)`` (rows ``active
  [batch]`` take ``new``), and ``pack(states)`` / ``unpack(packed)`` between the states and one
  float32 ``[batch, state_size]`` tensor (each layer's states in order, batch-major).

Two implementations give the same numbers (to float rounding):

- ``FeatureMajorLSTM``, when every layer is a plain LSTM (ours, or Keras' with tanh and sigmoid):
  states are ``[H, batch]``, so each product is ``[4H, K] @ [K, batch]``, a matrix-vector product
  at batch 1 (TensorFlow's CPU matmul runs it without packing the matrix, see
  ``docs/benchmarks.md``). The first layer's input projection and bias are folded into a table
  ``(E W₁ + b₁)ᵀ [4H, vocab]`` whose columns are gathered by id; every other layer is one product
  ``[W; U]ᵀ [x; h] + b``. Then ``c' = tanh(z_g) σ(z_i) + c σ(z_f)``, ``h' = tanh(c') σ(z_o)``.
- ``CellSteps`` for every other cell: the model's own cells, batch-major, as ``CharModel.step``.
"""

from keras_models.backend import keras, tf

from keras_models.layers.lstm_cell import LSTMCell


def _plain_lstm(cell):
    if type(cell) is LSTMCell:
        return True
    return (
        type(cell) is keras.layers.LSTMCell
        and cell.use_bias
        and keras.activations.serialize(cell.activation) == "tanh"
        and keras.activations.serialize(cell.recurrent_activation) == "sigmoid"
    )


def steps_for(model):
    """The step functions of ``model`` (a built ``CharModel``) for the current trace."""
    if all(_plain_lstm(rnn.cell) for rnn in model.rnns):
        return FeatureMajorLSTM(model)
    return CellSteps(model)


def _oov_bias(bias):
    """``bias`` with the out-of-vocabulary id (0) at ``−∞``: never generated."""
    return tf.concat([[-float("inf")], bias[1:]], axis=0)


class CellSteps:
    """Any ``CharModel``: its embedding, cells and output layer, batch-major."""

    def __init__(self, model):
        self.model = model
        self.sizes = [tf.nest.flatten(rnn.cell.state_size) for rnn in model.rnns]
        self.kernel = tf.convert_to_tensor(model.dense.kernel)
        self.bias = tf.convert_to_tensor(model.dense.bias)
        self.masked_bias = _oov_bias(self.bias)

    def initial(self, batch):
        return [tuple(tf.zeros((batch, size)) for size in sizes) for sizes in self.sizes]

    def embed(self, ids):
        return tf.gather(self.model.embedding.embeddings, ids)

    def layer(self, index, x, state):
        output, new_state = self.model.rnns[index].cell(x, list(state))
        return output, tuple(tf.nest.flatten(new_state))

    def logits(self, output, oov=False):
        return tf.matmul(output, self.kernel) + (self.bias if oov else self.masked_bias)

    def greedy(self, logits):
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    def batch_major(self, logits):
        return logits

    def select(self, active, new, old):
        return tf.where(active[:, None], new, old)

    def pack(self, states):
        return tf.concat([s for state in states for s in state], axis=1)

    def unpack(self, packed):
        parts = iter(tf.split(packed, [s for sizes in self.sizes for s in sizes], axis=1))
        return [tuple(next(parts) for _ in sizes) for sizes in self.sizes]


class FeatureMajorLSTM(CellSteps):
    """A stack of plain LSTM layers, states ``[H, batch]``, one product per layer per step."""

    def __init__(self, model):
        super().__init__(model)
        cells = [rnn.cell for rnn in model.rnns]
        first = cells[0]
        self.table = tf.transpose(
            tf.matmul(model.embedding.embeddings, first.kernel) + first.bias)  # [4H, vocab]
        self.recurrent = tf.transpose(first.recurrent_kernel)  # [4H, H]
        self.kernels = [tf.transpose(tf.concat([c.kernel, c.recurrent_kernel], axis=0))
                        for c in cells[1:]]  # [4H, I + H]
        self.biases = [c.bias[:, None] for c in cells[1:]]
        self.kernel = tf.transpose(self.kernel)  # [vocab, H]
        self.bias, self.masked_bias = self.bias[:, None], self.masked_bias[:, None]

    def initial(self, batch):
        return [tuple(tf.zeros((size, batch)) for size in sizes) for sizes in self.sizes]

    def embed(self, ids):
        return tf.gather(self.table, ids, axis=1)  # the first layer's W x + b

    def layer(self, index, x, state):
        h, c = state
        if index == 0:
            z = x + tf.matmul(self.recurrent, h)
        else:
            z = tf.matmul(self.kernels[index - 1], tf.concat([x, h], axis=0)) + \
                self.biases[index - 1]
        z_i, z_f, z_g, z_o = tf.split(z, 4, axis=0)
        c = tf.tanh(z_g) * tf.sigmoid(z_i) + c * tf.sigmoid(z_f)
        h = tf.tanh(c) * tf.sigmoid(z_o)
        return h, (h, c)

    def logits(self, output, oov=False):
        return tf.matmul(self.kernel, output) + (self.bias if oov else self.masked_bias)

    def greedy(self, logits):
        return tf.argmax(logits, axis=0, output_type=tf.int32)

    def batch_major(self, logits):
        return tf.transpose(logits)

    def select(self, active, new, old):
        return tf.where(active[None, :], new, old)

    def pack(self, states):
        return tf.transpose(tf.concat([s for state in states for s in state], axis=0))

    def unpack(self, packed):
        sizes = [s for layer_sizes in self.sizes for s in layer_sizes]
        parts = iter(tf.split(tf.transpose(packed), sizes, axis=0))
        return [tuple(next(parts) for _ in layer_sizes) for layer_sizes in self.sizes]
