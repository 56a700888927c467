"""Export SavedModels to ``saved_models/<name>/<version>/``, the layout TensorFlow Serving reads.

Versions are integers; each export takes the next one. The SavedModel is written to a hidden
temporary folder beside the versions and renamed into place, so a crash never leaves a
half-written version that Serving would try to load.
"""

from pathlib import Path

from keras_models.backend import keras, tf

from trainers.atomic import atomic_path

SAVED_MODELS_ROOT = Path("saved_models")


def next_version(model_dir):
    """The next integer version under ``model_dir`` (1 when there is none)."""
    model_dir = Path(model_dir)
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(obj, name, *, signatures=None, root=SAVED_MODELS_ROOT):
    """Write ``obj`` (a Keras model or a ``tf.Module``) as the next version of ``name``.

    Returns the version folder. Keras models keep their Keras metadata, so both
    ``keras.models.load_model`` and ``tf.saved_model.load`` can read them.
    """
    model_dir = Path(root) / name
    final = model_dir / str(next_version(model_dir))
    with atomic_path(final) as tmp:
        if isinstance(obj, keras.Model):
            obj.save(str(tmp), save_format="tf", signatures=signatures)
        else:
            tf.saved_model.save(obj, str(tmp), signatures=signatures)
    return final
