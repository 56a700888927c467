"""Sequence-memory tasks (palindromes and friends) as seeded tf.data streams."""
