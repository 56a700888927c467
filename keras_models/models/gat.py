"""Veličković et al.'s graph attention network for node classification (arXiv:1710.10903).

Layer 1: ``GATConv`` with 8 heads × 8 features, ELU, heads concatenated; layer 2: ``GATConv``
with 1 head giving the class scores (heads averaged), softmax. Dropout 0.6 on the inputs of
both layers, on the attention coefficients and, as in the paper's code (PetarV-/GAT), on the
transformed features ``W h`` before the attention-weighted sum (``features_dropout_rate``).
The first layer's input dropout draws random numbers only for the nonzero features and hands
the layer a ``tf.SparseTensor`` (``SparseInputDropout``): the same dropout, since a dropped
zero is still zero, without drawing 12 million random numbers per step for CiteSeer's
3327 × 3703 features (99 % zeros). L2 on all kernels and attention kernels, not on biases:
the paper's ``5e-4 · ½‖W‖²`` is Keras ``l2(2.5e-4)``. (The paper's code means to exclude biases,
but its filter compares full variable names such as ``.../bias:0`` with ``"bias"``, never
equal, so it decays them too; it also draws a separate input-dropout mask for each head.)

Inputs: node features ``x`` ``(n_nodes, n_features)`` and the adjacency ``A`` as a
``tf.SparseTensor`` (only its pattern matters; self loops are added by the layers).
Output: class probabilities ``(n_nodes, n_classes)``.
"""

from keras_models.backend import keras, tf

import numpy as np
import scipy.sparse as sp

from keras_models.layers.graph_conv import GATConv
from keras_models.layers.sparse_dropout import SparseInputDropout

PAPER_L2 = 2.5e-4


def preprocess(a):
    """The 0/1 adjacency pattern of a NumPy/SciPy adjacency, dense float32, no self loops."""
    a = a.toarray() if sp.issparse(a) else np.asarray(a)
    pattern = (a != 0).astype("float32")
    np.fill_diagonal(pattern, 0.0)
    return pattern


def preprocess_tf(a):
    """The 0/1 adjacency pattern of a dense ``(n, n)`` adjacency tensor, inside a TF graph."""
    pattern = tf.cast(tf.not_equal(a, 0), a.dtype)
    return tf.linalg.set_diag(pattern, tf.zeros(tf.shape(a)[:1], a.dtype))


def build_gat(
    n_features, n_classes, *, heads=8, hidden=8, dropout=0.6, l2=PAPER_L2, seed=0
):
    """The GAT as a Keras model ``[x, A] -> probabilities``, every initialiser seeded."""
    x_in = keras.Input((n_features,), name="x")
    a_in = keras.Input((None,), sparse=True, name="a")
    reg = keras.regularizers.l2(l2)

    def gat(channels, n_heads, concat, activation, name, layer_seed):
        init = keras.initializers.GlorotUniform(seed=layer_seed)
        return GATConv(
            channels, attn_heads=n_heads, concat_heads=concat, dropout_rate=dropout,
            features_dropout_rate=dropout,
            activation=activation, name=name, kernel_initializer=init,
            attn_kernel_initializer=keras.initializers.GlorotUniform(seed=layer_seed + 10),
            kernel_regularizer=reg, attn_kernel_regularizer=reg,
        )

    h = SparseInputDropout(dropout, seed=seed)(x_in)
    h = gat(hidden, heads, True, "elu", "gat_1", seed)([h, a_in])
    h = keras.layers.Dropout(dropout, seed=seed + 1)(h)
    out = gat(n_classes, 1, False, "softmax", "gat_2", seed + 1)([h, a_in])
    return keras.Model([x_in, a_in], out, name="gat")


def attention_coefficients(model, x, a, layer_name="gat_1"):
    """Attention ``α[i, h, j]`` of one GAT layer at inference, ``(n_nodes, heads, n_nodes)``.

    ``x`` are the model's node features and ``a`` the dense adjacency; row ``i`` of each head
    sums to 1 over ``N(i) ∪ {i}`` and is 0 elsewhere.
    """
    layer = model.get_layer(layer_name)
    a_dense = tf.constant(preprocess(a))
    layer_inputs = keras.Model(model.inputs, layer.input[0])
    h = layer_inputs([tf.constant(x, tf.float32), tf.sparse.from_dense(a_dense)], training=False)
    if isinstance(h, tf.SparseTensor):
        h = tf.sparse.to_dense(h)
    probe = GATConv.from_config({**layer.get_config(), "return_attn_coef": True})
    probe([h, a_dense])
    probe.set_weights(layer.get_weights())
    _, alpha = probe([h, a_dense], training=False)
    return alpha.numpy()
