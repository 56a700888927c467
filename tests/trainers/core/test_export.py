"""The export helper: integer versions, Keras and tf.Module exports, atomic on failure."""

from pathlib import Path

from keras_models.backend import keras, tf

import numpy as np
import pytest

from keras_models.utils.atomic import write_text
from trainers.core import export


def _tiny_model():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2, kernel_initializer="ones")(inputs))


def test_versions_count_up_and_reload(tmp_path):
    model = _tiny_model()
    first = export.export_saved_model(model, "tiny", signatures=None, root=tmp_path)
    second = export.export_saved_model(model, "tiny", signatures=None, root=tmp_path)
    assert (first.name, second.name) == ("1", "2")
    assert (second / "saved_model.pb").is_file()
    x = np.arange(6, dtype="float32").reshape(2, 3)
    reloaded = tf.saved_model.load(str(second))
    got = reloaded.signatures["serving_default"](tf.constant(x))
    np.testing.assert_allclose(next(iter(got.values())).numpy(), model(x).numpy(), rtol=1e-6)
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["1", "2"]


def test_module_export(tmp_path):
    module = tf.Module()
    module.scale = tf.Variable(3.0)
    module.serve = tf.function(
        lambda x: {"y": x * module.scale}, input_signature=[tf.TensorSpec([None], tf.float32)]
    )
    path = export.export_saved_model(
        module, "mod", signatures={"serving_default": module.serve}, root=tmp_path
    )
    loaded = tf.saved_model.load(str(path))
    out = loaded.signatures["serving_default"](tf.constant([1.0, 2.0]))["y"]
    np.testing.assert_allclose(out.numpy(), [3.0, 6.0])


def test_a_version_taken_meanwhile_by_another_process_is_skipped(tmp_path, monkeypatch):
    real_next_version = export.next_version

    def taken_after_the_look(model_dir):
        version = real_next_version(model_dir)
        if version == 1:  # another exporter renames its version 1 into place just now
            write_text(Path(model_dir) / "1" / "saved_model.pb", "theirs")
        return version

    monkeypatch.setattr(export, "next_version", taken_after_the_look)
    path = export.export_saved_model(_tiny_model(), "tiny", signatures=None, root=tmp_path)
    assert path.name == "2" and (path / "saved_model.pb").is_file()
    assert (tmp_path / "tiny" / "1" / "saved_model.pb").read_text() == "theirs"
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["1", "2"]


def test_failed_export_leaves_no_version(tmp_path, monkeypatch):
    real_save = tf.saved_model.save

    def save_then_crash(obj, path, signatures=None):
        real_save(obj, path, signatures=signatures)  # everything written...
        raise OSError("disk full")  # ...then the process fails before the rename

    monkeypatch.setattr(tf.saved_model, "save", save_then_crash)
    module = tf.Module()
    module.v = tf.Variable(1.0)
    with pytest.raises(OSError, match="disk full"):
        export.export_saved_model(module, "broken", signatures=None, root=tmp_path)
    assert list((tmp_path / "broken").iterdir()) == []
    assert export.next_version(tmp_path / "broken") == 1


def test_atomic_text_write_keeps_old_content_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "report.md"
    write_text(target, "old")

    def fail(*_):
        raise OSError("crash during rename")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(OSError):
        write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]
