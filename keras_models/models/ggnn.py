"""Gated graph neural network (Li et al., "Gated Graph Sequence Neural Networks",
arXiv:1511.05493) for node classification, and its gated layers for the link-prediction encoder.

The gated layers are ``h⁽⁰⁾ = X W_in`` (a linear projection to ``hidden`` channels: Li et al.
pad the features with zeros, which needs ``n_features ≤ hidden``, not true of bag-of-words
features) followed by spektral's ``GatedGraphConv`` for ``steps`` steps:

    m_i⁽ˡ⁾ = Σ_{j ∈ N(i)} W_l h_j⁽ˡ⁻¹⁾              (a sum over the 0/1 adjacency, no self loop)
    h_i⁽ˡ⁾ = GRU(m_i⁽ˡ⁾, h_i⁽ˡ⁻¹⁾)                    (Keras' GRUCell, weights shared by the steps)

where the GRU is ``z = σ(W_z m + U_z h + b_z)``, ``r = σ(W_r m + U_r h + b_r)``,
``h̃ = tanh(W_h m + r ⊙ (U_h h + b'_h) + b_h)``, ``h' = z ⊙ h + (1 − z) ⊙ h̃``: the gate decides
per channel how much of the node's state the neighbours' message replaces.

Node classifier: ``softmax(dropout(GGNN(dropout(X) W_in)) W_out + b)``; dropout 0.5 and the
GCN paper's L2 (``l2(2.5e-4)``) on ``W_in``. Inputs: node features ``(n_nodes, n_features)`` and
the 0/1 adjacency, both ``tf.SparseTensor``; output ``(n_nodes, n_classes)`` probabilities.
spektral's ``GatedGraphConv`` exports as a SavedModel as it is (it has no per-instance ``call``
wrapper, unlike ``GCNConv``), so it needs no subclass in ``keras_models.layers.graph_conv``.
"""

from keras_models.backend import keras

from spektral.layers import GatedGraphConv

from keras_models.layers.sparse_dropout import SparseInputDropout
from keras_models.models.gat import preprocess, preprocess_tf  # noqa: F401  (the 0/1 pattern)
from keras_models.utils.sparse_tensors import sparse_tensor

HIDDEN, STEPS = 64, 2
PAPER_L2 = 2.5e-4


def preprocess_sparse(a):
    """The 0/1 pattern (no self loops) of a SciPy adjacency as a ``tf.SparseTensor``."""
    return sparse_tensor(preprocess(a))


def gated_layers(x, a, hidden, *, steps=STEPS, seed=0, regularizer=None):
    """``GatedGraphConv(hidden, steps)([x W_in, a])`` on symbolic ``x`` and sparse ``a``."""
    h = keras.layers.Dense(
        hidden, use_bias=False, name="ggnn_input", kernel_regularizer=regularizer,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
    )(x)
    return GatedGraphConv(
        hidden, steps, name="ggnn", kernel_initializer=keras.initializers.GlorotUniform(seed + 1)
    )([h, a])


def build_ggnn(n_features, n_classes, *, hidden=HIDDEN, steps=STEPS, dropout=0.5, l2=PAPER_L2,
               seed=0):
    """The GGNN node classifier as a Keras model ``[x, A] -> probabilities``."""
    x_in = keras.Input((n_features,), sparse=True, name="x")
    a_in = keras.Input((None,), sparse=True, name="a")
    h = SparseInputDropout(dropout, seed=seed)(x_in)
    h = gated_layers(h, a_in, hidden, steps=steps, seed=seed,
                     regularizer=keras.regularizers.l2(l2))
    h = keras.layers.Dropout(dropout, seed=seed + 1)(h)
    out = keras.layers.Dense(
        n_classes, activation="softmax", name="classes",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2),
    )(h)
    return keras.Model([x_in, a_in], out, name="ggnn")
