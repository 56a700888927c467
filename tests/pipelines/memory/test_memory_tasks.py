"""The memory tasks' data: checked against the tasks' rules written out directly in Python."""

import functools

import numpy as np
import pytest

from pipelines.memory import tasks as mt

DIGIT_STRINGS = {format(d, "b") for d in range(9)}  # "0", "1", "10", ..., "1000"


def splits_into_digits(bits, count):
    """True if ``bits`` is the concatenation of exactly ``count`` binary forms of digits 0–8."""

    @functools.cache
    def ok(start, left):
        if start == len(bits):
            return left == 0
        return left > 0 and any(
            bits.startswith(d, start) and ok(start + len(d), left - 1) for d in DIGIT_STRINGS
        )

    return ok(0, count)


def strip_padding(row):
    """The non-pad tokens of a left-padded row, checking that padding is only on the left."""
    first = int(np.argmax(row != mt.PAD)) if (row != mt.PAD).any() else len(row)
    assert (row[:first] == mt.PAD).all() and (row[first:] != mt.PAD).all()
    return row[first:]


@pytest.mark.parametrize("length", range(1, 26))
def test_palindromes_follow_the_assignment_rule(length):
    tokens, labels = mt.palindrome_batch(np.random.default_rng(length), length, 64)
    assert tokens.shape == (64, 4 * length + 1) and labels.shape == (64,)
    assert tokens.dtype == labels.dtype == np.int32
    for row, label in zip(tokens, labels, strict=True):
        bits = "".join(str(t - mt.BIT0) for t in strip_padding(row)) + str(label)
        assert bits == bits[::-1], bits
        assert label == int(bits[0])  # the label is the first non-pad bit
        half = bits[: len(bits) // 2]
        digits = -(-length // 2)
        assert splits_into_digits(half, digits) or splits_into_digits(half[::-1], digits)


class FirstDrawAllEights:
    """A NumPy Generator stand-in whose first ``integers`` call returns only 8s."""

    def __init__(self):
        self.rng, self.first = np.random.default_rng(0), True

    def integers(self, low, high, size):
        if self.first:
            self.first = False
            return np.full(size, 8)
        return self.rng.integers(low, high, size=size)

    def random(self, size):
        return self.rng.random(size)


def test_odd_lengths_redraw_the_only_draw_that_cannot_fit():
    # L = 3: two digits; "1000" "1000" and its mirror are 16 bits > 4L + 2 = 14.
    tokens, labels = mt.palindrome_batch(FirstDrawAllEights(), 3, 50)
    assert tokens.shape == (50, 13)
    for row, label in zip(tokens, labels, strict=True):
        bits = "".join(str(t - mt.BIT0) for t in strip_padding(row)) + str(label)
        assert bits == bits[::-1] and len(bits) <= 14
        half = bits[: len(bits) // 2]
        assert splits_into_digits(half, 2) or splits_into_digits(half[::-1], 2)


def test_palindrome_labels_have_the_assignment_balance():
    # Unreversed, the first bit is the leading bit of a digit (1 unless the digit is 0: 8/9);
    # reversed (probability 1/2) it is the parity of a digit (4 of 0..8 are odd): 1/2·8/9 + 1/2·4/9.
    _, labels = mt.palindrome_batch(np.random.default_rng(1), 10, 40_000)
    assert labels.mean() == pytest.approx(2 / 3, abs=0.01)


def test_same_seed_same_batches_other_seed_other_batches():
    def batches(seed):
        dataset = mt.make_dataset("palindrome", 5, batch_size=8, seed=seed)
        return [(x.numpy(), y.numpy()) for x, y in dataset.take(3)]

    first, again, other = batches(3), batches(3), batches(4)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))
    assert not np.array_equal(first[0][0], first[1][0])  # the stream moves on between batches


def test_start_batch_continues_the_same_stream():
    stream = mt.make_dataset("palindrome", 5, batch_size=8, seed=3)
    later = mt.make_dataset("palindrome", 5, batch_size=8, seed=3, start_batch=2)
    for (x1, y1), (x2, y2) in zip(stream.skip(2).take(2), later.take(2), strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("length", [2, 5, 9, 18])
def test_baum_sweet_labels_match_the_rule(length):
    tokens, labels = mt.baum_sweet_batch(np.random.default_rng(length), length, 300)
    assert tokens.shape == (300, 4 * length)
    for row, label in zip(tokens, labels, strict=True):
        bits = "".join(str(t - mt.BIT0) for t in strip_padding(row))
        assert bits[0] == "1" and 10 <= int(bits, 2) <= 10**length
        no_odd_zero_block = all(len(block) % 2 == 0 for block in bits.split("1"))
        assert label == int(no_odd_zero_block), bits


def test_is_baum_sweet_on_the_start_of_the_sequence():
    # OEIS A086747 from n = 1: 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1
    expected = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1]
    assert mt.is_baum_sweet(np.arange(1, 17)).tolist() == expected


def test_random_combination_labels_are_the_missing_number():
    tokens, labels = mt.random_combination_batch(np.random.default_rng(0), 7, 200)
    assert tokens.shape == (200, 6)
    for row, label in zip(tokens, labels, strict=True):
        values = set((row - 1).tolist())
        assert len(values) == 6 and values | {int(label)} == set(range(7))
    assert len({tuple(r) for r in tokens}) > 150  # permutations really are random


def test_task_specs():
    assert mt.task_spec("palindrome", 10) == mt.TaskSpec("palindrome", 10, 41, 3, 2)
    assert mt.task_spec("palindrome", 20).input_length == 81
    assert mt.task_spec("baum_sweet", 6).input_length == 24
    assert mt.task_spec("random_combinations", 9) == mt.TaskSpec("random_combinations", 9, 8, 10, 9)


@pytest.mark.parametrize(
    ("task", "length", "message"),
    [
        ("palindrome", 0, "length 0 is out of range for palindrome; use 1..1000"),
        ("baum_sweet", 19, "length 19 is out of range for baum_sweet; use 2..18"),
        ("parity", 3, "unknown task 'parity'; choose one of palindrome, baum_sweet"),
    ],
)
def test_bad_task_or_length(task, length, message):
    with pytest.raises(ValueError, match=message):
        mt.check_task(task, length)
