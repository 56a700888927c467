"""Benchmark: GAE and VGAE link prediction on the Planetoid graphs, seqgraph beside PyTorch
Geometric.

For each dataset and model, ``--seeds`` runs with seqgraph's defaults
(``trainers.graph.config.LINK_DEFAULTS``: Adam 0.01 with ε = 1e-8 on ``√v̂`` as PyTorch's,
``trainers.graph.links.link_optimizer``, 200 epochs, the last epoch's weights, the
reconstruction loss over all node pairs; the features raw for the VGAE and row-normalised for
the GAE,
``trainers.graph.config.raw_features``) report the test ROC AUC and average precision (mean ±
std, %), seconds per epoch and per run. With ``--pyg`` the same models run in PyTorch Geometric
(``GAE``/``VGAE`` around two bias-free ``GCNConv`` layers of 32 and 16 units, the same all-pairs
loss, ``norm`` and ``pos_weight`` counting the ones of ``A + I`` as seqgraph does, the KL term
divided by the number of nodes, with ``--patience`` the same model selection) on the same
edge split and features, alternating seed by seed so machine load hits both alike; both are
scored by seqgraph's NumPy AUC/AP (``trainers.graph.link_metrics``). torch and torch_geometric
are installed by hand, never seqgraph dependencies::

    python bench/links.py --data-dir /work/shared/data/planetoid --seeds 10 --pyg --write
    python bench/links.py ... --raw-features      # every model on the files' 0/1 features
    python bench/links.py ... --no-raw-features   # every model on row-normalised features
    python bench/links.py ... --paper-code  # tkipf/gae's arithmetic and 0/1 features throughout
    python bench/links.py ... --patience 200  # the best-validation epoch's weights
    python bench/links.py --quick          # karate, 1 seed, 10 epochs, patience 3: a check

``--paper-code`` runs the paper's code's arithmetic where seqgraph's differs (``fit_links``'s
``paper_code``: the loss's ``E`` counts the ones of ``A`` alone, TensorFlow 1's Adam adding ε̂ to
``√v``) on the 0/1 features for both models; PyG then counts ``E`` the same way. ``--patience
N`` keeps each run's best-validation-AUC epoch instead of the last (``fit_links``'s
``patience``), in PyG too.

``--write`` replaces the "Link prediction" result in docs/benchmarks.md (``bench.results``; one
block with each model's default features, one each for ``--raw-features``,
``--no-raw-features`` and ``--paper-code``).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gnn import planetoid_parser  # noqa: E402

PAPER = {  # Kipf & Welling (2016), Table 1: test AUC / AP (%)
    ("cora", "gae"): "91.0 / 92.0", ("cora", "vgae"): "91.4 / 92.6",
    ("citeseer", "gae"): "89.5 / 89.9", ("citeseer", "vgae"): "90.8 / 92.0",
}


def pyg_run(graph, split, model_name, seed, *, learning_rate, epochs, patience=None,
            count_loops=True):
    """The same model, split, loss and model selection in PyTorch Geometric; returns
    ``(auc, ap, epochs, s)``.

    With ``patience``, the weights of the best-validation-AUC epoch are kept and training stops
    after ``patience`` epochs without a better one, as Keras' ``EarlyStopping`` does for
    seqgraph (``trainers.graph.links.best_validation_weights``); PyG has no such callback."""
    import torch
    import torch.nn.functional as F
    from torch_geometric.nn import GAE, VGAE, GCNConv

    from trainers.graph.link_metrics import average_precision, roc_auc

    torch.manual_seed(seed)
    n = graph.n_nodes

    x = torch.tensor(graph.x.toarray())
    edges = torch.tensor(split.train_edges.T, dtype=torch.long)
    edge_index = torch.cat([edges, edges.flip(0)], dim=1)
    labels = torch.eye(n)
    labels[edge_index[0], edge_index[1]] = 1.0
    ones = float(labels.sum()) - (0 if count_loops else n)  # E: the ones of A + I, or of A
    pos_weight, norm = torch.tensor((n * n - ones) / ones), n * n / (2 * (n * n - ones))

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = GCNConv(x.shape[1], 32, bias=False)
            self.mu = GCNConv(32, 16, bias=False)
            self.log_sigma = GCNConv(32, 16, bias=False) if model_name == "vgae" else None

        def forward(self, x, edge_index):
            h = F.relu(self.hidden(x, edge_index))
            mu = self.mu(h, edge_index)
            return mu if self.log_sigma is None else (mu, self.log_sigma(h, edge_index))

    def embeddings():
        model.eval()
        with torch.no_grad():
            z = model.encoder(x, edge_index)
        return (z[0] if model_name == "vgae" else z).numpy()

    def ranking(part, z):
        pairs, truth = split.pairs(part)
        scores = (z[pairs[:, 0]] * z[pairs[:, 1]]).sum(axis=1)
        return roc_auc(truth, scores), average_precision(truth, scores)

    model = (VGAE if model_name == "vgae" else GAE)(Encoder())
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    best_auc, best_weights, wait, trained = -1.0, None, 0, epochs
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        optimizer.zero_grad()
        z = model.encode(x, edge_index)
        logits = model.decoder.forward_all(z, sigmoid=False)
        loss = norm * F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight)
        if model_name == "vgae":
            loss = loss + model.kl_loss() / n
        loss.backward()
        optimizer.step()
        if patience is not None:
            val_auc, _ = ranking("val", embeddings())
            wait += 1
            if val_auc > best_auc:
                best_auc, wait = val_auc, 0
                best_weights = {k: v.clone() for k, v in model.state_dict().items()}
            elif wait >= patience:
                trained = epoch
                break
    seconds = time.perf_counter() - start
    if best_weights is not None:
        model.load_state_dict(best_weights)
    return (*ranking("test", embeddings()), trained, seconds)


def summarise(rows):
    """``AUC mean ± std``, ``AP mean ± std`` (%), s/epoch and s/run over the seeds."""
    auc, ap = (100 * np.array([r[i] for r in rows]) for i in (0, 1))
    return (f"{auc.mean():.1f} ± {auc.std():.1f}", f"{ap.mean():.1f} ± {ap.std():.1f}",
            f"{np.mean([r[3] / r[2] for r in rows]):.4f}", f"{np.mean([r[3] for r in rows]):.1f}")


def alternate(graph, dataset, model_name, seeds, settings, pyg):
    """Seeds ``0..seeds-1`` of seqgraph and, with ``pyg``, PyG in turn: ``(ours, theirs)``, each
    a list of ``(auc, ap, epochs, seconds)``."""
    from pipelines.graph.edge_split import split_edges
    from trainers.graph.links import fit_links

    ours, theirs = [], []
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as run_dir:
            _, r, _ = fit_links(graph, model_name, seed, run_dir, **settings)
        ours.append((r.test_auc, r.test_ap, r.epochs, r.seconds))
        if pyg:
            theirs.append(pyg_run(graph, split_edges(graph.a, seed), model_name, seed,
                                  learning_rate=settings["learning_rate"],
                                  epochs=settings["epochs"], patience=settings["patience"],
                                  count_loops=not settings.get("paper_code", False)))
        print(f"{dataset} {model_name} seed {seed}: " + ", ".join(
            f"{name} AUC {auc:.4f} AP {ap:.4f} ({seconds:.1f} s)"
            for name, (auc, ap, _, seconds) in zip(("seqgraph", "PyG"),
                                                   (ours[-1], *theirs[-1:]), strict=False)
        ), flush=True)
    return ours, theirs


def main():
    parser = planetoid_parser(__doc__.split("\n\n")[0], ["gae", "vgae"])
    parser.add_argument("--raw-features", action=argparse.BooleanOptionalAction,
                        help="0/1 Planetoid features (the paper's code) or row-normalised ones "
                             "for every model; if not given, each model's default (raw for "
                             "the VGAE, row-normalised for the GAE)")
    parser.add_argument("--paper-code", action="store_true",
                        help="tkipf/gae's arithmetic (E counts the ones of A, TensorFlow 1's "
                             "Adam) and 0/1 features for every model")
    parser.add_argument("--patience", type=int,
                        help="keep the best-validation-AUC epoch's weights, stopping after this "
                             "many epochs without a better one (default: the last epoch's)")
    parser.add_argument("--quick", action="store_true",
                        help="karate, GAE, 1 seed, 10 epochs, patience 3: a check that the "
                             "script runs")
    parser.add_argument("--write", action="store_true",
                        help="write the table into docs/benchmarks.md")
    args = parser.parse_args()
    if args.write and args.patience:
        parser.error("--write records the default (last-epoch) results; drop --patience")
    if args.quick:
        args.datasets, args.models, args.seeds = ["karate"], ["gae"], 1
    if args.paper_code:
        args.raw_features = True

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_models.backend import tf

    from bench.results import load_average, provenance, write_result
    from pipelines.graph.datasets import load_graph
    from trainers.graph.config import LINK_DEFAULTS, raw_features

    load_at_start = load_average()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if args.pyg:
        import torch

        torch.set_num_threads(args.threads)
    settings = {**LINK_DEFAULTS, "patience": args.patience,
                **({"epochs": 10, "patience": 3} if args.quick else {}),
                **({"paper_code": True} if args.paper_code else {})}

    table = ["| dataset | model | framework | test AUC (%) | test AP (%) | paper AUC / AP | "
             "s/epoch | s/run |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for dataset in args.datasets:
        for model_name in args.models:
            graph = load_graph(dataset, data_dir=args.data_dir,
                               raw_features=raw_features(model_name, args.raw_features))
            ours, theirs = alternate(graph, dataset, model_name, args.seeds, settings, args.pyg)
            for framework, rows in (("seqgraph (spektral)", ours), ("PyTorch Geometric", theirs)):
                if rows:
                    auc, ap, per_epoch, per_run = summarise(rows)
                    table.append(f"| {dataset} | {model_name.upper()} | {framework} | {auc} | "
                                 f"{ap} | {PAPER.get((dataset, model_name), '')} | {per_epoch} "
                                 f"| {per_run} |")
    setting = ("; tkipf/gae arithmetic, 0/1 features" if args.paper_code else "") + (
        f"; best-validation epoch, patience {args.patience}" if args.patience else "")
    text = (f"{provenance(load_at_start)} {args.seeds} seed(s), {args.threads} thread(s) per "
            f"framework{setting}.\n\n" + "\n".join(table) + "\n")
    print("\n" + text)
    if args.write:
        name = "links-paper" if args.paper_code else {
            None: "links", True: "links-raw", False: "links-row"}[args.raw_features]
        write_result("Link prediction", name, text)


if __name__ == "__main__":
    main()
