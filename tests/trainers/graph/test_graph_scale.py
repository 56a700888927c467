"""Graphs too large to densify, new nodes after training, and the compiled full-batch epoch."""

from keras_models.backend import keras, tf

import numpy as np
import scipy.sparse as sp

from pipelines.graph.datasets import karate_graph, make_graph
from pipelines.graph.generated import sbm_graph
from trainers.graph.config import DEFAULTS
from trainers.graph.train import (
    BUILDERS,
    export_graph_model,
    fit_one,
    mask_weights,
    model_inputs,
)

# 200 000 nodes: a dense float32 n × n adjacency would be 160 GB; the child may map 6 GiB.
LARGE_NODES, ADDRESS_SPACE = 200_000, 6 * 2**30


def _edge_list(a):
    return np.stack(sp.triu(a).nonzero(), axis=1).astype(np.int64)


def test_a_graph_too_large_to_densify_trains_exports_and_serves(tmp_path, fresh_python):
    """Full-batch and sampled training, export and ``serve_sparse`` under an address-space
    limit 24 times smaller than one dense ``n × n`` matrix: nothing along the way densifies."""
    assert 4 * LARGE_NODES**2 > 24 * ADDRESS_SPACE
    fresh_python(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE}, {ADDRESS_SPACE}))
        import numpy as np, scipy.sparse as sp
        from keras_models.backend import tf
        from pipelines.graph.generated import sbm_graph
        from trainers.graph.train import export_graph_model, fit_one, model_inputs

        graph = sbm_graph({LARGE_NODES})
        model, full = fit_one(graph, "gcn", 0, r"{tmp_path}/full", learning_rate=0.01,
                              epochs=2, patience=10)
        _, sampled = fit_one(graph, "gcn", 0, r"{tmp_path}/sampled", learning_rate=0.01,
                             epochs=1, patience=10, batch_size=1024, fanouts=(5, 5))
        assert full.epochs == 2 and sampled.epochs == 1
        expected = model(model_inputs(graph, "gcn")).numpy()
        export = export_graph_model(model, "gcn", "large", root=r"{tmp_path}/saved_models")
        serve = tf.saved_model.load(str(export)).signatures["serve_sparse"]
        x = graph.x.tocoo()
        served = serve(x_indices=np.stack([x.row, x.col], 1).astype(np.int64),
                       x_values=x.data, n_nodes=tf.constant(x.shape[0], tf.int64),
                       edges=np.stack(sp.triu(graph.a).nonzero(), 1).astype(np.int64))
        np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    """, env={"TF_USE_LEGACY_KERAS": "1"}, timeout=600)


def test_the_served_model_predicts_nodes_added_after_training(tmp_path, fresh_python):
    """Train on the first 1000 nodes of a generated graph; serve the graph with 200 more nodes
    (their feature rows and edges) in a process that imports only TensorFlow."""
    full = sbm_graph(1200, seed=3)
    old = 1000
    labels = full.y.argmax(axis=1)
    masks = {"train": full.mask_tr[:old], "val": full.mask_va[:old], "test": full.mask_te[:old]}
    before = make_graph([str(i) for i in range(old)], _edge_list(full.a[:old, :old]),
                        x=full.x[:old], labels=labels[:old],
                        class_names=full.class_names, masks=masks)
    model, _ = fit_one(before, "gcn", 0, tmp_path / "run", **DEFAULTS["gcn"])
    export = export_graph_model(model, "gcn", "gcn-grown", root=tmp_path / "saved_models")
    expected = model(model_inputs(full, "gcn")).numpy()
    new_nodes = np.arange(old, 1200)
    assert full.a[new_nodes].nnz > 0 and full.a[new_nodes][:, :old].nnz > 0  # joined the old
    x = full.x.tocoo()
    np.savez(tmp_path / "grown.npz", x_indices=np.stack([x.row, x.col], 1).astype(np.int64),
             x_values=x.data, edges=_edge_list(full.a), expected=expected, labels=labels)
    fresh_python(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        case = np.load(r"{tmp_path}/grown.npz")
        serve = tf.saved_model.load(r"{export}").signatures["serve_sparse"]
        probabilities = serve(x_indices=tf.constant(case["x_indices"]),
                              x_values=tf.constant(case["x_values"]),
                              n_nodes=tf.constant(1200, tf.int64),
                              edges=tf.constant(case["edges"]))["probabilities"].numpy()
        np.testing.assert_allclose(probabilities, case["expected"], atol=1e-5)
        new = slice({old}, 1200)
        accuracy = np.mean(probabilities[new].argmax(axis=1) == case["labels"][new])
        assert accuracy > 0.8, accuracy  # 5 classes: the majority class is about 0.2
        assert not any(m.split(".")[0] in ("spektral", "keras_models", "trainers")
                       for m in sys.modules)
    """, cwd=tmp_path)


def test_the_compiled_full_batch_epoch_logs_what_keras_fit_with_validation_logs(tmp_path):
    """Reference: the same seeded GCN trained by ``model.fit(validation_data=...)`` with
    Keras' compiled loss and weighted metrics, 5 epochs."""
    graph = karate_graph()
    settings = {**DEFAULTS["gcn"], "epochs": 5, "patience": 100}
    model, _ = fit_one(graph, "gcn", 0, tmp_path / "ours", **settings)
    ours = np.genfromtxt(tmp_path / "ours" / "history.csv", delimiter=",", names=True)

    keras.utils.set_random_seed(0)
    reference = BUILDERS["gcn"](graph.n_node_features, graph.n_labels, seed=0)
    reference.compile(
        optimizer=keras.optimizers.Adam(settings["learning_rate"]),
        loss=keras.losses.CategoricalCrossentropy(reduction="sum"),
        weighted_metrics=["acc", keras.metrics.CategoricalCrossentropy(name="ce")],
    )
    inputs = tuple(model_inputs(graph, "gcn"))

    def one_batch(mask):
        return tf.data.Dataset.from_tensors((inputs, graph.y, mask_weights(mask)))

    # Optimizer slots and metrics made before fit, as fit_one makes its optimizer's: the
    # training step is then traced once, and the seeded dropouts' random streams (which
    # advance per trace) are the same in both.
    reference.optimizer.build(reference.trainable_variables)
    reference.evaluate(one_batch(graph.mask_va), verbose=0)

    history = reference.fit(one_batch(graph.mask_tr), validation_data=one_batch(graph.mask_va),
                            epochs=5, verbose=0).history
    for key in ("loss", "acc", "ce", "val_loss", "val_acc", "val_ce"):
        np.testing.assert_allclose(ours[key], history[key], rtol=1e-5, err_msg=key)
    for mine, theirs in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-7)
