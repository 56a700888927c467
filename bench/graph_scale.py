"""Benchmark: GCN on generated graphs of 10^4, 10^5 and 10^6 nodes, full batch and sampled.

The graphs are ``sbm:N`` (``pipelines/graph/generated.py``: a stochastic block model with
about 10 edges per node, 5 classes and 500-word bag-of-words features). For each size, GCN
trains with the paper's settings (Adam 0.01, at most ``--epochs`` epochs, patience 10) twice:

- **full batch**: the whole graph in one compiled step per epoch;
- **sampled**: mini-batches of ``--batch-size`` training nodes with ``--fanouts`` neighbours
  per node and hop (``pipelines/graph/sampling.py``); one epoch is one pass over the training
  nodes (1 % of the graph), validated on sampled neighbourhoods of the 500 validation nodes.

Each (size, mode) runs in a process of its own, so the peak resident memory it reports
(``ru_maxrss``: graph, model, training and the final whole-graph evaluation) is its own. Seconds
per epoch are the median of the epochs' wall times (``history.csv``), without the first epoch's
tracing. Test accuracy is on 1000 test nodes of the whole graph; the majority class has 20 %.

    python bench/graph_scale.py --write              # 10^4, 10^5, 10^6 nodes
    python bench/graph_scale.py --quick              # 2000 nodes, 3 epochs: checks it runs

``--write`` replaces this benchmark's block in docs/benchmarks.md (``bench/results.py``).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import load_average, provenance, write_result  # noqa: E402

MODES = ("full batch", "sampled")


def run_child(spec):
    """Train one (size, mode) in this process; print its measurements as one JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_models.backend import tf

    tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(spec["threads"])
    from pipelines.graph.generated import sbm_graph
    from trainers.graph.config import DEFAULTS
    from trainers.graph.train import fit_one

    start = time.perf_counter()
    graph = sbm_graph(spec["nodes"])
    build_seconds = time.perf_counter() - start
    settings = {**DEFAULTS["gcn"], "epochs": spec["epochs"]}
    if spec["mode"] == "sampled":
        settings.update(batch_size=spec["batch_size"], fanouts=tuple(spec["fanouts"]))
    with tempfile.TemporaryDirectory() as run_dir:
        _, result = fit_one(graph, "gcn", 0, run_dir, **settings)
        history = np.genfromtxt(Path(run_dir) / "history.csv", delimiter=",", names=True)
    epoch_seconds = np.atleast_1d(history["seconds"])
    labels = graph.y.argmax(axis=1)[graph.mask_te]
    print(json.dumps({
        **spec, "edges": int(graph.a.nnz // 2), "build_seconds": build_seconds,
        "epoch_seconds": float(np.median(epoch_seconds[1:] if len(epoch_seconds) > 1
                                         else epoch_seconds)),
        "epochs_run": result.epochs, "test_accuracy": result.test_accuracy,
        "majority": float(np.bincount(labels).max() / len(labels)),
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }))


def measure(spec):
    """``run_child(spec)`` in a fresh process; its JSON result."""
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{spec['nodes']} nodes, {spec['mode']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows, args):
    lines = [
        f"GCN, {args.threads} thread(s), at most {args.epochs} epochs (patience 10); sampled: "
        f"batches of {args.batch_size} training nodes, fan-out "
        f"{' × '.join(map(str, args.fanouts))}.", "",
        "| nodes | edges | training | graph built (s) | s/epoch | epochs | peak memory (GiB) "
        "| test acc (%) | majority class (%) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['nodes']:,} | {r['edges']:,} | {r['mode']} | {r['build_seconds']:.1f} "
            f"| {r['epoch_seconds']:.3f} | {r['epochs_run']} | {r['peak_gib']:.2f} "
            f"| {100 * r['test_accuracy']:.1f} | {100 * r['majority']:.1f} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5, 10**6])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--fanouts", type=int, nargs=2, default=[10, 10])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2000 nodes, 3 epochs")
    parser.add_argument("--write", action="store_true",
                        help="replace this result in docs/benchmarks.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(json.loads(args.child))
    if args.quick:
        args.sizes, args.epochs = [2000], 3
    load_at_start = load_average()
    rows = []
    for nodes in args.sizes:
        for mode in args.modes:
            rows.append(measure({"nodes": nodes, "mode": mode, "epochs": args.epochs,
                                 "batch_size": args.batch_size, "fanouts": args.fanouts,
                                 "threads": args.threads}))
            print(table(rows[-1:], args).splitlines()[-1], flush=True)
    text = table(rows, args)
    print("\n" + text)
    if args.write:
        write_result("Graphs at scale", "graph_scale", f"{provenance(load_at_start)}\n\n{text}")


if __name__ == "__main__":
    main()
