"""Link prediction with graph auto-encoders (GAE, VGAE): split, ``model.fit``, AUC/AP, export.

Per seed: the seeded 85/5/10 % edge split (``pipelines.graph.edge_split``, so every seed also
draws its own split, as in the paper's repeated runs), a seeded model, full-batch training,
validation ROC AUC and average precision after every epoch (``val_auc``, ``val_ap`` in
``history.csv`` and TensorBoard), model selection on the validation pairs (``patience``: keep
the weights of the epoch with the best ``val_auc``, stop after ``patience`` epochs without a
better one; ``None``: the last epoch's weights, as the paper's code), and the test AUC and AP
of the kept weights (TensorBoard ``test/``). The metrics rank the logits
``z_i · z_j``: the same order as ``σ(z_i · z_j)``, without float32's ties at 1.0.

The run folder gets ``summary.md`` (a table per seed, mean ± std of test AUC and AP),
``results.json``, ``roc.png`` (the test ROC curve of every seed) and ``config.json``; the seed
with the best validation AUC is exported (``keras_models.serving.link_predictor``).
"""

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from keras_models.backend import keras, tf

import numpy as np

from keras_models.models import graph_autoencoder
from keras_models.serving.link_predictor import LinkPredictor
from keras_models.utils.atomic import write_text
from keras_models.utils.sparse_tensors import sparse_tensor
from pipelines.graph.edge_split import split_edges
from trainers.core.callbacks import StepProgress, standard_callbacks
from trainers.core.export import SAVED_MODELS_ROOT, export_saved_model
from trainers.core.run_folders import new_run_dir, write_config
from trainers.core.seeding import seed_everything
from trainers.graph.link_metrics import average_precision, roc_auc, roc_curve

VARIATIONAL = {"gae": False, "vgae": True}
SELECTED_BY = "val_auc"  # the validation score that model selection maximises
ADAM_EPSILON = 1e-8  # Kingma & Ba's ε (Algorithm 1), as PyTorch's Adam; Keras' default is 1e-7


def link_optimizer(learning_rate, *, paper_code=False):
    """Adam as in Kingma & Ba's Algorithm 1 (PyTorch's ``Adam``): ``m̂ = m_t / (1 − β₁ᵗ)``,
    ``v̂ = v_t / (1 − β₂ᵗ)``, ``θ ← θ − lr · m̂ / (√v̂ + ε)`` with ``ε = 1e-8``. With
    ``paper_code``, TensorFlow 1's ``AdamOptimizer`` of tkipf/gae instead:
    ``θ ← θ − lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ) · m_t / (√v_t + ε̂)``, ``ε̂ = 1e-8``.

    Keras' default adds ``ε̂ = 1e-7`` to ``√v_t`` instead, which is ``ε = 1e-7 / √(1 − β₂ᵗ)``
    on ``√v̂``: 3·10⁻⁶ at the first step, 2·10⁻⁷ at the 200th. The GAE's gradients are of that
    size (row-normalised CiteSeer features: median 2·10⁻⁸ for the first layer's kernel at the
    start, 99.8 % below 10⁻⁶), so that ε damped most steps of the first layer and cost the GAE
    about a point of AUC and AP beside PyTorch Geometric on the same splits (docs/graphs.md).
    """
    return keras.optimizers.Adam(learning_rate, epsilon=ADAM_EPSILON,
                                 adaptive_epsilon=not paper_code)


@dataclass
class LinkResult:
    """One training run: its seed, test and validation AUC/AP (of the kept epoch), epochs and
    time."""

    seed: int
    test_auc: float
    test_ap: float
    val_auc: float
    val_ap: float
    epochs: int  # trained
    kept_epoch: int  # whose weights were scored on the test pairs (1-based)
    seconds: float

    @property
    def seconds_per_epoch(self):
        return self.seconds / max(self.epochs, 1)


def pair_scores(model, inputs, pairs):
    """The logits ``z_i · z_j`` of the node ``pairs`` (NumPy ``(k, 2)``) under ``model``."""
    z = model(inputs, training=False)
    return graph_autoencoder.pair_logits(z, tf.constant(pairs)).numpy()


def ranking(model, inputs, split, part):
    """``(AUC, AP, labels, scores)`` of ``part`` ("val" or "test") of the edge split."""
    pairs, labels = split.pairs(part)
    scores = pair_scores(model, inputs, pairs)
    return roc_auc(labels, scores), average_precision(labels, scores), labels, scores


class ValidationRanking(keras.callbacks.Callback):
    """Adds ``val_auc`` and ``val_ap`` to each epoch's logs (put it before the loggers)."""

    def __init__(self, inputs, split):
        super().__init__()
        self.inputs, self.split = inputs, split

    def on_epoch_end(self, epoch, logs=None):
        auc, ap, _, _ = ranking(self.model, self.inputs, self.split, "val")
        if logs is not None:
            logs.update(val_auc=auc, val_ap=ap)


def best_validation_weights(patience):
    """Keras' ``EarlyStopping`` as model selection: keep the weights of the epoch with the
    highest ``val_auc`` (the first of equals), stop after ``patience`` epochs without a higher
    one, and restore the kept weights at the end of ``fit`` (put it after
    ``ValidationRanking``)."""
    return keras.callbacks.EarlyStopping(monitor=SELECTED_BY, mode="max", patience=patience,
                                         restore_best_weights=True)


def fit_links(graph, model_name, seed, run_dir, *, encoder="gcn", learning_rate, epochs,
              reconstruction, patience=None, paper_code=False):
    """Train one seeded auto-encoder on ``graph``'s edge split ``seed``.

    With ``patience``, ``best_validation_weights`` keeps the best-``val_auc`` epoch's weights;
    with ``None``, the last epoch's.

    ``paper_code`` takes tkipf/gae's arithmetic where seqgraph's differs: the loss's ``E``
    counts the ones of ``A`` alone (``graph_autoencoder.all_pairs_loss``) and Adam adds its ε to
    ``√v`` (``link_optimizer``). With the 0/1 features (``bench/links.py --paper-code``) it
    reproduces the paper's figures; the defaults differ where they scored better over both
    graphs (docs/graphs.md, "Against the paper's code").

    Returns ``(model, result, test ROC curve (fpr, tpr))``.
    """
    split = split_edges(graph.a, seed)
    seed_everything(seed, deterministic=True)
    variational = VARIATIONAL[model_name]
    model = graph_autoencoder.GraphAutoEncoder(
        graph_autoencoder.build_encoder(graph.x.shape[1], encoder=encoder,
                                        variational=variational, seed=seed),
        variational=variational, reconstruction=reconstruction, count_loops=not paper_code,
        seed=seed,
    )
    model.compile(optimizer=link_optimizer(learning_rate, paper_code=paper_code))
    inputs = [sparse_tensor(graph.x),
              graph_autoencoder.preprocess(encoder, split.train_adjacency())]
    data = tf.data.Dataset.from_tensors(((*inputs, tf.constant(split.train_edges)),))
    selection = [] if patience is None else [best_validation_weights(patience)]
    callbacks = [ValidationRanking(inputs, split), *selection,
                 *standard_callbacks(run_dir, backup=False),
                 StepProgress(epochs, metrics=("loss", "val_auc"))]
    start = time.perf_counter()
    history = model.fit(data, epochs=epochs, callbacks=callbacks, verbose=0).history
    seconds = time.perf_counter() - start
    kept = selection[0].best_epoch if selection else len(history["loss"]) - 1
    test_auc, test_ap, labels, scores = ranking(model, inputs, split, "test")
    result = LinkResult(seed=seed, test_auc=test_auc, test_ap=test_ap,
                        val_auc=history["val_auc"][kept], val_ap=history["val_ap"][kept],
                        epochs=len(history["loss"]), kept_epoch=kept + 1, seconds=seconds)
    with tf.summary.create_file_writer(str(Path(run_dir) / "tensorboard" / "test")).as_default():
        tf.summary.scalar("test_auc", test_auc, step=result.epochs)
        tf.summary.scalar("test_ap", test_ap, step=result.epochs)
    return model, result, roc_curve(labels, scores)


def train_link_seeds(graph, model_name, seeds, run_dir, *, on_result=print, **settings):
    """One model per seed (``run_dir/seed-<s>/``); returns the best-validation-AUC model, the
    results and each seed's test ROC curve."""
    best_model, best_val, results, curves = None, -1.0, [], []
    for seed in seeds:
        model, result, curve = fit_links(graph, model_name, seed, Path(run_dir) / f"seed-{seed}",
                                         **settings)
        results.append(result)
        curves.append(curve)
        on_result(f"seed {seed}: test AUC {result.test_auc:.4f}, AP {result.test_ap:.4f} (val "
                  f"AUC {result.val_auc:.4f}) at epoch {result.kept_epoch} of {result.epochs}, "
                  f"{result.seconds:.1f} s")
        if result.val_auc > best_val:
            best_model, best_val = model, result.val_auc
    return best_model, results, curves


def summary_markdown(results):
    """Per-seed table (the validation scores are the kept epoch's) plus mean ± std (population
    std) of the test AUC and AP, in %."""
    lines = ["| seed | test AUC | test AP | val AUC | val AP | kept epoch | epochs | s/epoch |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.seed} | {100 * r.test_auc:.2f} | {100 * r.test_ap:.2f} | "
                     f"{100 * r.val_auc:.2f} | {100 * r.val_ap:.2f} | {r.kept_epoch} | "
                     f"{r.epochs} | {r.seconds_per_epoch:.4f} |")
    auc = 100 * np.array([r.test_auc for r in results])
    ap = 100 * np.array([r.test_ap for r in results])
    lines.append(f"\nOver {len(results)} seed(s): test AUC **{auc.mean():.1f} ± {auc.std():.1f}**"
                 f", test AP **{ap.mean():.1f} ± {ap.std():.1f}** (%)")
    return "\n".join(lines) + "\n"


def export_link_model(model, encoder, name, root=SAVED_MODELS_ROOT):
    """Export ``model``'s encoder with the ``score_pairs`` and ``recommend`` signatures."""
    predictor = LinkPredictor(
        model.encoder, lambda edges, n: graph_autoencoder.preprocess_edges(encoder, edges, n),
        variational=model.variational,
    )
    return export_saved_model(predictor, name, signatures=predictor.signatures(), root=root)


def train_and_report_links(graph, model_name, seeds, settings, *, name, runs_dir, saved_models,
                           config=None):
    """Train every seed, export the best, draw the ROC curves, write ``summary.md``.

    Returns a dict with ``run_dir``, ``export``, ``summary`` (markdown), ``results`` and
    ``roc`` (the PNG path).
    """
    from trainers.graph.plots import draw_roc

    run_dir = new_run_dir(f"links-{name}", root=runs_dir)
    write_config(run_dir, config or {"model": model_name, "seeds": list(seeds), **settings})
    model, results, curves = train_link_seeds(graph, model_name, seeds, run_dir, **settings)
    export = export_link_model(model, settings.get("encoder", "gcn"), name, root=saved_models)
    roc = run_dir / "roc.png"
    draw_roc([(f"seed {r.seed} (AUC {100 * r.test_auc:.1f})", *curve)
              for r, curve in zip(results, curves, strict=True)], roc,
             title=f"{model_name.upper()} test ROC, {name}")
    summary = summary_markdown(results)
    summary += f"\nExported the best-validation seed to `{export}`. ROC curves: `{roc}`.\n"
    write_text(run_dir / "summary.md", summary)
    write_text(run_dir / "results.json", json.dumps(
        [{**asdict(r), "seconds_per_epoch": r.seconds_per_epoch} for r in results], indent=2
    ) + "\n")
    return {"run_dir": run_dir, "export": export, "summary": summary, "results": results,
            "roc": roc}
