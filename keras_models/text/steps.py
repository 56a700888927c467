"""A ``CharModel``'s layers as step functions, for the loops of ``keras_models/text/generator.py``.

``steps_for(model)`` reads the weights into tensors (once per call of a traced function) and
returns an object with:

- ``initial(batch)``: zero states, one tuple per layer (the layer's output first: ``(h, c)``
  for LSTMs, ``(h,)`` for GRUs);
- ``embed(ids)``: the first layer's input for ids ``[batch]``;
- ``layer(l, x, state)``: one step of layer ``l``, returning ``(output, new_state)``;
- ``FeatureMajorLSTM`` only, for the prompt pass (batch-major): ``sequence_inputs(l, x)`` (a
  layer's input terms for a run of characters at once), ``recurrent_batch_major(l, h)`` and
  ``cell(z, c, axis=1)``;
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
  ``E W₁ + b₁ [vocab, 4H]`` whose rows are gathered by id; every other layer is two products
  ``W x + (U h + b)``, the second of which needs only the previous step. Then
  ``c' = tanh(z_g) σ(z_i) + c σ(z_f)``, ``h' = tanh(c') σ(z_o)``.
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


def _gate_rows(matrix):
    """``matrix [..., 4H]`` (Keras' gate order i, f, g, o) → ``[4H, ...]`` in the order
    i, f, o, g: the three sigmoid gates first, so one ``sigmoid`` and one ``tanh`` cover them."""
    i, f, g, o = tf.split(matrix, 4, axis=-1)
    return tf.transpose(tf.concat([i, f, o, g], axis=-1))


class FeatureMajorLSTM(CellSteps):
    """A stack of plain LSTM layers, states ``[H, batch]``.

    Layer ``l``'s pre-activation is ``z = in_l(x) + (U_lᵀ h + b_l)``: ``in_0`` gathers a row
    of the table ``E W₀ + b₀`` (``b_0`` is in it), ``in_l = W_lᵀ x`` above. The recurrent term
    needs only the previous state, so the executor computes it while the step before is still
    choosing its character: per generated character only ``W_lᵀ x`` of the layers above the
    first and the output layer are products on the chain from one draw to the next. Gate rows
    are ordered i, f, o, g.
    """

    def __init__(self, model):
        super().__init__(model)
        cells = [rnn.cell for rnn in model.rnns]
        first = cells[0]
        self.table = tf.transpose(_gate_rows(
            tf.matmul(model.embedding.embeddings, first.kernel) + first.bias))  # [vocab, 4H]
        self.recurrent_kernels = [_gate_rows(c.recurrent_kernel) for c in cells]  # [4H, H]
        # [H, 4H], for batch-major steps: ``h U`` with U stored this way round is about 10 %
        # faster at batch 1 than with ``transpose_b``
        self.recurrent_columns = [tf.transpose(u) for u in self.recurrent_kernels]
        self.input_kernels = [_gate_rows(c.kernel) for c in cells[1:]]  # [4H, I]
        self.biases = [_gate_rows(c.bias[None, :]) for c in cells[1:]]  # [4H, 1]
        self.kernel = tf.transpose(self.kernel)  # [vocab, H]
        self.bias, self.masked_bias = self.bias[:, None], self.masked_bias[:, None]

    def initial(self, batch):
        return [tuple(tf.zeros((size, batch)) for size in sizes) for sizes in self.sizes]

    def embed(self, ids):
        return ids  # the first layer's input term is a row of the table, in ``inputs``

    def inputs(self, index, x):
        """``in_l(x)`` for one character: ids ``[batch]`` → ``[4H, batch]`` for the first layer,
        else ``W_lᵀ x`` (``x [I, batch]``)."""
        if index == 0:
            # rows, then one transpose: a gather of columns costs several times more
            return tf.transpose(tf.gather(self.table, x))
        return tf.matmul(self.input_kernels[index - 1], x)

    def sequence_inputs(self, index, x):
        """``in_l(x) + b_l`` for a run of characters at once, batch-major (so that ``z = these +
        h U_l``): ids ``[n, batch]`` (the first layer: one gather, its bias is in the table) or
        the outputs below ``[n, batch, I]`` (one product) → ``[n, batch, 4H]``."""
        if index == 0:
            return tf.gather(self.table, x)
        n, batch = tf.shape(x)[0], tf.shape(x)[1]
        kernel = self.input_kernels[index - 1]
        rows = tf.matmul(tf.reshape(x, [n * batch, x.shape[2]]), kernel, transpose_b=True)
        return tf.reshape(rows, [n, batch, kernel.shape[0]]) + self.biases[index - 1][:, 0]

    def recurrent(self, index, h):
        """``U_lᵀ h`` (``h [H, batch]``)."""
        return tf.matmul(self.recurrent_kernels[index], h)

    def recurrent_batch_major(self, index, h):
        """``h U_l`` (``h [batch, H]``; ``U_l`` as ``[H, 4H]``) → ``[batch, 4H]``."""
        return tf.matmul(h, self.recurrent_columns[index])

    def cell(self, z, c, axis=0):
        """The LSTM update from the pre-activation ``z`` (rows i, f, o, g along ``axis``: ``[4H,
        batch]`` feature-major, ``[batch, 4H]`` with ``axis=1``) and ``c``: ``c' = σ(z_i)
        tanh(z_g) + σ(z_f) c``, ``h' = σ(z_o) tanh(c')``; → ``(h', c')``."""
        units = c.shape[axis]
        gates, candidate = tf.split(z, [3 * units, units], axis=axis)
        i, f, o = tf.split(tf.sigmoid(gates), 3, axis=axis)
        c = i * tf.tanh(candidate) + f * c
        return tf.tanh(c) * o, c

    def layer(self, index, x, state):
        h, c = state
        recurrent = self.recurrent(index, h)
        if index > 0:
            recurrent += self.biases[index - 1]  # off the chain from the input, as U h
        h, c = self.cell(self.inputs(index, x) + recurrent, c)
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
