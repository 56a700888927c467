"""Held-out metrics with carried state: chunked reading equals one pass over each stream."""

from keras_models.backend import tf

import numpy as np
import pytest

from keras_models.models.char_language_model import CharModel
from trainers.text.evaluate import stream_metrics


def test_chunks_with_carried_state_equal_one_pass_per_stream():
    keras_seed, vocab, streams = 3, 7, 4
    tf.keras.utils.set_random_seed(keras_seed)
    model = CharModel(vocab, embedding_dim=5, units=8, num_layers=2)
    ids = np.random.default_rng(0).integers(0, vocab, size=101)
    length = (len(ids) - 1) // streams
    inputs = ids[: streams * length].reshape(streams, length)
    targets = ids[1 : streams * length + 1].reshape(streams, length)
    log_p = tf.nn.log_softmax(model(tf.constant(inputs))).numpy()  # zero states, whole streams
    expected_accuracy = (log_p.argmax(-1) == targets).mean()
    expected_bits = -np.take_along_axis(log_p, targets[..., None], -1).mean() / np.log(2)

    accuracy, bits = stream_metrics(model, ids, streams=streams, chunk=7)

    assert accuracy == pytest.approx(expected_accuracy, abs=1e-9)
    assert bits == pytest.approx(expected_bits, rel=1e-5)
    assert 0 < accuracy < 1 and bits > 0


def test_too_few_ids_for_the_streams_is_an_error():
    model = CharModel(5, embedding_dim=3, units=4, num_layers=1)
    with pytest.raises(ValueError, match="3 held-out ids are too few for 4 streams"):
        stream_metrics(model, np.array([1, 2, 3]), streams=4)
