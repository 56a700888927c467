"""Link prediction: NumPy ranking metrics, GAE/VGAE training through the CLI, the link-predictor
export in a fresh TensorFlow-only process, GGNN node classification, and the bench script."""

import json
import subprocess
import sys
from pathlib import Path

from keras_models.backend import tf

import networkx as nx
import numpy as np
import pytest

from keras_models.utils.sparse_tensors import sparse_tensor
from pipelines.graph.datasets import karate_graph
from pipelines.graph.edge_split import undirected_edges
from trainers.cli import main
from trainers.graph.config import DEFAULTS, LINK_DEFAULTS
from trainers.graph.link_metrics import average_precision, roc_auc, roc_curve
from trainers.graph.train import export_graph_model, fit_one, model_inputs

ROOT = Path(__file__).resolve().parents[3]
# Documented in docs/graphs.md: GAE on karate (50 epochs, seeds 0-2) ranks test edges well above
# chance; each seed has only 7 test edges, so the bound is on the mean.
KARATE_MIN_MEAN_AUC = KARATE_MIN_MEAN_AP = 0.75


def test_metrics_on_hand_worked_examples():
    labels, scores = [1, 0, 1, 0], [0.9, 0.8, 0.4, 0.3]
    # Positive 0.9 beats both negatives, 0.4 beats one: 3 of 4 pairs.
    assert roc_auc(labels, scores) == 0.75
    # Ranked: + (precision 1/1), −, + (precision 2/3), −; each positive is half the recall.
    assert average_precision(labels, scores) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    fpr, tpr = roc_curve(labels, scores)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    # A tie between a positive and a negative counts half; both at one threshold.
    assert roc_auc([1, 0], [0.5, 0.5]) == 0.5 and average_precision([1, 0], [0.5, 0.5]) == 0.5
    assert roc_auc([0, 1, 1], [3, 2, 1]) == 0.0 and average_precision([0, 1, 1], [3, 2, 1]) == (
        pytest.approx(0.5 * 1 / 2 + 0.5 * 2 / 3))
    assert roc_auc([1, 1, 0], [2, 2, 1]) == 1.0 and average_precision([1, 1, 0], [2, 2, 1]) == 1


def test_metrics_refuse_a_single_class():
    from keras_models.utils.errors import UsageError

    with pytest.raises(UsageError, match="need both positives and negatives"):
        roc_auc([1, 1], [0.2, 0.3])


@pytest.fixture(scope="module")
def karate_gae(tmp_path_factory):
    """``seqgraph graph train --task links --model gae`` on karate: ``(root, stdout)``."""
    root = tmp_path_factory.mktemp("gae")
    argv = ["graph", "train", "--task", "links", "--model", "gae", "--graph", "karate",
            "--seeds", "0", "1", "2", "--epochs", "50", "--runs-dir", str(root / "runs"),
            "--saved-models", str(root / "saved_models")]
    assert main(argv) == 0
    return root


def test_gae_on_karate_ranks_test_edges_well_and_reports(karate_gae, capsys):
    (run_dir,) = (karate_gae / "runs").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    assert [r["seed"] for r in results] == [0, 1, 2] and all(r["epochs"] == 50 for r in results)
    auc, ap = (np.mean([r[k] for r in results]) for k in ("test_auc", "test_ap"))
    assert auc >= KARATE_MIN_MEAN_AUC and ap >= KARATE_MIN_MEAN_AP, (auc, ap)
    summary = (run_dir / "summary.md").read_text()
    aucs = 100 * np.array([r["test_auc"] for r in results])
    assert f"test AUC **{aucs.mean():.1f} ± {aucs.std():.1f}**" in summary
    assert (run_dir / "roc.png").read_bytes()[:4] == b"\x89PNG"
    history = (run_dir / "seed-0" / "history.csv").read_text().splitlines()
    assert "val_auc" in history[0] and "val_ap" in history[0] and len(history) == 51
    assert list((run_dir / "seed-0" / "tensorboard" / "test").iterdir())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["reconstruction"] == "all-pairs" and config["learning_rate"] == 0.01
    assert config["patience"] is None and all(r["kept_epoch"] == 50 for r in results)


def test_gae_training_is_deterministic_per_seed(karate_gae, tmp_path):
    from trainers.graph.links import fit_links

    (run_dir,) = (karate_gae / "runs").iterdir()
    first = json.loads((run_dir / "results.json").read_text())[1]
    _, again, _ = fit_links(karate_graph(), "gae", 1, tmp_path, **{**LINK_DEFAULTS, "epochs": 50})
    assert (again.test_auc, again.test_ap) == (first["test_auc"], first["test_ap"])


def test_link_training_keeps_the_weights_of_the_best_validation_epoch(tmp_path):
    """Model selection: the kept epoch is the first maximum of ``val_auc`` in ``history.csv``,
    training stops ``patience`` epochs after it, and the kept weights are those of a run trained
    for exactly that many epochs (the same seed, no selection)."""
    from trainers.graph.links import fit_links

    graph, patience = karate_graph(), 5
    settings = {"learning_rate": 0.01, "reconstruction": "all-pairs"}
    model, result, _ = fit_links(graph, "gae", 0, tmp_path / "kept", epochs=80,
                                 patience=patience, **settings)
    history = np.genfromtxt(tmp_path / "kept" / "history.csv", delimiter=",", names=True)
    best = int(np.argmax(history["val_auc"]))  # the first of equal maxima
    assert result.kept_epoch == best + 1 < result.epochs == len(history) == best + 1 + patience
    assert (result.val_auc, result.val_ap) == (history["val_auc"][best], history["val_ap"][best])
    reference, at_best, _ = fit_links(graph, "gae", 0, tmp_path / "reference", epochs=best + 1,
                                      **settings)
    for kept, trained in zip(model.encoder.get_weights(), reference.encoder.get_weights(),
                             strict=True):
        np.testing.assert_array_equal(kept, trained)
    assert (result.test_auc, result.test_ap) == (at_best.test_auc, at_best.test_ap)
    assert at_best.kept_epoch == at_best.epochs == best + 1  # no patience: the last epoch


def test_link_training_steps_as_kingma_and_bas_adam_with_tiny_gradients(tmp_path):
    """The trainer's optimiser against Algorithm 1 of Kingma & Ba in NumPy (ε = 1e-8 added to
    √v̂), on gradients of the size of the GAE's first-layer ones (1e-9 to 1e-6): Keras' default
    (ε̂ = 1e-7 added to √v) moves such weights up to 30 times less. ``paper_code`` steps as
    TensorFlow 1's Adam (tkipf/gae) and counts the loss's E without the self loops."""
    from trainers.graph.links import fit_links, link_optimizer

    model, _, _ = fit_links(karate_graph(), "gae", 0, tmp_path, learning_rate=0.01, epochs=1,
                            reconstruction="all-pairs")
    paper, _, _ = fit_links(karate_graph(), "gae", 0, tmp_path / "paper", learning_rate=0.01,
                            epochs=1, reconstruction="all-pairs", paper_code=True)
    # get_config drops adaptive_epsilon (tf-keras 2.21), so compare the attributes themselves.
    assert [(type(o.optimizer), o.optimizer.epsilon, o.optimizer.adaptive_epsilon, o.count_loops)
            for o in (model, paper)] == [(type(model.optimizer), 1e-8, True, True),
                                         (type(model.optimizer), 1e-8, False, False)]
    gradients = np.array([[1e-8, -3e-8, 2e-9, 5e-7], [2e-8, 1e-9, -4e-9, 1e-6],
                          [-1e-8, 2e-8, 3e-9, 5e-7]])
    for paper_code in (False, True):
        optimizer = link_optimizer(0.01, paper_code=paper_code)
        variable = tf.Variable(np.zeros(4, np.float32))
        theta, m, v = np.zeros(4), np.zeros(4), np.zeros(4)
        for t, gradient in enumerate(gradients, start=1):
            optimizer.apply_gradients([(tf.constant(gradient, tf.float32), variable)])
            m, v = 0.9 * m + 0.1 * gradient, 0.999 * v + 0.001 * gradient**2
            if paper_code:  # the bias corrections in the step size, ε̂ added to √v
                theta -= 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-8)
            else:
                m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
                theta -= 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8)
            np.testing.assert_allclose(variable.numpy(), theta, rtol=1e-5)


def _reference(export, graph, queries, k):
    """Scores and top-k neighbours in NumPy from the exported encoder's embeddings."""
    from keras_models.models.graph_autoencoder import gcn_filter

    encoder = tf.saved_model.load(str(export)).encoder
    z = encoder([sparse_tensor(graph.x), gcn_filter(graph.a)], training=False).numpy()
    logits = z[queries] @ z.T
    for row, node in enumerate(queries):
        logits[row, graph.a[node].indices] = -np.inf
        logits[row, node] = -np.inf
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return z, top, 1 / (1 + np.exp(-np.take_along_axis(logits, top, axis=1)))


def test_link_export_serves_scores_and_recommendations_in_a_fresh_process(
    karate_gae, tmp_path, fresh_python
):
    graph = karate_graph()
    export = karate_gae / "saved_models" / "gae-karate" / "1"
    queries, k = np.array([0, 33, 5]), 4
    z, top, top_scores = _reference(export, graph, queries, k)
    pairs = np.array([[0, 1], [0, 33], [5, 16], [12, 12]])
    expected = 1 / (1 + np.exp(-(z[pairs[:, 0]] * z[pairs[:, 1]]).sum(axis=1)))
    edges = undirected_edges(graph.a)
    np.savez(tmp_path / "case.npz", x=graph.x.toarray(), edges=edges, pairs=pairs,
             expected=expected,
             queries=queries, top=top, top_scores=top_scores)
    fresh_python(f"""
        import sys
        import numpy as np
        import tensorflow as tf
        case = np.load("case.npz")
        served = tf.saved_model.load(r"{export}").signatures
        x, edges = tf.constant(case["x"]), tf.constant(case["edges"])
        scores = served["score_pairs"](x=x, edges=edges, pairs=tf.constant(case["pairs"]))
        np.testing.assert_allclose(scores["scores"].numpy(), case["expected"], rtol=1e-5)
        best = served["recommend"](x=x, edges=edges, nodes=tf.constant(case["queries"]),
                                   k=tf.constant(4))
        np.testing.assert_array_equal(best["neighbours"].numpy(), case["top"])
        np.testing.assert_allclose(best["scores"].numpy(), case["top_scores"], rtol=1e-5)
        # Node 11 has one neighbour (0): of the 34 nodes, 32 are candidates, then -1 with 0.
        tail = served["recommend"](x=x, edges=edges, nodes=tf.constant([11], tf.int64),
                                   k=tf.constant(40))
        assert tail["neighbours"].shape == (1, 34)
        assert list(tail["neighbours"].numpy()[0, 32:]) == [-1, -1]
        assert (tail["scores"].numpy()[0, 32:] == 0).all()
        assert not set(tail["neighbours"].numpy()[0, :32]) & {{0, 11}}
        try:
            served["recommend"](x=x, edges=edges, nodes=tf.constant([3, 34, -1], tf.int64),
                                k=tf.constant(2))
            raise SystemExit("an unknown query node was served")
        except tf.errors.InvalidArgumentError as error:
            assert ("query node(s) [34 -1] do(es) not exist: the graph has 34 nodes, ids 0 to 33"
                    in error.message), error.message
        assert not any(m.split(".")[0] in ("spektral", "keras_models", "trainers")
                       for m in sys.modules)
    """, cwd=tmp_path)


def test_vgae_with_a_gated_encoder_on_a_generated_edge_list(tmp_path, capsys):
    """A user's edge list with a self loop and a repeated edge: dropped with a warning, trained."""
    graph = nx.connected_watts_strogatz_graph(30, 4, 0.2, seed=1)  # 60 edges
    (u, v), *_ = graph.edges
    lines = [f"n{i} n{j}" for i, j in graph.edges] + ["n3 n3", f"n{v} n{u}"]
    (tmp_path / "g.txt").write_text("\n".join(lines) + "\n")
    assert main(["graph", "train", "--task", "links", "--model", "vgae", "--encoder", "ggnn",
                 "--graph", str(tmp_path / "g.txt"), "--epochs", "3",
                 "--runs-dir", str(tmp_path / "runs"),
                 "--saved-models", str(tmp_path / "saved_models")]) == 0
    captured = capsys.readouterr()
    assert f"seqgraph: warning: {tmp_path / 'g.txt'}: dropped 1 self loop (line 61) and 1 " \
           "repeated edge (line 62)" in captured.err
    assert "test AUC **" in captured.out
    export = tmp_path / "saved_models" / "vgae-ggnn-g" / "1"
    served = tf.saved_model.load(str(export)).signatures["score_pairs"]
    x = np.eye(30, dtype="float32")
    edges = np.array(graph.edges, dtype=np.int64)
    first = served(x=x, edges=edges, pairs=np.array([[0, 5]]))["scores"].numpy()
    again = served(x=x, edges=edges, pairs=np.array([[0, 5]]))["scores"].numpy()
    assert 0 < first[0] < 1 and first[0] == again[0]  # the mean μ: no sampling when served


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "links", "--model", "gcn"],
         "--model gcn is for --task nodes; --task links trains gae or vgae"),
        (["--model", "vgae"], "--model vgae is for --task links; --task nodes trains gcn or "
                              "gat or ggnn"),
        (["--task", "links", "--model", "gae", "--fanouts", "5,5"],
         "--fanouts goes with --task nodes; drop it for link prediction"),
        (["--model", "gcn", "--encoder", "ggnn"], "--encoder goes with --task links; drop it"),
        (["--task", "links", "--model", "gae", "--graph", "example"],
         "the graph has 6 edge(s): too few to split 85/5/10 % for link prediction"),
    ],
)
def test_link_usage_errors_write_nothing(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    graph = [] if "--graph" in argv else ["--graph", "karate"]
    assert main(["graph", "train", *argv, *graph]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_ggnn_classifies_karate_and_exports(tmp_path, fresh_python):
    graph = karate_graph()
    model, result = fit_one(graph, "ggnn", 0, tmp_path / "run", **DEFAULTS["ggnn"])
    assert result.test_accuracy >= 15 / 18 and result.train_accuracy == 1.0
    export = export_graph_model(model, "ggnn", "ggnn-karate", root=tmp_path / "saved_models")
    expected = model(model_inputs(graph, "ggnn")).numpy()
    np.savez(tmp_path / "case.npz", x=graph.x.toarray(), edges=undirected_edges(graph.a),
             expected=expected)
    fresh_python(f"""
        import numpy as np
        import tensorflow as tf
        case = np.load("case.npz")
        served = tf.saved_model.load(r"{export}").signatures["serve_edges"]
        out = served(x=tf.constant(case["x"]), edges=tf.constant(case["edges"]))
        np.testing.assert_allclose(out["probabilities"].numpy(), case["expected"], atol=1e-6)
    """, cwd=tmp_path)


def test_bench_quick_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "links.py"), "--quick"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| karate | GAE | seqgraph (spektral) |" in result.stdout
