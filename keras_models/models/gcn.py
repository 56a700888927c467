"""Kipf & Welling's two-layer GCN for node classification (https://arxiv.org/abs/1609.02907).

``Z = softmax(Â · dropout(ReLU(Â · dropout(X) W₀)) W₁)`` with ``Â = D̃^-½ (A + I) D̃^-½``.

Inputs: node features ``x`` as a ``tf.SparseTensor`` ``(n_nodes, n_features)`` (bag-of-words
features are 99 % zeros: the input dropout draws only for the nonzeros, ``SparseInputDropout``,
and the first layer multiplies sparsely) and ``Â`` as a ``tf.SparseTensor``
``(n_nodes, n_nodes)`` (``preprocess`` in SciPy, ``preprocess_tf`` in-graph for serving and
sampled batches). Nothing is ``n × n`` dense. Output: class probabilities
``(n_nodes, n_classes)``.

L2: the paper's ``5e-4 · ½‖W₀‖²`` is Keras ``l2(2.5e-4)`` (Keras' ``l2(c)`` adds ``c · ‖W‖²``).

No biases, as in the paper's code (tkipf/gcn): the row-normalised features make ``Â X W₀`` tiny
(about ±0.005 at initialisation), so Adam's first steps of ±lr on a hidden bias can push a ReLU
unit below zero on every node, where it never recovers (a dead unit).
"""

from keras_models.backend import keras, tf

from keras_models.layers.graph_conv import GCNConv
from keras_models.layers.sparse_dropout import SparseInputDropout
from keras_models.utils.graph_algebra import normalized_adjacency

PAPER_L2 = 2.5e-4


def preprocess(a):
    """The GCN filter Â of a SciPy adjacency, as a float32 CSR matrix."""
    return normalized_adjacency(a).astype("float32")


def preprocess_tf(a):
    """Â = D̃^-½ (A + I) D̃^-½ of a sparse ``(n, n)`` adjacency without self loops (as
    ``sparse_tensors.undirected_adjacency`` gives), inside a TF graph, indices in row-major order;
    ``O((n + edges) log(n + edges))``."""
    n = a.dense_shape[0]
    loops = tf.range(n, dtype=tf.int64)
    a_tilde = tf.SparseTensor(
        tf.concat([a.indices, tf.stack([loops, loops], axis=1)], axis=0),
        tf.concat([a.values, tf.ones(tf.reshape(n, [1]), a.values.dtype)], axis=0),
        a.dense_shape,
    )
    rows, cols = a_tilde.indices[:, 0], a_tilde.indices[:, 1]
    inv_sqrt_degree = tf.math.rsqrt(tf.math.unsorted_segment_sum(a_tilde.values, rows, n))
    a_hat = a_tilde.with_values(
        a_tilde.values * tf.gather(inv_sqrt_degree, rows) * tf.gather(inv_sqrt_degree, cols)
    )
    return tf.sparse.reorder(a_hat)  # the self loops were appended: back to row-major order


def build_gcn(n_features, n_classes, *, hidden=16, dropout=0.5, l2=PAPER_L2, seed=0):
    """The GCN as a Keras model ``[x, Â] -> probabilities`` (both inputs ``tf.SparseTensor``);
    L2 on the first kernel only."""
    x_in = keras.Input((n_features,), sparse=True, name="x")
    a_in = keras.Input((None,), sparse=True, name="a")
    h = SparseInputDropout(dropout, seed=seed)(x_in)
    h = GCNConv(
        hidden, activation="relu", name="gcn_1", use_bias=False,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        kernel_regularizer=keras.regularizers.l2(l2),
    )([h, a_in])
    h = keras.layers.Dropout(dropout, seed=seed + 1)(h)
    out = GCNConv(
        n_classes, activation="softmax", name="gcn_2", use_bias=False,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
    )([h, a_in])
    return keras.Model([x_in, a_in], out, name="gcn")
