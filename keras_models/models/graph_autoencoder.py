"""Graph auto-encoders for link prediction (Kipf & Welling, "Variational Graph Auto-Encoders",
arXiv:1611.07308), with a GCN or a gated (GGNN) encoder.

**Encoder.** GCN (the paper's): ``H = ReLU(Â X W₀)`` with 32 units, ``μ = Â H W_μ`` with 16;
the VGAE adds ``log σ = Â H W_σ``. No biases, as in the paper's code (tkipf/gae).
``Â = D̃^-½ (A + I) D̃^-½`` is a ``tf.SparseTensor``. GGNN: ``H = GGNN(X W_in)`` (spektral's
``GatedGraphConv``, ``keras_models.models.ggnn``) over the 0/1 adjacency, then linear heads
``μ = H W_μ`` (and ``log σ = H W_σ``).

**Decoder.** The inner product: ``p(A_ij = 1) = σ(z_i · z_j)`` (``pair_logits`` gives
``z_i · z_j``).

**Training** (``GraphAutoEncoder.train_step``, so ``model.fit`` drives it). The embeddings are
``z = μ`` (GAE) or ``z = μ + σ ⊙ ε``, ``ε ~ N(0, I)`` (VGAE). The reconstruction loss is
either the paper's over all ``n²`` node pairs (``all_pairs_loss``, the default), or
(``reconstruction="sampled"``) the binary cross-entropy on the training edges and as many
sampled non-edges, each mean taken separately, as PyTorch Geometric's ``GAE.recon_loss``:
``L = −mean_{(i,j) ∈ E} log σ(z_i·z_j) − mean_{(i,j) ∉ E} log(1 − σ(z_i·z_j))``, the non-edges
drawn afresh every step (uniform pairs ``i ≠ j``, those that are training edges dropped).
The VGAE adds the paper's KL term divided by the number of nodes, as tkipf/gae and PyG do:
``(1/n) · mean_i ½ Σ_d (μ² + σ² − 1 − 2 log σ)``. At inference ``z = μ``.
"""

from keras_models.backend import keras, tf

from keras_models.layers.graph_conv import GCNConv
from keras_models.models import gcn, ggnn
from keras_models.utils.errors import require
from keras_models.utils.sparse_tensors import sparse_tensor, undirected_adjacency

HIDDEN, LATENT = 32, 16  # the paper's encoder sizes
ENCODERS = ("gcn", "ggnn")
RECONSTRUCTIONS = ("all-pairs", "sampled")


def _keys(edges, n):
    """Sorted unique keys ``i · n + j`` of ``edges`` (int64 ``(k, 2)``) in both directions."""
    both_ways = tf.concat([edges, tf.reverse(edges, axis=[1])], axis=0)
    keys, _ = tf.unique(both_ways[:, 0] * n + both_ways[:, 1])
    return tf.sort(keys)


def gcn_filter(a):
    """``Â = D̃^-½ (A + I) D̃^-½`` of a SciPy/NumPy 0/1 adjacency, as a ``tf.SparseTensor``."""
    return sparse_tensor(gcn.preprocess(a))


def gcn_filter_from_edges(edges, n):
    """``Â`` of an undirected edge list (int ``(k, 2)``, either or both directions) over
    ``n`` nodes, inside a TF graph, as a ``tf.SparseTensor``; no ``n × n`` dense array."""
    return gcn.preprocess_tf(undirected_adjacency(edges, n))


def pattern_from_edges(edges, n):
    """The 0/1 adjacency (no self loops) of an undirected edge list, as a ``tf.SparseTensor``."""
    return undirected_adjacency(edges, n)


def preprocess(encoder, a):
    """The encoder's adjacency input from a SciPy adjacency: ``Â`` (GCN) or the 0/1 pattern."""
    return gcn_filter(a) if encoder == "gcn" else ggnn.preprocess_sparse(a)


def preprocess_edges(encoder, edges, n):
    """The same from an edge list, inside a TF graph (for serving)."""
    return gcn_filter_from_edges(edges, n) if encoder == "gcn" else pattern_from_edges(edges, n)


def build_encoder(n_features, *, encoder="gcn", variational=False, hidden=HIDDEN, latent=LATENT,
                  steps=ggnn.STEPS, seed=0):
    """The encoder as a Keras model ``[x, adjacency] -> μ`` (GAE) or ``-> [μ, log σ]`` (VGAE).

    ``x`` is a ``tf.SparseTensor`` ``(n_nodes, n_features)`` (the first layer multiplies it
    sparsely, as the node models do), the adjacency a ``tf.SparseTensor`` from ``preprocess``;
    ``μ`` and ``log σ`` are ``(n_nodes, latent)``. Every initialiser is seeded.
    """
    x_in = keras.Input((n_features,), sparse=True, name="x")
    a_in = keras.Input((None,), sparse=True, name="a")

    def init(offset):
        return keras.initializers.GlorotUniform(seed=seed + offset)

    if encoder == "gcn":
        h = GCNConv(hidden, activation="relu", use_bias=False, kernel_initializer=init(0),
                    name="gcn_hidden")([x_in, a_in])

        def head(name, offset):
            return GCNConv(latent, use_bias=False, kernel_initializer=init(offset),
                           name=name)([h, a_in])
    else:
        h = ggnn.gated_layers(x_in, a_in, hidden, steps=steps, seed=seed)

        def head(name, offset):
            return keras.layers.Dense(latent, kernel_initializer=init(offset), name=name)(h)

    outputs = head("mu", 10)
    if variational:
        outputs = [outputs, head("log_sigma", 20)]
    return keras.Model([x_in, a_in], outputs, name=f"{encoder}_encoder")


def pair_logits(z, pairs):
    """``z_i · z_j`` for each row ``(i, j)`` of ``pairs`` (int ``(k, 2)``); ``z`` is ``(n, d)``."""
    return tf.reduce_sum(tf.gather(z, pairs[:, 0]) * tf.gather(z, pairs[:, 1]), axis=-1)


def kl_divergence(mu, log_sigma):
    """``(1/n) · mean_i ½ Σ_d (μ² + σ² − 1 − 2 log σ)``: the paper's KL term, scaled by 1/n."""
    n = tf.cast(tf.shape(mu)[0], mu.dtype)
    per_node = 0.5 * tf.reduce_sum(
        tf.square(mu) + tf.exp(2.0 * log_sigma) - 1.0 - 2.0 * log_sigma, axis=1
    )
    return tf.reduce_mean(per_node) / n


def sampled_non_edges(generator, edge_keys, n, count):
    """Up to ``count`` uniform pairs ``(i, j)``, ``i ≠ j``, not among the sorted ``edge_keys``
    (``i · n + j``, both directions): ``count`` draws less those that hit an edge or a loop."""
    pairs = generator.uniform([count, 2], 0, n, dtype=tf.int64)
    keys = pairs[:, 0] * n + pairs[:, 1]
    found = tf.gather(edge_keys, tf.minimum(tf.searchsorted(edge_keys, keys, out_type=tf.int64),
                                            tf.size(edge_keys, tf.int64) - 1))
    return tf.boolean_mask(pairs, (found != keys) & (pairs[:, 0] != pairs[:, 1]))


def all_pairs_loss(z, edges, *, count_loops=True):
    """tkipf/gae's loss over all ``n²`` pairs of ``A + I``: ``norm · mean(weighted BCE)``, with
    positives weighted ``w = (n² − E) / E`` and ``norm = n² / (2 (n² − E))``, ``E`` the ones of
    ``A + I`` (``count_loops``) or, as the paper's code counts them, of ``A`` alone
    (``count_loops=False``: the labels are still ``A + I``). The two scored alike
    (docs/graphs.md, "Loss").

    The weighted cross-entropy of a logit ``x`` is ``softplus(x)`` for a non-edge and
    ``w · softplus(−x) = softplus(x) + (w − 1) · softplus(−x) − x`` for a positive, so the sum is
    ``Σ_all softplus(x) + Σ_pos ((w − 1) · softplus(−x) − x)``: one dense ``n × n`` pass for the
    logits, none for the labels (the positives are gathered, ``O(E)``).
    """
    n = tf.shape(z, out_type=tf.int64)[0]
    loops = tf.range(n)
    keys = _keys(tf.concat([edges, tf.stack([loops, loops], axis=1)], axis=0), n)
    pairs = tf.cast(n * n, tf.float32)
    ones = tf.cast(tf.size(keys, out_type=tf.int64) - (0 if count_loops else n), tf.float32)
    positives = pair_logits(z, tf.stack([keys // n, keys % n], axis=1))
    weight = (pairs - ones) / ones
    total = (tf.reduce_sum(tf.math.softplus(tf.matmul(z, z, transpose_b=True)))
             + tf.reduce_sum((weight - 1.0) * tf.math.softplus(-positives) - positives))
    return total / (2.0 * (pairs - ones))


class GraphAutoEncoder(keras.Model):
    """GAE (``variational=False``) or VGAE around an encoder from ``build_encoder``.

    Call: ``[x, adjacency] -> z`` (``μ`` for the VGAE), ``(n_nodes, latent)``.
    ``fit`` data: one element ``((x, adjacency, train_edges),)``, ``train_edges`` int64
    ``(m, 2)`` (each undirected training edge once); see the module docstring for the loss.
    """

    def __init__(self, encoder, *, variational=False, reconstruction="all-pairs", count_loops=True,
                 seed=0, **kwargs):
        require(reconstruction in RECONSTRUCTIONS, f"unknown reconstruction {reconstruction!r}; "
                f"choose one of {', '.join(RECONSTRUCTIONS)}")
        super().__init__(**kwargs)
        self.encoder = encoder
        self.variational = variational
        self.reconstruction = reconstruction
        self.count_loops = count_loops  # all_pairs_loss's E: the ones of A + I, or of A alone
        self.generator = tf.random.Generator.from_seed(seed)

    def call(self, inputs, training=None):
        outputs = self.encoder(inputs, training=training)
        return outputs[0] if self.variational else outputs

    def train_step(self, data):
        (x, a, positives), = data
        n = tf.shape(x, out_type=tf.int64)[0]
        negatives = sampled_non_edges(
            self.generator, _keys(positives, n), n, tf.shape(positives)[0]
        )
        with tf.GradientTape() as tape:
            outputs = self.encoder([x, a], training=True)
            if self.variational:
                mu, log_sigma = outputs
                z = mu + tf.exp(log_sigma) * self.generator.normal(tf.shape(mu))
                kl = kl_divergence(mu, log_sigma)
            else:
                z, kl = outputs, tf.constant(0.0)
            if self.reconstruction == "sampled":
                reconstruction = (
                    tf.reduce_mean(tf.math.softplus(-pair_logits(z, positives)))  # −log σ(l)
                    + tf.reduce_mean(tf.math.softplus(pair_logits(z, negatives)))  # −log(1−σ)
                )
            else:
                reconstruction = all_pairs_loss(z, positives, count_loops=self.count_loops)
            loss = reconstruction + kl + tf.add_n([0.0, *self.encoder.losses])
        variables = self.encoder.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return {"loss": loss, "reconstruction": reconstruction, "kl": kl}
