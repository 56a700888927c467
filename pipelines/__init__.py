"""tf.data pipelines and datasets for seqgraph's tasks, one subpackage per capability.

Modules that use TensorFlow import it as ``from keras_models.backend import keras, tf``. Nothing
here imports ``trainers``.
"""
