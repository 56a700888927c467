"""Node classification with GCN, GAT or GGNN: ``model.fit`` on one graph, many seeds.

By default the whole graph is one batch, one compiled step per epoch with the validation in
the same step (``trainers.graph.full_batch``). With ``batch_size`` the model trains on sampled
neighbourhoods of ``batch_size`` training nodes at a time (``pipelines.graph.sampling``), under
any ``tf.distribute`` strategy; it is evaluated on the whole graph at the end either way. The
masks become sample weights ``mask / mask.sum()`` with a summed cross-entropy, so the loss is
the mean over the labelled nodes of the split (as in the papers; Keras' default mean over *all*
nodes would scale the L2 term up by ``n / n_train``).
Early stopping as in each paper's code: GCN (and GGNN) watches the validation loss (with the L2
term, as tkipf/gcn) and restores the best weights; GAT watches the validation cross-entropy
(without L2) and accuracy (``trainers.graph.early_stopping``).
"""

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from keras_models.backend import keras, tf

import numpy as np

from keras_models.models import gat, gcn, ggnn
from keras_models.serving.node_classifier import serving_signatures
from keras_models.utils.atomic import write_text
from keras_models.utils.errors import UsageError
from keras_models.utils.graph_algebra import receptive_field
from keras_models.utils.sparse_tensors import sparse_tensor
from pipelines.graph.sampling import sampled_batches
from trainers.core.callbacks import standard_callbacks
from trainers.core.distribute import whole_elements_per_replica
from trainers.core.export import SAVED_MODELS_ROOT, export_saved_model
from trainers.core.run_folders import new_run_dir, write_config
from trainers.core.seeding import seed_everything
from trainers.graph.config import DEFAULT_FANOUTS
from trainers.graph.early_stopping import LossOrAccuracyStopping
from trainers.graph.full_batch import FullBatchTraining

MODELS = {"gcn": gcn, "gat": gat, "ggnn": ggnn}
BUILDERS = {"gcn": gcn.build_gcn, "gat": gat.build_gat, "ggnn": ggnn.build_ggnn}

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
    """``[x, A']`` for the model: features and its preprocessed adjacency, both
    ``tf.SparseTensor`` straight from SciPy (nothing ``n × n`` dense)."""
    return [sparse_tensor(graph.x), sparse_tensor(MODELS[model_name].preprocess(graph.a))]


def training_subgraph(graph, model_name, inputs):
    """``(inputs, y, weights)`` of the training step: for a model with ``RECEPTIVE_HOPS`` the
    subgraph induced by the receptive field of the training nodes (the same loss and gradients,
    ``full_batch``), else (or when the field is the whole graph) the whole graph's ``inputs``."""
    weights = mask_weights(graph.mask_tr)
    hops = getattr(MODELS[model_name], "RECEPTIVE_HOPS", None)
    if hops is None:
        return inputs, graph.y, weights
    a = MODELS[model_name].preprocess(graph.a)
    nodes = receptive_field(a, np.flatnonzero(graph.mask_tr), hops)
    if len(nodes) == graph.n_nodes:
        return inputs, graph.y, weights
    return ([sparse_tensor(graph.x[nodes]), sparse_tensor(a[nodes][:, nodes])],
            graph.y[nodes], weights[nodes])


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


def _fit_full_batch(model, graph, model_name, inputs, learning_rate, epochs, callbacks):
    """One compiled step per epoch (``FullBatchTraining``): the training step on
    ``training_subgraph``, the validation on the whole graph."""
    trainer = FullBatchTraining(model)
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate))
    # Adam's slots made now, not inside the first step: a tf.function that creates variables
    # is traced twice, and tracing is most of the first epoch (seconds; Cora's epochs, ms).
    trainer.optimizer.build(model.trainable_variables)
    train_inputs, train_y, train_weights = training_subgraph(graph, model_name, inputs)
    data = tf.data.Dataset.from_tensors((
        tuple(train_inputs), train_y, train_weights,
        tuple(inputs), graph.y, mask_weights(graph.mask_va),
    )).repeat()
    return trainer.fit(data, steps_per_epoch=1, epochs=epochs, callbacks=callbacks, verbose=0)


def even_batches(n_nodes, batch_size, replicas):
    """``(size, count)``: batches of at most ``batch_size`` of ``n_nodes`` nodes whose count is a
    multiple of ``replicas``, so every replica takes part in every validation step."""
    fewest = -(-n_nodes // batch_size)
    if fewest % replicas == 0:
        return batch_size, fewest
    for count in range(-(-fewest // replicas) * replicas, n_nodes + 1, replicas):
        size = -(-n_nodes // count)
        if -(-n_nodes // size) == count:
            return size, count
    raise UsageError(f"{n_nodes} validation node(s) cannot be shared among {replicas} replicas; "
                     "train on fewer replicas")


def _fit_sampled(model, graph, model_name, seed, strategy, *, learning_rate, epochs, callbacks,
                 batch_size, fanouts):
    """Mini-batches of sampled neighbourhoods of the training nodes, validated likewise.

    Each replica trains on whole sampled subgraphs of ``batch_size`` seeds, one per step (the
    weights make the summed loss the mean over the step's seeds, ``sampled_batches``); an epoch
    is one pass over the training nodes, and the validation nodes are split into a multiple of
    the replica count of batches.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(reduction="sum"),
        weighted_metrics=["acc", keras.metrics.CategoricalCrossentropy(name="ce")],
    )
    replicas = strategy.num_replicas_in_sync

    def batches(mask, size, shuffle):
        # Repeated, so one iterator serves every epoch (a new one costs more than a few batches).
        return whole_elements_per_replica(strategy, lambda: sampled_batches(
            graph, np.flatnonzero(mask), MODELS[model_name].preprocess_tf,
            batch_size=size, fanouts=fanouts, seed=seed, shuffle=shuffle, replicas=replicas,
        ).repeat())

    train_batches = -(-int(graph.mask_tr.sum()) // batch_size)
    val_size, val_batches = even_batches(int(graph.mask_va.sum()), batch_size, replicas)
    return model.fit(batches(graph.mask_tr, batch_size, True),
                     steps_per_epoch=-(-train_batches // replicas),
                     validation_data=batches(graph.mask_va, val_size, False),
                     validation_steps=val_batches // replicas, epochs=epochs,
                     callbacks=callbacks, verbose=0)


def fit_one(graph, model_name, seed, run_dir, *, learning_rate, epochs, patience, batch_size=0,
            fanouts=DEFAULT_FANOUTS, strategy=None):
    """Train one seeded model on ``graph``; return ``(model, SeedResult)``.

    ``batch_size`` 0 trains on the whole graph at once, otherwise on sampled neighbourhoods
    (``fanouts`` neighbours per node and hop) of that many training nodes per step.
    """
    seed_everything(seed, deterministic=True)
    strategy = strategy or tf.distribute.get_strategy()
    inputs = model_inputs(graph, model_name)
    with strategy.scope():
        model = BUILDERS[model_name](graph.n_node_features, graph.n_labels, seed=seed)
        callbacks = [*standard_callbacks(run_dir, backup=False),
                     early_stopping(model_name, patience)]
        start = time.perf_counter()
        if batch_size:
            history = _fit_sampled(model, graph, model_name, seed, strategy,
                                   learning_rate=learning_rate, epochs=epochs,
                                   callbacks=callbacks, batch_size=batch_size, fanouts=fanouts)
        else:
            history = _fit_full_batch(model, graph, model_name, inputs, learning_rate, epochs,
                                      callbacks)
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


def export_graph_model(model, model_name, name, root=SAVED_MODELS_ROOT):
    """Export ``model`` to ``root/name/<version>/`` with its serving signatures."""
    signatures = serving_signatures(model, MODELS[model_name].preprocess_tf)
    return export_saved_model(model, name, signatures=signatures, root=root)


def train_and_report(graph, model_name, seeds, settings, *, name, runs_dir, saved_models,
                     attention_node=None, config=None, strategy=None):
    """Train, export the best seed, draw attention if asked; write ``summary.md``.

    Returns a dict with ``run_dir``, ``export``, ``summary`` (markdown), ``results`` and
    ``attention`` (PNG path or None).
    """
    run_dir = new_run_dir(f"graph-{name}", root=runs_dir)
    write_config(run_dir, config or {"model": model_name, "seeds": list(seeds), **settings})
    model, results = train_seeds(graph, model_name, seeds, run_dir, strategy=strategy,
                                 **settings)
    export = export_graph_model(model, model_name, name, root=saved_models)
    summary = summary_markdown(results)
    summary += f"\nExported the best-validation seed to `{export}`.\n"
    attention = None
    if attention_node is not None:
        from keras_models.models.gat import attention_coefficients
        from trainers.graph.plots import draw_attention

        alpha = attention_coefficients(model, graph.x, graph.a)
        attention = run_dir / f"attention-{graph.node_names[attention_node]}.png"
        draw_attention(graph, alpha, attention_node, attention)
        summary += f"\nAttention of node {graph.node_names[attention_node]}: `{attention}`.\n"
    write_text(run_dir / "summary.md", summary)
    write_text(run_dir / "results.json", json.dumps(results_as_dicts(results), indent=2) + "\n")
    return {"run_dir": run_dir, "export": export, "summary": summary, "results": results,
            "attention": attention}
