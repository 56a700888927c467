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

Inputs: node features ``x`` and the adjacency ``A``, both ``tf.SparseTensor`` (only the pattern
of ``A`` matters; self loops are added by the layers). Nothing is ``n × n`` dense.
Output: class probabilities ``(n_nodes, n_classes)``.
"""

from keras_models.backend import keras, tf

import numpy as np
import scipy.sparse as sp

from keras_models.layers.graph_conv import GATConv
from keras_models.layers.sparse_dropout import SparseInputDropout
from keras_models.utils.sparse_tensors import sparse_tensor

PAPER_L2 = 2.5e-4
# Layers that aggregate over the adjacency: a node's output depends on its 2-hop neighbourhood.
RECEPTIVE_HOPS = 2


def preprocess(a):
    """The 0/1 adjacency pattern of a SciPy adjacency, float32 CSR, no self loops."""
    pattern = sp.csr_matrix(a, dtype=np.float32)
    pattern.setdiag(0.0)
    pattern.eliminate_zeros()
    pattern.data[:] = 1.0
    return pattern


def preprocess_tf(a):
    """The 0/1 pattern of a sparse adjacency without self loops (as
    ``sparse_tensors.undirected_adjacency`` gives), inside a TF graph."""
    return a.with_values(tf.ones_like(a.values))


def build_gat(
    n_features, n_classes, *, heads=8, hidden=8, dropout=0.6, l2=PAPER_L2, seed=0
):
    """The GAT as a Keras model ``[x, A] -> probabilities``, every initialiser seeded."""
    x_in = keras.Input((n_features,), sparse=True, name="x")
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
    """Attention ``α_ij`` of one GAT layer at inference: one CSR ``(n_nodes, n_nodes)`` per head.

    ``x`` are the model's node features and ``a`` the adjacency (SciPy); row ``i`` of each head
    sums to 1 over ``N(i) ∪ {i}`` and is 0 elsewhere. Memory ``O(heads · edges)``.
    """
    layer = model.get_layer(layer_name)
    pattern = sparse_tensor(preprocess(a))
    layer_inputs = keras.Model(model.inputs, layer.input[0])
    h = layer_inputs([sparse_tensor(x), pattern], training=False)
    probe = GATConv.from_config({**layer.get_config(), "return_attn_coef": True})
    probe([h, pattern])
    probe.set_weights(layer.get_weights())
    _, alpha = probe([h, pattern], training=False)  # (edges, then self loops; heads; 1)
    targets, sources = (t.numpy() for t in GATConv.edges(pattern))
    loops = np.arange(pattern.dense_shape[0])
    targets, sources = np.concatenate([targets, loops]), np.concatenate([sources, loops])
    shape = pattern.dense_shape.numpy()
    return [sp.csr_matrix((alpha.numpy()[:, head, 0], (targets, sources)), shape=shape)
            for head in range(alpha.shape[1])]
