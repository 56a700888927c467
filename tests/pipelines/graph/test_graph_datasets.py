"""Graph datasets: built-in graphs, a synthetic Planetoid folder, users' edge-list files."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from keras_models.utils.errors import UsageError
from pipelines.graph.datasets import example_graph, karate_graph, load_graph
from pipelines.graph.planetoid import planetoid_files

N_TRAIN, N_OTHER, N_TEST, N_FEATURES, N_CLASSES = 12, 520, 20, 5, 3


def write_planetoid(folder, name="cora"):
    """A tiny Planetoid-format folder: pickled SciPy x/tx/allx, NumPy y/ty/ally, graph dict.

    ``allx`` holds the ``N_TRAIN`` training rows then ``N_OTHER`` more (spektral takes the 500
    after the training rows as validation); the ``N_TEST`` test rows come last, listed in
    ``test.index`` in reverse order to exercise the reordering.
    """
    rng = np.random.default_rng(0)
    n_all = N_TRAIN + N_OTHER
    allx = sp.csr_matrix(rng.integers(0, 2, size=(n_all, N_FEATURES)).astype(np.float32))
    tx = sp.csr_matrix(rng.integers(0, 2, size=(N_TEST, N_FEATURES)).astype(np.float32))
    labels = rng.integers(0, N_CLASSES, size=n_all + N_TEST)
    one_hot = np.eye(N_CLASSES)[labels]
    n = n_all + N_TEST
    graph = {i: [(i + 1) % n, (i - 1) % n] for i in range(n)}
    test_index = np.arange(n_all, n)[::-1]
    objects = {
        "x": allx[:N_TRAIN], "y": one_hot[:N_TRAIN], "allx": allx, "ally": one_hot[:n_all],
        "tx": tx, "ty": one_hot[n_all:], "graph": graph,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, obj in objects.items():
        with open(folder / f"ind.{name}.{suffix}", "wb") as f:
            pickle.dump(obj, f)
    (folder / f"ind.{name}.test.index").write_text("\n".join(map(str, test_index)) + "\n")
    return allx, tx, one_hot


def test_example_graph_has_the_assignment_edges():
    g = example_graph()
    a, names = g.a.toarray(), g.node_names
    edges = {frozenset((names[i], names[j])) for i, j in zip(*np.nonzero(a), strict=True)}
    assert edges == {frozenset(e) for e in ("AB", "AE", "AF", "BD", "CD", "DF")}
    assert (a == a.T).all() and g.x.shape == (6, 6)


def test_karate_club_graph_and_split():
    g = karate_graph()
    assert g.n_nodes == 34 and g.a.nnz == 2 * 78 and set(g.a.data) == {1.0}
    assert (g.mask_tr.sum(), g.mask_va.sum(), g.mask_te.sum()) == (8, 8, 18)
    assert not (g.mask_tr & g.mask_va).any() and (g.mask_tr | g.mask_va | g.mask_te).all()
    clubs = g.y.argmax(axis=1)
    assert clubs[0] == 0 and clubs[33] == 1 and g.mask_tr[[0, 33]].all()
    assert np.bincount(clubs[g.mask_tr]).tolist() == [4, 4]
    assert np.bincount(clubs[g.mask_va]).tolist() == [4, 4]


def test_planetoid_loader_reads_a_synthetic_folder(tmp_path):
    """Also the scipy pin (< 1.14): spektral's reader calls ``.A`` on the SciPy matrices."""
    allx, tx, one_hot = write_planetoid(tmp_path / "planetoid")
    g = load_graph("cora", data_dir=tmp_path / "planetoid")
    n_all = N_TRAIN + N_OTHER
    assert g.n_nodes == n_all + N_TEST and g.a.nnz == 2 * g.n_nodes
    assert (g.mask_tr.sum(), g.mask_va.sum(), g.mask_te.sum()) == (N_TRAIN, 500, N_TEST)
    assert g.mask_tr[:N_TRAIN].all() and g.mask_te[n_all:].all()
    # Row k of tx/ty belongs to node test.index[k], listed here in reverse.
    features = np.vstack([allx.toarray(), tx.toarray()[::-1]])
    sums = features.sum(axis=1, keepdims=True)
    expected = np.divide(features, sums, out=np.zeros_like(features), where=sums > 0)
    np.testing.assert_allclose(g.x.toarray(), expected, rtol=1e-6)
    raw = load_graph("cora", data_dir=tmp_path / "planetoid", raw_features=True)
    np.testing.assert_array_equal(raw.x.toarray(), features)
    labels = np.concatenate([one_hot[:n_all], one_hot[n_all:][::-1]]).argmax(axis=1)
    np.testing.assert_array_equal(g.y.argmax(axis=1), labels)


def test_missing_planetoid_folder_lists_every_file(tmp_path):
    with pytest.raises(UsageError, match="does not exist") as error:
        load_graph("citeseer", data_dir=tmp_path / "nowhere")
    assert all(f in str(error.value) for f in planetoid_files("citeseer"))
    assert not (tmp_path / "nowhere").exists()


def test_partial_planetoid_folder_lists_the_missing_files(tmp_path):
    write_planetoid(tmp_path, "pubmed")
    (tmp_path / "ind.pubmed.allx").unlink()
    (tmp_path / "ind.pubmed.test.index").unlink()
    with pytest.raises(UsageError, match="incomplete") as error:
        load_graph("pubmed", data_dir=tmp_path)
    message = str(error.value)
    assert "ind.pubmed.allx, ind.pubmed.test.index;" in message and "ind.pubmed.tx" not in message


def _user_graph(folder, edges, features, labels):
    """The graph of an edge list, features and labels file with these contents."""
    for name, text in (("g.txt", edges), ("f.csv", features), ("l.txt", labels)):
        (folder / name).write_text(text)
    return load_graph(str(folder / "g.txt"), features=folder / "f.csv", labels=folder / "l.txt")


def test_edge_list_with_features_and_labels(tmp_path):
    g = _user_graph(tmp_path, "# my graph\nu v\nv w, \nw u\nw w\nu v\nw z\n",
                    "u,1,0\nv,0,1\nw,1,1\nz,0,0\n",
                    "u red train\nv blue train\nw red val\nz blue test\n")
    assert g.node_names == ["u", "v", "w", "z"] and g.a.nnz == 2 * 4
    assert g.a[0, 1] == g.a[1, 0] == 1 and g.a[2, 2] == 0
    np.testing.assert_array_equal(g.x.toarray(), [[1, 0], [0, 1], [1, 1], [0, 0]])
    assert g.class_names == ["blue", "red"] and g.y.argmax(axis=1).tolist() == [1, 0, 1, 0]
    assert g.mask_tr.tolist() == [True, True, False, False] and g.mask_te.tolist()[3]


def test_nodes_only_in_the_features_or_labels_file_are_nodes_without_edges(tmp_path):
    """CiteSeer has such nodes; so does any real graph. They come after the edge list's nodes."""
    g = _user_graph(tmp_path, "u v\nv w\n", "u 1 0\nlonely 0 1\nv 1 1\nw 0 0\nquiet 1 1\n",
                    "u a train\nquiet b train\nv b val\nlonely a test\n")
    assert g.node_names == ["u", "v", "w", "lonely", "quiet"] and g.a.shape == (5, 5)
    assert g.a.nnz == 2 * 2 and g.a[3].nnz == 0 and g.a[4].nnz == 0
    np.testing.assert_array_equal(g.x.toarray(), [[1, 0], [1, 1], [0, 0], [0, 1], [1, 1]])
    assert g.y.argmax(axis=1)[[3, 4]].tolist() == [0, 1] and g.y[2].sum() == 0
    assert g.mask_tr.tolist() == [True, False, False, False, True]
    assert g.mask_te.tolist() == [False, False, False, True, False]
    (tmp_path / "l2.txt").write_text("u a\nnew b\n")  # labels only: one-hot features
    g = load_graph(str(tmp_path / "g.txt"), labels=tmp_path / "l2.txt")
    assert g.node_names[-1] == "new" and g.x.shape == (4, 4) and g.a[3].nnz == 0


def test_labels_without_split_are_split_60_20_20(tmp_path):
    (tmp_path / "g.txt").write_text("\n".join(f"{i} {i + 1}" for i in range(9)))
    (tmp_path / "l.txt").write_text("\n".join(f"{i} c{i % 2}" for i in range(10)))
    g = load_graph(str(tmp_path / "g.txt"), labels=tmp_path / "l.txt")
    assert (g.mask_tr.sum(), g.mask_va.sum(), g.mask_te.sum()) == (6, 2, 2)
    assert np.allclose(g.x.toarray(), np.eye(10))


@pytest.mark.parametrize(
    ("edges", "features", "labels", "message"),
    [
        ("a b c\n", None, None, r"g.txt:1: expected 2 node names, found 3"),
        ("# nothing\n", None, None, "has no entries"),
        ("a a\n", None, None, "only self loops"),
        ("a b\n", "a 1 2\nb 3\n", None, r"f.txt:2: expected 2 numbers, found 1"),
        ("a b\n", "a 1\n", None, r"no features for 1 node\(s\) such as \['b'\]"),
        ("a b\n", "a 1\nb x\n", None, "features must be numbers"),
        ("a b\n", "a 1 2\n\nb 3 nan\n", None,
         r"f.txt:3: feature 'nan' of node 'b' is not a finite number; replace it with a number "
         r"\(e.g. 0, or the column's mean\)$"),
        ("a b\n", "a -inf 1e999\nb 3 4\n", None, r"f.txt:1: feature '-inf' of node 'a'"),
        ("a b\n", "a 1\nb 2\n", "a red\nc blue\n", r"no features for 1 node\(s\) such as \['c'\]"),
        ("a b\n", None, "a red train\nb red\n", "give all a split or none"),
        ("a b\n", None, "a red later\n", "split 'later' is not one of train, val, test"),
    ],
)
def test_bad_graph_files_give_one_clear_error(tmp_path, edges, features, labels, message):
    (tmp_path / "g.txt").write_text(edges)
    kwargs = {}
    for key, text in (("features", features), ("labels", labels)):
        if text is not None:
            (tmp_path / f"{key[0]}.txt").write_text(text)
            kwargs[key] = tmp_path / f"{key[0]}.txt"
    with pytest.raises(UsageError, match=message):
        load_graph(str(tmp_path / "g.txt"), **kwargs)


def test_unknown_graph_name_names_the_choices(tmp_path):
    with pytest.raises(UsageError, match="neither a dataset nor a file; choose one of example"):
        load_graph(str(tmp_path / "missing.txt"))


def test_a_class_without_train_nodes_is_warned_about(tmp_path, capsys):
    """The model cannot predict a class it never trains on; it is kept (the user's labels), and
    one warning line names it."""
    (tmp_path / "g.txt").write_text("a b\nb c\nc d\n")
    (tmp_path / "l.txt").write_text("a red train\nb red val\nc blue test\nd green val\n")
    g = load_graph(str(tmp_path / "g.txt"), labels=tmp_path / "l.txt")
    assert g.class_names == ["blue", "green", "red"]
    assert capsys.readouterr().err.splitlines() == [
        f"seqgraph: warning: {tmp_path / 'l.txt'}: class(es) 'blue', 'green' have no node in the "
        "train split; the model cannot learn them, and their val and test nodes count as errors "
        "(label some of their nodes train)"
    ]
    (tmp_path / "l.txt").write_text("a red train\nb red val\nc blue test\nd blue train\n")
    load_graph(str(tmp_path / "g.txt"), labels=tmp_path / "l.txt")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("flags, raw", [
    (["--task", "links", "--model", "vgae"], True),  # the VGAE's default: the paper code's 0/1
    (["--task", "links", "--model", "gae"], False),
    (["--model", "gcn"], False),
    (["--task", "links", "--model", "vgae", "--no-raw-features"], False),
    (["--task", "links", "--model", "gae", "--raw-features"], True),
])
def test_each_model_reads_its_default_features_unless_told(tmp_path, flags, raw):
    from trainers.cli import build_parser
    from trainers.graph.command import load

    allx, tx, _ = write_planetoid(tmp_path / "planetoid")
    args = build_parser().parse_args(
        ["graph", "train", "--graph", "cora", "--data-dir", str(tmp_path / "planetoid"), *flags]
    )
    features = np.vstack([allx.toarray(), tx.toarray()[::-1]])
    assert np.array_equal(load(args).x.toarray(), features) == raw
