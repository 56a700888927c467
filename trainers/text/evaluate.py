"""Held-out accuracy with the state carried along the text, as generation sees it.

Training and its validation score windows of ``seq_length`` characters, each starting from zero
states, so the first characters of every window are predicted with almost no context. Here the
held-out ids are cut into ``streams`` contiguous pieces read in parallel; each is fed through the
model in chunks of ``chunk`` characters with the states carried from chunk to chunk, and every
character after the first of its piece is scored: accuracy of ``argmax p(x_{t+1} | x_{≤t})`` and
bits per character ``−log₂ p(x_{t+1} | x_{≤t})``.
"""

import math

from keras_models.backend import tf

import numpy as np


def stream_metrics(model, ids, streams=16, chunk=512):
    """``(accuracy, bits_per_character)`` of ``model`` (a ``CharModel``) on ``ids`` read as text.

    Raises ``ValueError`` when ``ids`` is too short to give every stream two characters.
    """
    length = (len(ids) - 1) // streams
    if length < 1:
        raise ValueError(f"{len(ids)} held-out ids are too few for {streams} streams")
    ids = np.asarray(ids)  # the corpus's compact ids; each chunk is widened on its own
    inputs = ids[: streams * length].reshape(streams, length)
    targets = ids[1 : streams * length + 1].reshape(streams, length)
    run = tf.function(lambda x, states: model(x, states=states, return_state=True),
                      reduce_retracing=True)
    states, correct, nats = model.initial_states(streams), 0, 0.0
    for start in range(0, length, chunk):
        logits, states = run(tf.constant(inputs[:, start : start + chunk], tf.int64), states)
        target = targets[:, start : start + chunk]
        log_p = tf.nn.log_softmax(logits).numpy()
        correct += int((log_p.argmax(-1) == target).sum())
        nats -= float(np.take_along_axis(log_p, target[..., None], axis=-1).sum())
    count = targets.size
    return correct / count, nats / count / math.log(2)
