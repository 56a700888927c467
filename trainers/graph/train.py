"""Full-batch node classification with GCN or GAT: ``model.fit`` on one graph, many seeds.

The whole graph is one batch. The masks become sample weights ``mask / mask.sum()`` with a
summed cross-entropy, so the loss is the mean over the labelled nodes of the split (as in the
papers; Keras' default mean over *all* nodes would scale the L2 term up by ``n / n_train``).
Early stopping as in each paper's code: GCN watches the validation loss (with the L2 term, as
tkipf/gcn) and restores the best weights; GAT watches the validation cross-entropy (without L2)
and accuracy (``trainers.graph.early_stopping``).
"""

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from keras_models.backend import keras, tf

import numpy as np

from keras_models.models import gat, gcn
from trainers.core.callbacks import standard_callbacks
from trainers.core.export import SAVED_MODELS_ROOT, export_saved_model
from trainers.core.seeding import seed_everything
from trainers.graph.early_stopping import LossOrAccuracyStopping

MODELS = {"gcn": gcn, "gat": gat}
BUILDERS = {"gcn": gcn.build_gcn, "gat": gat.build_gat}

# The papers' settings: GCN lr 0.01, 200 epochs, patience 10; GAT lr 0.005, patience 100.
DEFAULTS = {
    "gcn": {"learning_rate": 0.01, "epochs": 200, "patience": 10},
    "gat": {"learning_rate": 0.005, "epochs": 1000, "patience": 100},
}


@dataclass
class SeedResult:
    """One training run: its seed, accuracies on the splits, epochs and time."""

    seed: int
    test_accuracy: float
    val_accuracy: float
    train_accuracy: float
    epochs: int
    seconds: float

    @property
    def seconds_per_epoch(self):
        return self.seconds / max(self.epochs, 1)


def mask_weights(mask):
    """Sample weights ``mask / mask.sum()``: a summed loss becomes the mean over the mask."""
    mask = np.asarray(mask, dtype=np.float32)
    return mask / max(mask.sum(), 1.0)


def model_inputs(graph, model_name):
    """``[x, A']`` tensors for the model: features and its preprocessed sparse adjacency."""
    a = MODELS[model_name].preprocess(graph.a)
    return [tf.constant(graph.x, tf.float32), tf.sparse.from_dense(tf.constant(a))]


def accuracy(probabilities, y, mask):
    """Fraction of the ``mask`` nodes whose most probable class is the labelled one."""
    hits = np.argmax(probabilities, axis=1) == np.argmax(y, axis=1)
    return float(hits[np.asarray(mask, bool)].mean())


def early_stopping(model_name, patience):
    """The early-stopping callback of the model's paper (see the module docstring)."""
    if model_name == "gat":
        return LossOrAccuracyStopping("val_ce", "val_acc", patience)
    return keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True
    )


def fit_one(graph, model_name, seed, run_dir, *, learning_rate, epochs, patience):
    """Train one seeded model on ``graph``; return ``(model, SeedResult)``."""
    seed_everything(seed, deterministic=True)
    model = BUILDERS[model_name](graph.n_node_features, graph.n_labels, seed=seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(reduction="sum"),
        weighted_metrics=["acc", keras.metrics.CategoricalCrossentropy(name="ce")],
    )
    inputs = model_inputs(graph, model_name)

    def one_batch(mask):
        return tf.data.Dataset.from_tensors((tuple(inputs), graph.y, mask_weights(mask)))

    stop = early_stopping(model_name, patience)
    start = time.perf_counter()
    history = model.fit(
        one_batch(graph.mask_tr), validation_data=one_batch(graph.mask_va), epochs=epochs,
        callbacks=[*standard_callbacks(run_dir, backup=False), stop], verbose=0,
    )
    seconds = time.perf_counter() - start
    probabilities = model(inputs, training=False).numpy()
    result = SeedResult(
        seed=seed,
        test_accuracy=accuracy(probabilities, graph.y, graph.mask_te),
        val_accuracy=accuracy(probabilities, graph.y, graph.mask_va),
        train_accuracy=accuracy(probabilities, graph.y, graph.mask_tr),
        epochs=len(history.history["loss"]),
        seconds=seconds,
    )
    return model, result


def train_seeds(graph, model_name, seeds, run_dir, *, on_result=print, **settings):
    """Train one model per seed (``run_dir/seed-<s>/``); return the best model and all results.

    The best model is the one with the highest validation accuracy (the first on ties).
    """
    best_model, best_val, results = None, -1.0, []
    for seed in seeds:
        model, result = fit_one(graph, model_name, seed, Path(run_dir) / f"seed-{seed}", **settings)
        results.append(result)
        on_result(
            f"seed {seed}: test accuracy {result.test_accuracy:.3f} (val "
            f"{result.val_accuracy:.3f}) after {result.epochs} epochs, {result.seconds:.1f} s"
        )
        if result.val_accuracy > best_val:
            best_model, best_val = model, result.val_accuracy
    return best_model, results


def summary_markdown(results):
    """Per-seed table plus mean ± std (population std) of the test accuracy."""
    lines = [
        "| seed | test acc | val acc | epochs | s/epoch |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.seed} | {r.test_accuracy:.3f} | {r.val_accuracy:.3f} | {r.epochs} "
            f"| {r.seconds_per_epoch:.4f} |"
        )
    acc = np.array([r.test_accuracy for r in results])
    lines.append(
        f"\nTest accuracy over {len(acc)} seed(s): **{100 * acc.mean():.1f} ± "
        f"{100 * acc.std():.1f} %**"
    )
    return "\n".join(lines) + "\n"


def results_as_dicts(results):
    """The results as plain dicts (for JSON)."""
    return [{**asdict(r), "seconds_per_epoch": r.seconds_per_epoch} for r in results]


def serving_functions(model, model_name, n_features):
    """``serving_default`` (x, dense adjacency) and ``serve_edges`` (x, edge list) functions.

    Both return ``{"probabilities": (n_nodes, n_classes)}``; the adjacency is the raw one
    (0/1, no self loops needed): the model's preprocessing runs inside the graph.
    """
    preprocess_tf = MODELS[model_name].preprocess_tf
    x_spec = tf.TensorSpec([None, n_features], tf.float32, name="x")

    @tf.function(input_signature=[x_spec, tf.TensorSpec([None, None], tf.float32, name="a")])
    def serve(x, a):
        a_prime = tf.sparse.from_dense(preprocess_tf(a))
        return {"probabilities": model([x, a_prime], training=False)}

    @tf.function(input_signature=[x_spec, tf.TensorSpec([None, 2], tf.int64, name="edges")])
    def serve_edges(x, edges):
        n = tf.shape(x, out_type=tf.int64)[0]
        both_ways = tf.concat([edges, tf.reverse(edges, axis=[1])], axis=0)
        a = tf.scatter_nd(both_ways, tf.ones(tf.shape(both_ways)[:1]), tf.stack([n, n]))
        return serve(x, tf.minimum(a, 1.0))

    return {
        "serving_default": serve.get_concrete_function(),
        "serve_edges": serve_edges.get_concrete_function(),
    }


def export_graph_model(model, model_name, name, root=SAVED_MODELS_ROOT):
    """Export ``model`` to ``root/name/<version>/`` with the two serving signatures."""
    signatures = serving_functions(model, model_name, model.inputs[0].shape[-1])
    return export_saved_model(model, name, signatures=signatures, root=root)
