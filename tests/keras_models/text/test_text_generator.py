"""Character model, samplers, in-graph generation and the exported serving signature."""

from keras_models.backend import tf

import numpy as np
import pytest

from keras_models.models.char_language_model import CharModel
from keras_models.text import samplers
from keras_models.text import vocabulary as vocab
from keras_models.text.generator import CharGenerator
from keras_models.utils.errors import NonFiniteLogits, UsageError
from trainers.core.export import export_saved_model

VOCABULARY = sorted(set("abcdefgh ijklmnop.\n"))


@pytest.fixture(scope="module")
def vocabulary_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocabulary.txt"
    vocab.write_vocabulary(path, VOCABULARY)
    return path


def make_model(cell="lstm", seed=0):
    tf.random.set_seed(seed)
    model = CharModel(len(VOCABULARY) + 1, embedding_dim=8, units=16, cell=cell)
    model(tf.zeros((1, 1), tf.int32))
    # spread the output layer so greedy text is not one repeated character
    model.dense.kernel.assign(tf.random.normal(model.dense.kernel.shape, stddev=3.0, seed=seed))
    return model


@pytest.fixture(scope="module")
def generator(vocabulary_file):
    return CharGenerator(make_model(), vocabulary_file)


def greedy_by_rerunning_prefix(model, prompt, length):
    """The argmax chain, each step re-running the whole text so far through ``model(...)``."""
    ids = [int(i) for i in vocab.encode(prompt, VOCABULARY)]
    out = []
    for _ in range(length):
        logits = model(tf.constant([ids])).numpy()[0, -1]
        logits[0] = -np.inf  # never the out-of-vocabulary id
        ids.append(int(np.argmax(logits)))
        out.append(VOCABULARY[ids[-1] - 1])
    return "".join(out)


@pytest.mark.parametrize("cell", ["lstm", "peephole", "keras_lstm", "keras_gru"])
def test_step_with_carried_states_equals_full_sequence_call(cell):
    model = make_model(cell)
    ids = tf.constant(np.random.default_rng(0).integers(0, len(VOCABULARY) + 1, (3, 9)))
    full, final_states = model(ids, return_state=True)
    states = model.initial_states(3)
    for t in range(9):
        logits, states = model.step(ids[:, t], states)
        np.testing.assert_allclose(logits, full[:, t], rtol=1e-5, atol=1e-5)
    for ours, theirs in zip(tf.nest.flatten(states), tf.nest.flatten(final_states), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_model_config_round_trip():
    model = make_model("peephole")
    clone = CharModel.from_config(model.get_config())
    assert (clone.vocab_size, clone.units, clone.num_layers, clone.cell) == (
        len(VOCABULARY) + 1, 16, 2, "peephole"
    )


def test_greedy_generation_equals_argmax_chain_of_rerun_prefix(generator):
    expected = greedy_by_rerunning_prefix(generator.model, "ab c", 25)
    assert generator.generate("ab c", 25, temperature=0.0) == [expected]


def test_prompts_of_different_lengths_in_one_batch(generator):
    prompts = ["a", "hello ", "dog."]
    batched = generator.generate(prompts, 12)
    assert batched == [generator.generate(p, 12)[0] for p in prompts]
    assert all(len(text) == 12 for text in batched)


def test_temperature_sampling_is_seeded_and_low_temperature_is_greedy(generator):
    first = generator.generate(["ab", "c"], 40, temperature=1.0, seed=7)
    assert generator.generate(["ab", "c"], 40, temperature=1.0, seed=7) == first
    assert generator.generate(["ab", "c"], 40, temperature=1.0, seed=8) != first
    greedy = generator.generate(["ab", "c"], 40)
    assert generator.generate(["ab", "c"], 40, temperature=1e-7, seed=7) == greedy
    assert generator.generate(["ab", "c"], 40, temperature=1.5, top_k=1, seed=7) == greedy


def test_temperature_sampler_matches_softmax_of_scaled_logits():
    logits = tf.constant([[2.0, 1.0, 0.0, -1.0]] * 20000)
    for temperature in (0.5, 2.0):
        ids = samplers.with_temperature(logits, temperature, tf.constant([1, 2])).numpy()
        expected = tf.nn.softmax(logits[0] / temperature).numpy()
        np.testing.assert_allclose(np.bincount(ids, minlength=4) / len(ids), expected, atol=0.015)


def test_top_k_samples_only_the_k_best():
    logits = tf.constant([[0.0, 3.0, 1.0, 2.9, -1.0]] * 500)
    ids = samplers.top_k(logits, 2, 1.0, tf.constant([0, 3])).numpy()
    assert set(ids) == {1, 3}


def test_unknown_prompt_characters_map_to_oov_which_is_never_sampled(vocabulary_file):
    model = make_model(seed=1)
    model.dense.bias.assign(tf.one_hot(0, model.vocab_size) * 100.0)  # OOV would always win
    generator = CharGenerator(model, vocabulary_file)
    assert generator.encode(tf.constant(["aZ€b"])).to_list() == [[1 + VOCABULARY.index("a"), 0, 0,
                                                                   1 + VOCABULARY.index("b")]]
    for text in generator.generate(["Z€", "a"], 30) + generator.generate("a", 30, 2.0, seed=1):
        assert set(text) <= set(VOCABULARY)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"prompts": "ab", "length": 0}, "length must be at least 1"),
        ({"prompts": "ab", "length": 5, "temperature": -0.5}, "temperature must be >= 0"),
        ({"prompts": ["ab", ""], "length": 5}, "non-empty prompt"),
    ],
)
def test_bad_generation_arguments_are_clear_errors(generator, kwargs, message):
    with pytest.raises(UsageError, match=message):
        generator.generate(**kwargs)


def test_vocabulary_of_another_model_is_rejected(tmp_path):
    path = tmp_path / "v.txt"
    vocab.write_vocabulary(path, VOCABULARY[:5])
    with pytest.raises(UsageError, match="has 6 ids but the model expects"):
        CharGenerator(make_model(), path)


def test_export_serves_same_greedy_text_in_a_tensorflow_only_process(
    generator, tmp_path, fresh_python
):
    version = export_saved_model(
        generator, "char_lstm", signatures={"serving_default": generator.serving_default},
        root=tmp_path / "saved_models",
    )
    assert version == tmp_path / "saved_models" / "char_lstm" / "1"
    assert (version / "assets" / "vocabulary.txt").is_file()
    prompts = ["ab c", "p", "hello."]
    expected = generator.generate(prompts, 30)

    served = tf.saved_model.load(str(version)).signatures["serving_default"]
    per_row = served(
        prompt=tf.constant(prompts), length=tf.constant([5, 30, 1]),
        temperature=tf.constant([0.0, 0.0, 1.0]),
    )["generated"].numpy()
    assert [len(s.decode()) for s in per_row] == [5, 30, 1]
    assert per_row[0].decode() == expected[0][:5] and per_row[1].decode() == expected[1]
    with pytest.raises(tf.errors.InvalidArgumentError, match="length must be at least 1"):
        served(prompt=tf.constant(["a"]), length=tf.constant(0), temperature=tf.constant(0.0))

    child = fresh_python(
        f"""
        import sys, tensorflow as tf
        served = tf.saved_model.load({str(version)!r}).signatures["serving_default"]
        out = served(prompt=tf.constant({prompts!r}), length=tf.constant(30),
                     temperature=tf.constant(0.0))["generated"].numpy()
        assert not any(m.startswith(("keras_models", "trainers", "tf_keras")) for m in sys.modules)
        print(repr([s.decode("utf-8") for s in out]))
        """
    )
    assert child.stdout.strip().splitlines()[-1] == repr(expected)


def test_non_finite_logits_are_one_clear_error_not_an_out_of_vocabulary_draw(
    vocabulary_file, tmp_path, capsys
):
    from trainers import cli

    model = make_model()
    model.dense.bias.assign(tf.fill(model.dense.bias.shape, float("nan")))
    diverged = CharGenerator(model, vocabulary_file)
    with pytest.raises(NonFiniteLogits, match="logits are not finite"):
        diverged.generate("ab", 5, temperature=1.0)
    version = export_saved_model(
        diverged, "char_lstm", signatures={"serving_default": diverged.serving_default},
        root=tmp_path,
    )
    assert cli.main(["text", "sample", "--model", str(version), "--temperature", "1"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"seqgraph text: error: {version}: the model's logits are not finite: its training "
        "diverged; train it again with a lower learning rate"
    ]
