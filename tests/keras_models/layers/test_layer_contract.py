"""Every custom layer of keras_models.layers through the shared harness (``layer_harness``)."""

from keras_models.backend import keras, tf

import numpy as np
import pytest
from layer_harness import check_layer_contract, config_round_trip
from spektral.layers import GatedGraphConv

from keras_models.layers.fused_lstm import FusedLSTM
from keras_models.layers.graph_conv import GATConv, GCNConv
from keras_models.layers.lstm_cell import LSTMCell
from keras_models.layers.peephole_lstm_cell import PeepholeLSTMCell
from keras_models.layers.sparse_dropout import SparseInputDropout
from keras_models.utils.graph_algebra import normalized_adjacency
from pipelines.graph.datasets import example_graph

STEPS, WIDTH, UNITS, BATCH = 5, 3, 4, 2
SEQUENCES = np.random.default_rng(0).normal(size=(BATCH, STEPS, WIDTH)).astype("float32")
GRAPH = example_graph()
FEATURES = np.random.default_rng(1).normal(size=(GRAPH.n_nodes, WIDTH)).astype("float32")
A_HAT = tf.sparse.from_dense(normalized_adjacency(GRAPH.a).toarray().astype("float32"))
A_PATTERN = tf.sparse.from_dense(GRAPH.a.toarray())


def _recurrent_model(layer):
    """``x [batch, STEPS, WIDTH]`` → the layer (a cell inside ``keras.layers.RNN``) → Dense(2)."""
    inputs = keras.Input((STEPS, WIDTH))
    rnn = layer if isinstance(layer, keras.layers.RNN) else keras.layers.RNN(layer)
    return keras.Model(inputs, keras.layers.Dense(2)(rnn(inputs)))


def _graph_model(layer):
    """``[x, Â]`` → the graph layer → Dense(2)."""
    x, a = keras.Input((WIDTH,)), keras.Input((None,), sparse=True)
    return keras.Model([x, a], keras.layers.Dense(2)(layer([x, a])))


def _dropout_model(layer):
    """``x`` → SparseInputDropout → GCNConv(Â) → Dense(2): the dropout's sparse output in use."""
    x, a = keras.Input((WIDTH,)), keras.Input((None,), sparse=True)
    h = GCNConv(UNITS)([layer(x), a])
    return keras.Model([x, a], keras.layers.Dense(2)(h))


CASES = {
    "LSTMCell": (lambda: LSTMCell(UNITS), _recurrent_model, [SEQUENCES]),
    "PeepholeLSTMCell matrix": (lambda: PeepholeLSTMCell(UNITS), _recurrent_model, [SEQUENCES]),
    "PeepholeLSTMCell classic": (lambda: PeepholeLSTMCell(UNITS, variant="classic"),
                                 _recurrent_model, [SEQUENCES]),
    "FusedLSTM": (lambda: FusedLSTM(LSTMCell(UNITS)), _recurrent_model, [SEQUENCES]),
    "FusedLSTM peephole": (lambda: FusedLSTM(PeepholeLSTMCell(UNITS, variant="classic")),
                           _recurrent_model, [SEQUENCES]),
    "GCNConv": (lambda: GCNConv(UNITS, activation="relu"), _graph_model, [FEATURES, A_HAT]),
    "GATConv": (lambda: GATConv(UNITS, attn_heads=2, features_dropout_rate=0.5),
                _graph_model, [FEATURES, A_HAT]),
    # spektral's layer as it is: it needs no fix to export (keras_models/models/ggnn.py).
    "GatedGraphConv": (lambda: GatedGraphConv(UNITS, 2), _graph_model, [FEATURES, A_PATTERN]),
    "SparseInputDropout": (lambda: SparseInputDropout(0.5, seed=3), _dropout_model,
                           [FEATURES, A_HAT]),
}


@pytest.mark.parametrize("make_layer, make_model, inputs", CASES.values(), ids=CASES.keys())
def test_layer_contract(make_layer, make_model, inputs, tmp_path):
    check_layer_contract(make_layer, make_model, inputs, tmp_path)


def test_the_assignment_variant_name_is_an_alias_of_matrix():
    cell = PeepholeLSTMCell(UNITS, variant="assignment")
    assert cell.variant == "matrix" and cell.get_config()["variant"] == "matrix"
    config_round_trip(cell)


class _ForgetsItsVariant(PeepholeLSTMCell):
    """A broken layer for the harness's own test: its config drops ``variant``."""

    def get_config(self):
        return {k: v for k, v in super().get_config().items() if k != "variant"}


def test_the_harness_catches_a_config_that_loses_a_setting(tmp_path):
    with pytest.raises(ValueError, match="weight"):  # the twin has the default variant's weights
        check_layer_contract(lambda: _ForgetsItsVariant(UNITS, variant="classic"), _recurrent_model,
                       [SEQUENCES], tmp_path)
