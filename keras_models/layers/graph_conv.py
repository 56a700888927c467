"""The one place where seqgraph makes spektral 1.3.1 work on today's stack.

1. **SavedModel export of ``GCNConv``/``GATConv``** fails upstream with ``call() takes 1
   positional argument but 2 were given``: spektral's ``Conv.__init__`` replaces the bound
   ``call`` with an instance attribute (its dtype-check wrapper), which Keras' SavedModel tracing
   cannot call. The subclasses below drop that attribute and run the same check inside ``call``.
2. **Identical attention kernels**: spektral's ``GATConv`` draws ``attn_kernel_self`` and
   ``attn_kernel_neigh`` from one initialiser instance, and tf-keras initialisers return the same
   values on every call, so both kernels start equal. The subclass redraws the neighbour kernel
   with the next seed.
3. **scipy ≥ 1.14** removed ``spmatrix.A``, which spektral's Planetoid loader (``Citation.read``)
   uses. That is a pin, not a shim: ``scipy>=1.10,<1.14`` in ``setup.cfg``, checked by the
   Planetoid loader tests on files written with the installed scipy.

Two additions to ``GATConv`` that are not fixes (both off by default, so the layer is upstream's
unless asked): ``features_dropout_rate``, dropout on the transformed features ``W x_j`` before
the attention-weighted sum, as in the paper's code (PetarV-/GAT, ``attn_head``: the input
dropout is applied again to ``seq_fts``), which upstream's layer does not do; and node features
given as a ``tf.SparseTensor`` (the Planetoid features are 99 % zeros), multiplied sparsely.

One replacement: the sparse single-graph path (``GATConv._call_single``) is seqgraph's own, the
same equations computed several times faster on CPU (sorted segment reductions over the
adjacency's row order, self loops as a separate term; see its docstring and docs/graphs.md).

Use these classes instead of ``spektral.layers.GCNConv``/``GATConv``; they are registered under
``seqgraph>`` so Keras can reload models that contain them.
"""

from keras_models.backend import keras, tf  # noqa: F401  (one Keras before spektral)

from spektral.layers import GATConv as _SpektralGATConv
from spektral.layers import GCNConv as _SpektralGCNConv
from spektral.layers.convolutional.conv import check_dtypes

from keras_models.utils.sparse_tensors import sparse_dense_matmul


def _sorted_segment(reduce, data, segment_ids, n_segments, fill=0.0):
    """``reduce`` (``tf.math.segment_sum``/``_max``) over sorted ``segment_ids``, padded with
    ``fill`` to ``n_segments`` rows (the sorted ops stop at the largest id present)."""
    reduced = reduce(data, segment_ids)
    missing = n_segments - tf.shape(reduced, out_type=n_segments.dtype)[0]
    padding = [[0, missing]] + [[0, 0]] * (data.shape.rank - 1)
    return tf.pad(reduced, padding, constant_values=fill)


def _drop_call_wrapper(layer):
    """Remove spektral's per-instance ``call`` wrapper so the class method is used again."""
    if "call" in layer.__dict__:
        del layer.call


@keras.saving.register_keras_serializable(package="seqgraph")
class GCNConv(_SpektralGCNConv):
    """spektral's ``GCNConv`` (``X' = σ(Â X W + b)``), exportable as a SavedModel."""

    def __init__(self, channels, **kwargs):
        super().__init__(channels, **kwargs)
        _drop_call_wrapper(self)

    def call(self, inputs, mask=None):
        return super().call(check_dtypes(inputs), mask=mask)


@keras.saving.register_keras_serializable(package="seqgraph")
class GATConv(_SpektralGATConv):
    """spektral's ``GATConv``, exportable as a SavedModel, with independent attention kernels.

    ``α_ij = softmax_j(LeakyReLU(a_selfᵀ W x_i + a_neighᵀ W x_j))`` over ``j ∈ N(i) ∪ {i}`` and
    ``x'_i = σ(Σ_j drop(α_ij) · drop_f(W x_j) + b)`` per head, where ``drop`` is upstream's
    dropout on the attention coefficients (``dropout_rate``) and ``drop_f`` the dropout on the
    transformed features (``features_dropout_rate``, default 0: upstream's layer), an
    independent mask per node, head and channel, as in the paper's code. The attention itself
    is computed from the features before ``drop_f``. At inference both are the identity.

    ``x`` may be a ``tf.SparseTensor`` (single mode); it is then multiplied sparsely when the
    adjacency is sparse too, and made dense otherwise.
    """

    def __init__(self, channels, features_dropout_rate=0.0, **kwargs):
        super().__init__(channels, **kwargs)
        self.features_dropout_rate = features_dropout_rate
        _drop_call_wrapper(self)

    def build(self, input_shape):
        super().build(input_shape)
        init = self.attn_kernel_initializer
        seed = getattr(init, "seed", None)
        if seed is not None:
            neigh_init = init.__class__.from_config({**init.get_config(), "seed": seed + 1})
            self.attn_kernel_neighs.assign(neigh_init(self.attn_kernel_neighs.shape))
        self.features_dropout = keras.layers.Dropout(self.features_dropout_rate, dtype=self.dtype)

    def call(self, inputs, mask=None):
        x, a = check_dtypes(inputs)
        if isinstance(x, tf.SparseTensor) and not isinstance(a, tf.SparseTensor):
            x = tf.sparse.to_dense(x)
        return super().call([x, a], mask=mask)

    def _transformed(self, x):
        """``W x`` per head: ``(..., n_nodes, heads, channels)``."""
        if isinstance(x, tf.SparseTensor):
            kernel = tf.reshape(self.kernel, (-1, self.attn_heads * self.channels))
            wx = sparse_dense_matmul(x, kernel)  # CSR: 10-20x tf.sparse's at 64 columns
            return tf.reshape(wx, (-1, self.attn_heads, self.channels))
        if x.shape.rank == 2:  # one matmul; einsum's batched contraction is slower
            wx = tf.matmul(x, tf.reshape(self.kernel, (-1, self.attn_heads * self.channels)))
            return tf.reshape(wx, (-1, self.attn_heads, self.channels))
        return tf.einsum("...ni,iho->...nho", x, self.kernel)

    def _scores(self, wx):
        """``a_selfᵀ W x_i`` and ``a_neighᵀ W x_i`` of every node ``(n_nodes, heads)`` each, as one
        matmul of the flat ``W x`` by the two attention kernels laid out block-diagonally."""
        heads, channels = self.attn_heads, self.channels
        eye = tf.eye(heads, dtype=wx.dtype)

        def block_diagonal(kernel):  # (channels, heads, 1) -> (heads * channels, heads)
            return tf.reshape(tf.transpose(kernel[..., 0])[:, :, None] * eye[:, None, :],
                              (heads * channels, heads))

        both = tf.concat([block_diagonal(self.attn_kernel_self),
                          block_diagonal(self.attn_kernel_neighs)], axis=1)
        scores = tf.matmul(tf.reshape(wx, (-1, heads * channels)), both)
        return scores[:, :heads], scores[:, heads:]

    @staticmethod
    def edges(a):
        """``(targets, sources)`` of the nonzeros of a sparse adjacency, self loops left out,
        targets in increasing order (``a``'s row-major order, sorted first if it is not):
        node ``i`` attends to ``j`` where ``A_ij ≠ 0``."""
        rows = a.indices[:, 0]
        in_order = tf.reduce_all(rows[1:] >= rows[:-1])
        indices = tf.cond(in_order, lambda: a.indices, lambda: tf.sparse.reorder(a).indices)
        keep = tf.not_equal(indices[:, 0], indices[:, 1])
        return tf.boolean_mask(indices[:, 0], keep), tf.boolean_mask(indices[:, 1], keep)

    def _call_single(self, x, a):
        """Sparse adjacency, one graph: the softmax runs over each node's row of ``A`` (and the
        node itself, ``add_self_loops``).

        The edges stay in row order and the self loops are a separate ``(n_nodes, heads)``
        term, so every reduction over a node's edges is a sorted segment sum (TensorFlow's
        unsorted one costs ten times as much on CPU) and no edge list is re-sorted per call.
        The softmax subtracts each row's largest logit under ``stop_gradient``: the softmax
        does not change with it, so neither does its gradient. α is returned as
        ``(n_edges + n_nodes, heads, 1)``: the edges of ``edges(a)``, then the self loops (without
        ``add_self_loops``, the edges only).
        """
        n = tf.shape(x, out_type=a.indices.dtype)[0]
        targets, sources = self.edges(a)
        wx = self._transformed(x)
        score_self, score_neigh = self._scores(wx)
        logits = tf.nn.leaky_relu(
            tf.gather(score_self, targets) + tf.gather(score_neigh, sources), alpha=0.2
        )
        row_max = _sorted_segment(tf.math.segment_max, logits, targets, n, logits.dtype.min)
        if self.add_self_loops:
            loop_logits = tf.nn.leaky_relu(score_self + score_neigh, alpha=0.2)
            row_max = tf.maximum(row_max, loop_logits)
        row_max = tf.stop_gradient(row_max)
        exp_edges = tf.exp(logits - tf.gather(row_max, targets))
        total = _sorted_segment(tf.math.segment_sum, exp_edges, targets, n)
        if self.add_self_loops:
            exp_loops = tf.exp(loop_logits - row_max)
            total += exp_loops
        alpha = exp_edges / tf.gather(total, targets)
        wx_dropped = self.features_dropout(wx)
        messages = self.dropout(alpha)[..., None] * tf.gather(wx_dropped, sources)
        output = _sorted_segment(tf.math.segment_sum, messages, targets, n)
        if self.add_self_loops:
            alpha_loops = exp_loops / total
            output += self.dropout(alpha_loops)[..., None] * wx_dropped
            alpha = tf.concat([alpha, alpha_loops], axis=0)
        return output, alpha[..., None]

    def _call_dense(self, x, a):
        """Dense adjacency (any leading batch axes): α is ``(..., n_nodes, heads, n_nodes)``."""
        if self.add_self_loops:
            a = tf.linalg.set_diag(a, tf.ones(tf.shape(a)[:-1], a.dtype))
        wx = self._transformed(x)
        score_self = tf.einsum("...nho,oh->...nh", wx, self.attn_kernel_self[..., 0])
        score_neigh = tf.einsum("...nho,oh->...hn", wx, self.attn_kernel_neighs[..., 0])
        logits = tf.nn.leaky_relu(score_self[..., None] + score_neigh[..., None, :, :], 0.2)
        outside = tf.cast(tf.equal(a, 0.0), logits.dtype)[..., :, None, :]
        alpha = tf.nn.softmax(logits - 1e10 * outside, axis=-1)
        output = tf.einsum("...nhm,...mho->...nho", self.dropout(alpha), self.features_dropout(wx))
        return output, alpha

    def get_config(self):
        config = super().get_config()
        config.update({
            "add_self_loops": self.add_self_loops,
            "features_dropout_rate": self.features_dropout_rate,
        })
        return config
