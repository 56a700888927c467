"""Kipf & Welling's two-layer GCN for node classification (https://arxiv.org/abs/1609.02907).

``Z = softmax(Â · dropout(ReLU(Â · dropout(X) W₀)) W₁)`` with ``Â = D̃^-½ (A + I) D̃^-½``.

Inputs: node features ``x`` ``(n_nodes, n_features)`` and ``Â`` as a ``tf.SparseTensor``
``(n_nodes, n_nodes)`` (``preprocess`` in NumPy, ``preprocess_tf`` in-graph for serving).
Output: class probabilities ``(n_nodes, n_classes)``.

L2: the paper's ``5e-4 · ½‖W₀‖²`` is Keras ``l2(2.5e-4)`` (Keras' ``l2(c)`` adds ``c · ‖W‖²``).

No biases, as in the paper's code (tkipf/gcn): the row-normalised features make ``Â X W₀`` tiny
(about ±0.005 at initialisation), so Adam's first steps of ±lr on a hidden bias can push a ReLU
unit below zero on every node, where it never recovers (a dead unit).
"""

from keras_models.backend import keras, tf

from keras_models.layers.graph_conv import GCNConv
from keras_models.utils.graph_algebra import normalized_adjacency

PAPER_L2 = 2.5e-4


def preprocess(a):
    """The GCN filter Â of a NumPy/SciPy adjacency, as a dense float32 array."""
    return normalized_adjacency(a).astype("float32")


def preprocess_tf(a):
    """Â = D̃^-½ (A + I) D̃^-½ of a dense ``(n, n)`` adjacency tensor, inside a TF graph."""
    a_tilde = a + tf.eye(tf.shape(a)[0], dtype=a.dtype)
    inv_sqrt_degree = tf.math.rsqrt(tf.reduce_sum(a_tilde, axis=1))
    return a_tilde * inv_sqrt_degree[:, None] * inv_sqrt_degree[None, :]


def build_gcn(n_features, n_classes, *, hidden=16, dropout=0.5, l2=PAPER_L2, seed=0):
    """The GCN as a Keras model ``[x, Â] -> probabilities``; L2 on the first kernel only."""
    x_in = keras.Input((n_features,), name="x")
    a_in = keras.Input((None,), sparse=True, name="a")
    h = keras.layers.Dropout(dropout, seed=seed)(x_in)
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
