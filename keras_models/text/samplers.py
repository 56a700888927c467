"""Choosing the next id from logits ``[batch, vocab]``: greedy, temperature and top-k sampling.

Temperature uses the usual definition: sample from ``softmax(logits / T)``. T → 0 approaches
greedy (argmax), T = 1 is the model's own distribution and T > 1 flattens it. The assignment
writes the same thing with an inverse temperature τ that multiplies the logits
(``softmax(τ · logits)``), so **τ = 1/T** (its τ = 2 is our T = 0.5). T = 0 means greedy.

Sampling is stateless: the same ``seed`` (an int tensor of shape ``[2]``) gives the same ids.
"""

from keras_models.backend import tf


def greedy(logits):
    """``argmax`` over the vocabulary: ids ``[batch]`` (int32)."""
    return tf.argmax(logits, axis=-1, output_type=tf.int32)


def with_temperature(logits, temperature, seed):
    """One id per row from ``softmax(logits / T)``; ``temperature`` a scalar or ``[batch]``."""
    temperature = tf.reshape(tf.cast(temperature, logits.dtype), [-1, 1])
    draws = tf.random.stateless_categorical(logits / temperature, 1, seed, dtype=tf.int32)
    return draws[:, 0]


def top_k(logits, k, temperature, seed):
    """One id per row from the ``k`` most likely ids only, with temperature ``T``."""
    values, indices = tf.math.top_k(logits, k=k)
    choice = with_temperature(values, temperature, seed)
    return tf.gather(indices, choice, batch_dims=1)


def sample(logits, temperature, seed, k=0):
    """Greedy where ``temperature`` is 0, else temperature (``k > 0``: top-k) sampling.

    ``temperature`` is a scalar or one value per row (``[batch]``); ``k`` a Python int.
    """
    temperature = tf.broadcast_to(tf.cast(temperature, logits.dtype), tf.shape(logits)[:1])
    safe = tf.where(temperature > 0, temperature, tf.ones_like(temperature))
    drawn = top_k(logits, k, safe, seed) if k > 0 else with_temperature(logits, safe, seed)
    return tf.where(temperature > 0, drawn, greedy(logits))
