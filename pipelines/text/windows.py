"""Characters to ids to ``(input, target)`` windows for a character-level language model.

The vocabulary is the corpus's distinct characters (``keras_models/text/vocabulary.py``).
The last ``validation_fraction`` of the text is held out: training windows never
reach into it.

A window is ``seq_length + 1`` consecutive ids ``w``; its input is ``w[:-1]`` and its target
``w[1:]`` (the next character at every position), both ``[batch, seq_length]`` int64. The corpus
stays in its compact id type (one byte per character for up to 255 characters); only the windows
of a batch are widened to int64.
Training windows start at uniformly random offsets (a fresh draw per batch, seeded); validation
windows tile the held-out text with stride ``seq_length``, so every held-out character is a
target once.
"""

from dataclasses import dataclass

from keras_models.backend import tf

import numpy as np

from keras_models.text.vocabulary import encode, vocabulary_of
from keras_models.utils.errors import UsageError


@dataclass
class CharCorpus:
    """A corpus as ids: ``vocabulary`` (characters), training and held-out id arrays."""

    vocabulary: list
    train_ids: np.ndarray
    validation_ids: np.ndarray

    @property
    def vocab_size(self):
        """Number of ids, ``[UNK]`` included."""
        return len(self.vocabulary) + 1


def prepare_corpus(text, seq_length, validation_fraction=0.05):
    """Build the vocabulary, encode ``text`` and hold out its last ``validation_fraction``."""
    if seq_length < 1:
        raise UsageError(f"seq_length must be at least 1, got {seq_length}; pass a positive value")
    if not 0 <= validation_fraction < 1:
        raise UsageError(f"validation fraction {validation_fraction} is not in [0, 1)")
    vocabulary = vocabulary_of(text)
    ids = encode(text, vocabulary)
    n_train = len(ids) - int(len(ids) * validation_fraction)
    train, validation = ids[:n_train], ids[n_train:]
    needed = seq_length + 1
    if len(train) < needed or (validation_fraction > 0 and len(validation) < needed):
        raise UsageError(
            f"the corpus has {len(ids)} characters: too short for windows of seq_length + 1 = "
            f"{needed} in both the training ({len(train)}) and held-out ({len(validation)}) parts;"
            " give a longer text or a smaller --seq-length"
        )
    return CharCorpus(vocabulary, train, validation)


def split_input_target(windows):
    """``w[..., :-1], w[..., 1:]``: inputs and next-character targets."""
    return windows[..., :-1], windows[..., 1:]


def _gather_windows(ids, starts, seq_length):
    windows = tf.gather(ids, starts[:, None] + tf.range(seq_length + 1, dtype=tf.int64))
    return tf.cast(windows, tf.int64)


def training_dataset(ids, seq_length, batch_size, seed, start_batch=0):
    """Endless batches of windows starting at uniformly random offsets of ``ids``.

    Batch ``k`` depends only on ``seed`` and ``k``; the stream starts at batch ``start_batch``.
    """
    ids = tf.constant(ids)
    n_starts = tf.size(ids, out_type=tf.int64) - seq_length
    starts = (
        tf.data.Dataset.random(seed=seed)
        .skip(start_batch * batch_size)
        .map(lambda r: tf.math.floormod(r, n_starts))
    )
    return (
        starts.batch(batch_size, drop_remainder=True)
        .map(lambda s: split_input_target(_gather_windows(ids, s, seq_length)))
        .prefetch(tf.data.AUTOTUNE)
    )


def validation_dataset(ids, seq_length, batch_size):
    """Finite batches of windows tiling ``ids`` with stride ``seq_length`` (in order)."""
    ids_t = tf.constant(ids)
    starts = tf.data.Dataset.range(0, len(ids) - seq_length, seq_length)
    return (
        starts.batch(batch_size)
        .map(lambda s: split_input_target(_gather_windows(ids_t, s, seq_length)))
        .prefetch(tf.data.AUTOTUNE)
    )
