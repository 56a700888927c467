"""Sequence-memory tasks as seeded, infinite, deterministic tf.data pipelines.

Each task maps an integer length ``L`` to batches ``(tokens, labels)``: ``tokens`` int32
``(batch, input_length)``, ``labels`` int32 ``(batch,)``. Token 0 is padding (left padding,
so ``Embedding(mask_zero=True)`` can mask it); bits are tokens 1 ("0") and 2 ("1").

- ``palindrome``: draw ceil(L/2) digits 0–8, write each in binary without leading zeros
  (0 → "0"), concatenate, reverse the string with probability ½, append its mirror and left-pad
  to 4L + 2 positions. Input: the first 4L + 1 positions; label: the last bit, which equals the
  first non-pad bit. For odd L the only draw that cannot fit is "every digit is 8" (4 bits each,
  8·ceil(L/2) = 4L + 4 bits); such rows are redrawn (probability 9^-ceil(L/2)), so the input is
  always exactly 4L + 1 tokens.
- ``baum_sweet``: a uniform integer in [10, 10^L] written in binary, left-padded to 4L tokens;
  label 1 iff no block of consecutive zeros has odd length. As in the assignment, classes are
  rebalanced by rejection: every positive is kept and a negative is kept with probability
  ``BAUM_SWEET_NEGATIVE_KEEP``. Positives get rarer as L grows, so the share of label 1 is
  about 0.95 for L = 2, 0.82 for L = 4, 0.50 for L = 6, 0.19 for L = 8, 0.06 for L = 10
  and 0.003 for L = 14 (measured on 20 000 draws).
  L is limited to 2..18 (10^18 fits int64; L = 1 allows only the integer 10).
- ``random_combinations``: a random permutation of 0..L−1 (tokens value + 1); input the first
  L − 1, label the missing last number (L classes).

Batches are generated whole in NumPy (``numpy.random.Generator`` seeded with the seed), so the
same seed gives the same batches and generation runs at hundreds of thousands of examples per
second (see ``bench/memory.py``), far above what training consumes.
"""

import dataclasses

from keras_models.backend import tf

import numpy as np

TASKS = ("palindrome", "baum_sweet", "random_combinations")
PAD, BIT0, BIT1 = 0, 1, 2
BAUM_SWEET_NEGATIVE_KEEP = 0.016724
LENGTH_LIMITS = {"palindrome": (1, 1000), "baum_sweet": (2, 18), "random_combinations": (2, 1000)}


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Shapes of one task at one length: token ids are in ``[0, vocab_size)``."""

    task: str
    length: int
    input_length: int
    vocab_size: int
    num_classes: int


def check_task(task, length):
    """Raise ValueError (problem; fix) unless ``task`` is known and ``length`` in its range."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    low, high = LENGTH_LIMITS[task]
    if not (isinstance(length, (int, np.integer)) and low <= length <= high):
        raise ValueError(f"length {length} is out of range for {task}; use {low}..{high}")


def task_spec(task, length):
    """The :class:`TaskSpec` of ``task`` at ``length``."""
    check_task(task, length)
    if task == "palindrome":
        return TaskSpec(task, length, 4 * length + 1, 3, 2)
    if task == "baum_sweet":
        return TaskSpec(task, length, 4 * length, 3, 2)
    return TaskSpec(task, length, length - 1, length + 1, length)


# Bits of the digits 0..8 written without leading zeros, right-aligned in 4 slots.
_DIGIT_STRINGS = [format(d, "b").rjust(4) for d in range(9)]
_DIGIT_BITS = np.array([[int(b == "1") for b in s] for s in _DIGIT_STRINGS])
_DIGIT_VALID = np.array([[b != " " for b in s] for s in _DIGIT_STRINGS])


def palindrome_batch(rng, length, batch_size):
    """``batch_size`` binary palindromes of parameter ``length``: tokens (B, 4L+1), labels (B,)."""
    total = 4 * length + 2
    n_digits = -(-length // 2)
    digits = rng.integers(0, 9, size=(batch_size, n_digits))
    while 8 * n_digits > total and (overflow := (digits == 8).all(axis=1)).any():
        digits[overflow] = rng.integers(0, 9, size=(int(overflow.sum()), n_digits))
    bits = _DIGIT_BITS[digits].reshape(batch_size, -1)
    valid = _DIGIT_VALID[digits].reshape(batch_size, -1)
    reverse = rng.random(batch_size) < 0.5
    bits[reverse], valid[reverse] = bits[reverse, ::-1], valid[reverse, ::-1]
    # Left-align the valid bits of each row: half[:, :h] is the string, h its length.
    order = np.argsort(~valid, axis=1, kind="stable")
    half = np.take_along_axis(bits, order, axis=1)
    h = valid.sum(axis=1, keepdims=True)
    # Position j of [pad (T-2h)][half][mirror]: half[j-m] in the first half, half[T-1-j] after.
    j = np.arange(total)[None, :]
    m = total - 2 * h
    index = np.where(j < m + h, j - m, total - 1 - j).clip(0, half.shape[1] - 1)
    tokens = np.where(j < m, PAD, np.take_along_axis(half, index, axis=1) + BIT0)
    return tokens[:, :-1].astype(np.int32), (tokens[:, -1] - BIT0).astype(np.int32)


def _baum_sweet_byte_table():
    """Transitions of the Baum–Sweet automaton over one byte, most significant bit first.

    States: 0 before the leading 1, 1 in an even run of zeros (or after a 1), 2 in an odd run,
    3 failed (an odd run was closed by a 1). A number is accepted iff it ends in state 1.
    """
    step = {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 1, (2, 0): 1, (2, 1): 3, (3, 0): 3, (3, 1): 3}
    table = np.zeros((4, 256), np.int8)
    for state in range(4):
        for byte in range(256):
            current = state
            for shift in range(7, -1, -1):
                current = step[current, (byte >> shift) & 1]
            table[state, byte] = current
    return table


_BAUM_SWEET_TABLE = _baum_sweet_byte_table()


def is_baum_sweet(numbers):
    """1 where the binary form of each positive integer has no odd-length block of zeros."""
    octets = np.asarray(numbers, dtype=">u8").reshape(-1).view(np.uint8).reshape(-1, 8)
    state = np.zeros(len(octets), np.int8)
    for column in octets.T:  # most significant byte first
        state = _BAUM_SWEET_TABLE[state, column]
    return (state == 1).astype(np.int32).reshape(np.shape(numbers))


def _binary_tokens(numbers, width):
    """Binary digits of positive ``numbers`` (< 2^width) as bit tokens, left-padded to ``width``."""
    bits = np.unpackbits(numbers.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)  # (B, 64)
    tokens = np.where(np.cumsum(bits, axis=1) > 0, bits + BIT0, PAD)  # pad before the leading 1
    if width >= 64:
        return np.pad(tokens, ((0, 0), (width - 64, 0))).astype(np.int32)
    return tokens[:, 64 - width:].astype(np.int32)


def baum_sweet_batch(rng, length, batch_size, negative_keep=BAUM_SWEET_NEGATIVE_KEEP):
    """``batch_size`` Baum–Sweet examples: tokens (B, 4L) of integers in [10, 10^L], labels."""
    numbers, labels, draws, found = [], [], 0, 0
    while found < batch_size:  # draw enough for the acceptance rate seen so far, plus 20%
        size = int(1.2 * (batch_size - found) * (draws + 1) / (found + 1)) + 16
        candidates = rng.integers(10, 10**length, size=size, endpoint=True, dtype=np.int64)
        positive = is_baum_sweet(candidates)
        keep = (positive == 1) | (rng.random(size) < negative_keep)
        numbers.append(candidates[keep])
        labels.append(positive[keep])
        draws, found = draws + size, found + int(keep.sum())
    numbers = np.concatenate(numbers)[:batch_size]
    return _binary_tokens(numbers, 4 * length), np.concatenate(labels)[:batch_size]


def random_combination_batch(rng, length, batch_size):
    """``batch_size`` permutations of 0..L-1: tokens (B, L-1) are values + 1, label the last."""
    perms = rng.permuted(np.tile(np.arange(length), (batch_size, 1)), axis=1)
    return (perms[:, :-1] + 1).astype(np.int32), perms[:, -1].astype(np.int32)


_BATCH_FNS = {
    "palindrome": palindrome_batch,
    "baum_sweet": baum_sweet_batch,
    "random_combinations": random_combination_batch,
}


def sample_batch(task, length, batch_size, rng):
    """One batch ``(tokens, labels)`` of ``task`` as NumPy arrays, drawn from ``rng``."""
    check_task(task, length)
    return _BATCH_FNS[task](rng, length, batch_size)


def heldout_set(task, length, size, seed):
    """A fixed set of ``size`` examples drawn with ``seed``: ``(tokens, labels)`` NumPy arrays."""
    return sample_batch(task, length, size, np.random.default_rng(seed))


def make_dataset(task, length, *, batch_size, seed, start_batch=0, prefetch=2):
    """An infinite, batched, prefetched ``tf.data.Dataset`` of ``(tokens, labels)``.

    Every iteration restarts the same stream: batch ``k`` depends only on ``seed`` and ``k``.
    ``start_batch`` skips the first batches of the stream (drawn and discarded, so a resumed run
    continues it exactly).
    """
    spec = task_spec(task, length)

    def batches():
        rng = np.random.default_rng(seed)
        for _ in range(start_batch):
            sample_batch(task, length, batch_size, rng)
        while True:
            yield sample_batch(task, length, batch_size, rng)

    signature = (
        tf.TensorSpec((batch_size, spec.input_length), tf.int32),
        tf.TensorSpec((batch_size,), tf.int32),
    )
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(prefetch)
