"""Keras layers: LSTM-family cells, the whole-sequence FusedLSTM, the RNN factory, graph convs."""
