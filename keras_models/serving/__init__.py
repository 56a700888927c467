"""The serving signatures of seqgraph's exports, one module per exported model kind.

Every export is a ``tf.Module`` (a Keras model, or ``keras_models.text.generator.CharGenerator``)
saved by ``trainers.core.export.export_saved_model`` with explicit signatures: named inputs with
fixed dtypes and shapes, and a dict of named outputs. ``saved_model_cli show --all --dir DIR``
prints them.
"""
