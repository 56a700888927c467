"""Choosing the next id from logits ``[batch, vocab]``: greedy, temperature, top-k and top-p.

Temperature uses the usual definition: sample from ``softmax(logits / T)``. T → 0 approaches
greedy (argmax), T = 1 is the model's own distribution and T > 1 flattens it. The assignment
writes the same thing with an inverse temperature τ that multiplies the logits
(``softmax(τ · logits)``), so **τ = 1/T** (its τ = 2 is our T = 0.5). T = 0 means greedy.

Two filters narrow the ids a row may draw, in this order (as Hugging Face's ``generate``):

- top-k keeps the ``k`` most likely ids (``k = 0``, or ``k ≥ vocab``: every id);
- top-p (nucleus sampling, Holtzman et al., 2020) keeps the smallest set of most likely ids whose
  probability, after temperature and top-k, is at least ``p``: id ``j`` (in descending order of
  probability ``q``) is kept when ``Σ_{i<j} q_i < p``. ``p = 1`` keeps every id.

The draw is the Gumbel-max trick, ``argmax_j (logits_j / T + g_j)`` with ``g = −log(−log u)``
and ``u ~ U(0, 1)``, which is exactly a draw from ``softmax(logits / T)`` restricted to the kept
ids. The noise ``u [batch, vocab]`` is stateless: the same ``seed`` (int ``[2]``) gives the same
ids, and the filtered and unfiltered paths use the same noise per id, so ``k = 0, p = 1`` draws
what plain temperature sampling draws.
"""

from keras_models.backend import tf

# 1/T is capped so that T of a denormal size gives finite (not NaN) scaled logits.
MAX_INVERSE_TEMPERATURE = 1e30


def greedy(logits, axis=-1):
    """``argmax`` over the vocabulary: ids (int32)."""
    return tf.argmax(logits, axis=axis, output_type=tf.int32)


def _per_row(value, rows, dtype):
    return tf.broadcast_to(tf.cast(value, dtype), [rows])


def _scaled(logits, temperature):
    """``(logits − max) / T`` per row (rows with T = 0 are left at ``logits − max``)."""
    inverse = tf.where(temperature > 0,
                       tf.minimum(1 / tf.maximum(temperature, 1e-38), MAX_INVERSE_TEMPERATURE),
                       tf.ones_like(temperature))
    return (logits - tf.reduce_max(logits, axis=-1, keepdims=True)) * inverse[:, None]


def _gumbel(shape, seed):
    uniform = tf.random.stateless_uniform(shape, seed, minval=1e-20, maxval=1.0)
    return -tf.math.log(-tf.math.log(uniform))


def _kept_in_order(values, top_k, top_p):
    """Which of the descending ``values [batch, vocab]`` (scaled logits) top-k and top-p keep."""
    vocab = tf.shape(values)[-1]
    k = tf.where(top_k > 0, top_k, vocab)
    in_top_k = tf.range(vocab)[None, :] < k[:, None]
    probabilities = tf.nn.softmax(tf.where(in_top_k, values, -float("inf")))
    before = tf.cumsum(probabilities, axis=-1, exclusive=True)
    return in_top_k & ((before < top_p[:, None]) | (top_p[:, None] >= 1))


def kept_ids(logits, temperature, top_k=0, top_p=1.0):
    """bool ``[batch, vocab]``: the ids each row may draw under top-k and top-p (any T > 0)."""
    rows, vocab = tf.shape(logits)[0], tf.shape(logits)[1]
    temperature = _per_row(temperature, rows, logits.dtype)
    values, order = tf.math.top_k(_scaled(logits, temperature), k=vocab)
    kept = _kept_in_order(values, _per_row(top_k, rows, tf.int32),
                          _per_row(top_p, rows, logits.dtype))
    return tf.gather(kept, tf.argsort(order, axis=-1), batch_dims=1)


def sample(logits, temperature, seed, top_k=None, top_p=None):
    """One id per row: greedy where ``temperature`` is 0, else a draw with temperature and, if
    ``top_k`` or ``top_p`` is given (not None), their filters.

    ``temperature``, ``top_k`` and ``top_p`` are scalars or one value per row.
    """
    rows, vocab = tf.shape(logits)[0], tf.shape(logits)[1]
    temperature = _per_row(temperature, rows, logits.dtype)
    scaled = _scaled(logits, temperature)
    noise = _gumbel([rows, vocab], seed)
    if top_k is None and top_p is None:
        drawn = greedy(scaled + noise)
    else:
        values, order = tf.math.top_k(scaled, k=vocab)
        kept = _kept_in_order(values, _per_row(0 if top_k is None else top_k, rows, tf.int32),
                              _per_row(1.0 if top_p is None else top_p, rows, logits.dtype))
        noisy = values + tf.gather(noise, order, batch_dims=1)
        choice = greedy(tf.where(kept, noisy, -float("inf")))
        drawn = tf.gather(order, choice, batch_dims=1)
    return tf.where(temperature > 0, drawn, greedy(logits))
