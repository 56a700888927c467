"""Whole-sequence LSTM ops: the TensorFlow loop with hand-written gradients, the compiled loop."""
