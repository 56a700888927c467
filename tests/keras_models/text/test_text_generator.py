"""Character model, samplers and in-graph generation (the export: test_text_serving.py)."""

from keras_models.backend import tf

import numpy as np
import pytest

from keras_models.models.char_language_model import CharModel
from keras_models.text import generator as generator_module
from keras_models.text import samplers
from keras_models.text import vocabulary as vocab
from keras_models.text.generator import CharGenerator
from keras_models.text.steps import FeatureMajorLSTM, steps_for
from keras_models.utils.errors import UsageError

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
        ids = samplers.sample(logits, temperature, tf.constant([1, 2])).numpy()
        expected = tf.nn.softmax(logits[0] / temperature).numpy()
        np.testing.assert_allclose(np.bincount(ids, minlength=4) / len(ids), expected, atol=0.015)


def test_top_k_samples_only_the_k_best():
    logits = tf.constant([[0.0, 3.0, 1.0, 2.9, -1.0]] * 500)
    ids = samplers.sample(logits, 1.0, tf.constant([0, 3]), top_k=2).numpy()
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
        ({"prompts": "ab", "length": 0}, "length must be in \\[1, 10000\\], got 0"),
        ({"prompts": "ab", "length": 5, "temperature": -0.5}, "temperature must be >= 0"),
        ({"prompts": "ab", "length": 10_001}, "length must be in \\[1, 10000\\]"),
        ({"prompts": "ab", "length": 5, "top_k": -1}, "top-k must be >= 0"),
        ({"prompts": "ab", "length": 5, "top_p": 0.0}, "top-p must be in \\(0, 1\\]"),
        ({"prompts": "ab", "length": 5, "stop": ["x"] * 17}, "stop must have one row or one per"),
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


def states_by_steps(model, prompt):
    """The states after ``prompt``, one ``CharModel.step`` per character, batch-major and
    flattened as the ``state`` of ``stream_start``."""
    ids = [int(i) for i in vocab.encode(prompt, VOCABULARY)]
    states = model.initial_states(1)
    for i in ids:
        _, states = model.step(tf.constant([i]), states)
    return np.concatenate([s.numpy()[0] for s in tf.nest.flatten(states)])


@pytest.mark.parametrize("cell", ["lstm", "keras_lstm", "peephole", "keras_gru"])
def test_reading_the_prompts_in_one_pass_equals_one_step_per_character(vocabulary_file, cell):
    generator = CharGenerator(make_model(cell), vocabulary_file)
    plain_lstm = isinstance(steps_for(generator.model), FeatureMajorLSTM)
    assert plain_lstm == (cell in ("lstm", "keras_lstm"))
    prompts = ["hello. ab c", "", "p", "dog.\nfig b", "Z€a"]  # lengths 11, 0, 1, 10, 3
    state = generator.stream_start(tf.constant(prompts))["state"].numpy()
    assert state.shape == (5, generator.state_size)
    for row, prompt in zip(state, prompts, strict=True):
        np.testing.assert_allclose(row, states_by_steps(generator.model, prompt), atol=2e-6)
    for same_length in (["ab c", "dog."], ["p"], [""], []):  # the path without masks
        state = generator.stream_start(tf.constant(same_length, tf.string))["state"].numpy()
        expected = [states_by_steps(generator.model, prompt) for prompt in same_length]
        np.testing.assert_allclose(state.reshape(-1), np.reshape(expected, -1), atol=2e-6)


def greedy_by_steps(model, prompt, length):
    """The argmax chain from the states after ``prompt`` (zero states when empty)."""
    ids = [int(i) for i in vocab.encode(prompt, VOCABULARY)]
    states = model.initial_states(1)
    for i in ids:
        _, states = model.step(tf.constant([i]), states)
    out = []
    logits = model.dense(states[-1][0]).numpy()[0]
    for _ in range(length):
        logits[0] = -np.inf
        out.append(int(np.argmax(logits)))
        step_logits, states = model.step(tf.constant([out[-1]]), states)
        logits = step_logits.numpy()[0]
    return "".join(VOCABULARY[i - 1] for i in out)


def test_an_empty_prompt_generates_from_the_zero_states_and_an_empty_batch_gives_nothing(
    generator
):
    assert generator.generate(["", "ab"], 15) == [
        greedy_by_steps(generator.model, "", 15), greedy_by_steps(generator.model, "ab", 15)]
    assert generator.generate([], 15) == []


def numpy_kept(logits, temperature, k, p):
    """The ids top-k then top-p keep: the smallest set of most likely ids of probability ≥ p."""
    scaled = logits / temperature
    order = np.argsort(-scaled, kind="stable")
    if k:
        order = order[:k]
    probabilities = np.exp(scaled[order] - scaled[order].max())
    probabilities /= probabilities.sum()
    size = len(order) if p >= 1 else int(np.searchsorted(np.cumsum(probabilities), p) + 1)
    return set(order[:size].tolist())


def test_top_k_and_top_p_keep_the_smallest_set_reaching_p():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 12)).astype(np.float32) * 2
    temperature = rng.choice([0.5, 1.0, 2.0], size=40).astype(np.float32)
    top_k = rng.choice([0, 1, 3, 12, 20], size=40).astype(np.int32)
    top_p = rng.choice([0.05, 0.3, 0.75, 0.9, 1.0], size=40).astype(np.float32)
    kept = samplers.kept_ids(tf.constant(logits), temperature, top_k, top_p).numpy()
    for row in range(40):
        expected = numpy_kept(logits[row], temperature[row], top_k[row], top_p[row])
        assert set(np.flatnonzero(kept[row]).tolist()) == expected, row


def test_filtered_sampling_draws_the_renormalised_kept_distribution():
    logits = np.array([2.0, 1.0, 0.5, 0.0, -1.0, -3.0], np.float32)
    batch = tf.constant(np.tile(logits, (20000, 1)))
    ids = samplers.sample(batch, 0.8, tf.constant([3, 4]), top_k=5, top_p=0.8).numpy()
    kept = sorted(numpy_kept(logits, 0.8, 5, 0.8))
    expected = np.zeros(6)
    expected[kept] = np.exp(logits[kept] / 0.8) / np.exp(logits[kept] / 0.8).sum()
    np.testing.assert_allclose(np.bincount(ids, minlength=6) / len(ids), expected, atol=0.015)
    # no filter: exactly the draws of plain temperature sampling with the same seed
    plain = samplers.sample(batch[:500], 0.8, tf.constant([3, 4])).numpy()
    unfiltered = samplers.sample(batch[:500], 0.8, tf.constant([3, 4]), top_k=0, top_p=1.0)
    assert (unfiltered.numpy() == plain).all()


def test_generation_ends_after_the_first_stop_string_of_its_row(generator):
    prompts = ["ab c", "p", "hello."]
    full = generator.generate(prompts, 40)
    stops = [full[0][5:7], full[1][12], "€"]  # the last never occurs
    stopped = generator.generate(prompts, 40, stop=stops)
    for text, whole in zip(stopped, full, strict=True):
        ends = [whole.find(s) + len(s) for s in stops if s in whole]
        assert text == whole[: min(ends, default=len(whole))]
    assert len(stopped[0]) <= 7  # every row stops at the first of all three


def test_the_seed_reproduces_a_sample(generator):
    first = generator.generate(["ab", "c"], 40, temperature=1.0, seed=7, top_p=0.9)
    assert generator.generate(["ab", "c"], 40, temperature=1.0, seed=7, top_p=0.9) == first
    assert generator.generate(["ab", "c"], 40, temperature=1.0, seed=8, top_p=0.9) != first


@pytest.mark.parametrize("layers", [2, 3])
def test_the_prompt_pass_in_blocks_equals_one_step_per_character(
    vocabulary_file, monkeypatch, layers
):
    monkeypatch.setattr(generator_module, "PROMPT_BLOCK", 2)  # several blocks per prompt
    tf.random.set_seed(1)
    model = CharModel(len(VOCABULARY) + 1, embedding_dim=8, units=16, num_layers=layers)
    generator = CharGenerator(model, vocabulary_file)
    prompts = ["hello. ab c", "", "p", "dog.\nfig b", "Z€a", "abcdefg"]  # lengths 11 … 7
    # the path without masks: a last block shorter, whole blocks only, fewer blocks than layers
    uniform = (["abcdefg", "gfedcba"], ["abcdefgh", "hgfedcba"], ["abc"], ["a"])
    for batch in (prompts, ["hello. ab c", "dog.\nfig b"], *uniform):
        state = generator.stream_start(tf.constant(batch))["state"].numpy()
        expected = [states_by_steps(model, prompt) for prompt in batch]
        np.testing.assert_allclose(state, expected, atol=2e-6)


def test_the_prompt_pass_at_the_export_sizes_equals_one_step_per_character(generator):
    """``PROMPT_BLOCK`` as exported: prompts of several blocks whose lengths are not multiples
    of it, of different lengths in one batch, and empty; one prompt alone, of whole blocks and
    not."""
    block = generator_module.PROMPT_BLOCK
    text = "hello. ab cdog.\nfig bpq " * (5 * block // 20)
    lengths = [3 * block + 5, block - 1, 0, 2 * block + 1]
    for batch in ([text[:n] for n in lengths], [text[:lengths[0]]], [text[:4 * block]]):
        state = generator.stream_start(tf.constant(batch))["state"].numpy()
        expected = [states_by_steps(generator.model, prompt) for prompt in batch]
        np.testing.assert_allclose(state, expected, atol=2e-5)


def test_generation_in_unrolled_steps_gives_the_text_and_states_of_one_step_per_character(
    generator
):
    """Lengths below, at and past ``UNROLL`` steps per loop iteration: the text of the argmax
    chain, and the states after prompt and text, both from ``CharModel.step``."""
    prompts, unroll = ["ab c", ""], generator_module.UNROLL
    start = generator.stream_start(tf.constant(prompts))["state"]
    for length in (1, unroll - 1, unroll, 2 * unroll + 3):
        out = generator.stream_next(state=start, length=tf.constant(length),
                                    temperature=tf.constant(0.0), top_k=tf.constant(0),
                                    top_p=tf.constant(1.0), seed=tf.constant(0, tf.int64))
        texts = [s.decode() for s in out["generated"].numpy()]
        assert texts == [greedy_by_steps(generator.model, p, length) for p in prompts]
        expected = [states_by_steps(generator.model, prompt + text)
                    for prompt, text in zip(prompts, texts, strict=True)]
        np.testing.assert_allclose(out["state"].numpy(), expected, atol=2e-5)
