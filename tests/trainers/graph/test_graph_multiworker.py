"""Sampled mini-batch training of a graph on two workers (``--strategy multiworker``).

Two local processes join one ``MultiWorkerMirroredStrategy`` cluster through ``TF_CONFIG`` and
run the real ``seqgraph graph train`` command on a small generated graph with ``--batch-size``
and ``--fanouts``. Each worker trains on its share of the sampled batches; the gradients are
summed across the workers at every step, so both must end with the same weights. The driver
records each worker's final weights (wrapping ``trainers.graph.train.fit_one``, which the
command calls) in a file of its own.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from run_helpers import free_ports, history_losses

from keras_models.utils.errors import UsageError
from trainers.graph.train import even_batches

GRAPH_RUN = ["graph", "train", "--model", "gcn", "--graph", "sbm:400", "--batch-size", "32",
             "--fanouts", "4,3", "--epochs", "3", "--seeds", "0", "--strategy", "multiworker",
             "--deterministic"]

DRIVER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from trainers.graph import train

    fit_one = train.fit_one

    def recording_fit_one(*args, **kwargs):
        model, result = fit_one(*args, **kwargs)
        np.save(sys.argv[2], np.concatenate([w.ravel() for w in model.get_weights()]))
        return model, result

    train.fit_one = recording_fit_one
    from trainers.cli import main
    sys.exit(main(json.loads(sys.argv[1])))
    """
)


def test_two_workers_train_a_sampled_graph_and_agree_on_the_weights(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        cwd = tmp_path / f"worker{index}"
        cwd.mkdir()
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            [sys.executable, "-c", DRIVER, json.dumps(GRAPH_RUN),
             str(tmp_path / f"weights{index}.npy")],
            cwd=cwd, env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    for process in processes:
        _, err = process.communicate(timeout=400)
        assert process.returncode == 0, f"exit {process.returncode}:\n{err[-4000:]}"

    chief_weights, worker_weights = (np.load(tmp_path / f"weights{i}.npy") for i in range(2))
    assert chief_weights.size > 1000
    np.testing.assert_array_equal(chief_weights, worker_weights)
    chief, worker = tmp_path / "worker0", tmp_path / "worker1"
    losses = history_losses(chief / "runs")
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert (chief / "saved_models" / "gcn-sbm-400" / "1" / "saved_model.pb").is_file()
    assert not any(worker.iterdir()), "the non-chief wrote into its folder"


@pytest.mark.parametrize(("n_nodes", "batch_size", "replicas", "expected"), [
    (500, 32, 1, (32, 16)),  # one replica: the batch size as given, 15 full batches and 20 nodes
    (500, 32, 2, (32, 16)),  # 16 batches already share evenly
    (70, 32, 2, (18, 4)),    # 3 batches of 32 would leave one replica idle: 4 of 18, 18, 18, 16
    (3, 2, 3, (1, 3)),
])
def test_validation_batches_come_in_a_multiple_of_the_replicas(n_nodes, batch_size, replicas,
                                                                expected):
    size, count = even_batches(n_nodes, batch_size, replicas)
    assert (size, count) == expected
    assert size <= batch_size and count % replicas == 0 and -(-n_nodes // size) == count


def test_fewer_validation_nodes_than_replicas_is_a_usage_error():
    with pytest.raises(UsageError) as error:
        even_batches(1, 2, 2)
    assert str(error.value) == ("1 validation node(s) cannot be shared among 2 replicas; "
                                "train on fewer replicas")
