"""The text generator's export: served requests, bad ones, streaming and concurrent callers."""

import json
import threading
from pathlib import Path

from keras_models.backend import tf

import pytest
from test_text_generator import VOCABULARY, make_model

from keras_models.text import vocabulary as vocab
from keras_models.text.generator import CharGenerator
from keras_models.text.limits import ServingLimits
from keras_models.utils.errors import NonFiniteLogits
from trainers.core.export import export_saved_model

LIMITS = ServingLimits(max_length=50, max_prompt_length=40, max_batch=4)
PROMPTS = ["ab c", "p", "hello."]
DOC = Path(__file__).resolve().parents[3] / "docs" / "robustness.md"

# (signature, request (inputs beside the valid request's), the error's line). In the child,
# ``S`` is the export's state size and ``nan``, ``inf`` are floats.
BAD_REQUESTS = [
    ("generate", "length=0", "length must be in [1, 50] (max_length of this export), got 0"),
    ("generate", "length=-5", "length must be in [1, 50] (max_length of this export), got -5"),
    ("generate", "length=2147483647",
     "length must be in [1, 50] (max_length of this export), got 2147483647"),
    ("serving_default", "length=51",
     "length must be in [1, 50] (max_length of this export), got 51"),
    ("generate", "prompt=['a', 'b', 'c'], length=[3, 4]",
     "length must be one value or one per prompt (3 prompts), got shape [2]"),
    ("generate", "length=[[5]]", "length must be one value or one per prompt (1 prompts), "
     "got shape [1 1]"),
    ("generate", "temperature=nan",
     "temperature must be a finite number >= 0 (0 is greedy), got nan"),
    ("serving_default", "temperature=inf",
     "temperature must be a finite number >= 0 (0 is greedy), got inf"),
    ("generate", "temperature=[0.5, -1.0], prompt=['a', 'b']",
     "temperature must be a finite number >= 0 (0 is greedy), got [0.5 -1]"),
    ("generate", "prompt=[b'ab\\xffc']",
     "prompt is not valid UTF-8 (number 0 of the batch, from 0); send UTF-8"),
    ("generate", "prompt=['a' * 41]",
     "prompt must have at most 40 characters (max_prompt_length of this export), got 41"),
    ("generate", "prompt=[b'\\x80' * 200]",
     "prompt must have at most 40 characters (max_prompt_length of this export), got 200 bytes"),
    ("generate", "prompt=['a'] * 5", "prompt: at most 4 rows per request (max_batch of this "
     "export), got 5"),
    ("generate", "top_k=-1", "top_k must be >= 0 (0 keeps every id), got -1"),
    ("generate", "top_p=0.0", "top_p must be in (0, 1] (1 keeps every id), got 0"),
    ("generate", "top_p=nan", "top_p must be in (0, 1] (1 keeps every id), got nan"),
    ("generate", "stop=[[['.']]]", "stop must be a string, one per prompt, or [prompts, stops]; "
     "got shape [1 1 1]"),
    ("generate", "stop=[['.'] * 17]", "stop must have one row or one per prompt (1 prompts) of "
     "at most 16 strings, got shape [1 17]"),
    ("generate", "stop=['x' * 65]", "stop must have at most 64 characters (each), got 65"),
    ("generate", "stop=[b'\\xfe']", "stop is not valid UTF-8 (number 0 of the batch, from 0); "
     "send UTF-8"),
    ("stream_start", "prompt=[b'\\xc3']",
     "prompt is not valid UTF-8 (number 0 of the batch, from 0); send UTF-8"),
    ("stream_next", "state=[[0.0] * (S + 1)]", "state must have 64 columns (the state size of this "
     "model, from stream_start), got shape [1 65]"),
    ("stream_next", "state=[[nan] * S]", "state must be finite"),
    ("stream_next", "state=[[0.0] * S] * 5", "state: at most 4 rows per request (max_batch of this "
     "export), got 5"),
    ("stream_next", "length=100", "length must be in [1, 50] (max_length of this export), got 100"),
]
VALID = {  # the valid request of each signature; a bad request replaces some of its inputs
    "serving_default": "prompt=['ab c'], length=20, temperature=0.0",
    "generate": "prompt=['ab c'], length=20, temperature=0.0, top_k=0, top_p=1.0, seed=0, "
                "stop=''",
    "stream_start": "prompt=['ab c']",
    "stream_next": "state=[[0.0] * S], length=20, temperature=0.0, top_k=0, top_p=1.0, seed=0",
}


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """(generator, export folder) of a tiny model with small limits."""
    root = tmp_path_factory.mktemp("serving")
    vocab.write_vocabulary(root / "vocabulary.txt", VOCABULARY)
    generator = CharGenerator(make_model(), root / "vocabulary.txt", LIMITS)
    version = export_saved_model(generator, "char_lstm", signatures=generator.export_signatures(),
                                 root=root / "saved_models")
    return generator, version


@pytest.fixture(scope="module")
def served(export):
    return tf.saved_model.load(str(export[1])).signatures


def test_per_prompt_inputs_stop_strings_and_seeds(export, served):
    generator, _ = export
    expected = generator.generate(PROMPTS, 30)
    per_row = served["serving_default"](
        prompt=tf.constant(PROMPTS), length=tf.constant([5, 30, 1]),
        temperature=tf.constant([0.0, 0.0, 1.0]))["generated"].numpy()
    assert [len(s.decode()) for s in per_row] == [5, 30, 1]
    assert per_row[0].decode() == expected[0][:5] and per_row[1].decode() == expected[1]
    request = dict(prompt=tf.constant(PROMPTS), length=tf.constant(30),
                   temperature=tf.constant([0.0, 1.0, 1.0]), top_k=tf.constant([0, 3, 0]),
                   top_p=tf.constant(0.9), seed=tf.constant(11, tf.int64),
                   stop=tf.constant([[expected[0][3:5]], [""], ["€"]]))
    first = served["generate"](**request)
    texts = [s.decode() for s in first["generated"].numpy()]
    assert texts[0] == expected[0][: expected[0].find(expected[0][3:5]) + 2]
    assert [len(text) for text in texts[1:]] == [30, 30]
    assert first["stopped"].numpy().tolist() == [True, False, False]
    again = served["generate"](**request)["generated"].numpy()
    assert again.tolist() == first["generated"].numpy().tolist()
    empty = served["generate"](**{**request, "prompt": tf.constant([], tf.string),
                                  "temperature": tf.constant(1.0), "top_k": tf.constant(0),
                                  "stop": tf.constant("")})
    assert empty["generated"].shape == (0,) and empty["stopped"].shape == (0,)


def test_streaming_in_chunks_reproduces_the_one_shot_generation(export, served):
    generator, _ = export
    prompts = ["ab c", "", "hello. dog"]
    expected = generator.generate(prompts, 47)
    state = served["stream_start"](prompt=tf.constant(prompts))["state"]
    pieces = []
    for chunk in (1, 20, 20, 6):
        out = served["stream_next"](state=state, length=tf.constant(chunk),
                                    temperature=tf.constant(0.0), top_k=tf.constant(0),
                                    top_p=tf.constant(1.0), seed=tf.constant(0, tf.int64))
        state = out["state"]
        pieces.append([s.decode() for s in out["generated"].numpy()])
    assert ["".join(row) for row in zip(*pieces, strict=True)] == expected


def test_eight_threads_each_get_their_own_answer(export, served):
    generator, _ = export
    prompts = ["ab c", "p", "hello.", "dog", "fig. a", "jk", "mno p", "e"]
    lengths = [5 + 3 * i for i in range(8)]
    expected = [generator.generate(p, n)[0] for p, n in zip(prompts, lengths, strict=True)]
    results, barrier = [None] * 8, threading.Barrier(8)

    def call(i):
        barrier.wait()
        for _ in range(3):
            out = served["serving_default"](prompt=tf.constant([prompts[i]]),
                                            length=tf.constant(lengths[i]),
                                            temperature=tf.constant(0.0))["generated"]
            results[i] = (results[i] or []) + [out.numpy()[0].decode()]

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [[text] * 3 for text in expected]


def test_a_tensorflow_only_process_serves_the_same_text_and_survives_every_bad_request(
    export, fresh_python
):
    """The export in a process with only TensorFlow: the in-process model's greedy text, the
    limits, then each bad request fails alone and the next valid request gets the same answer."""
    generator, version = export
    assert (version / "assets" / "vocabulary.txt").is_file()
    good = generator.generate(["ab c"], 20)[0]
    expected = generator.generate(PROMPTS, 30)
    child = fresh_python(
        f"""
        import json, sys, tensorflow as tf
        served = tf.saved_model.load({str(version)!r}).signatures
        batch = served["serving_default"](prompt=tf.constant({PROMPTS!r}), length=tf.constant(30),
                                          temperature=tf.constant(0.0))["generated"].numpy()
        print(json.dumps([[s.decode("utf-8") for s in batch],
                          {{k: int(v) for k, v in served["limits"]().items()}}]))
        S, nan, inf = int(served["limits"]()["state_size"]), float("nan"), float("inf")
        types = dict(prompt=tf.string, length=tf.int32, temperature=tf.float32, top_k=tf.int32,
                     top_p=tf.float32, seed=tf.int64, stop=tf.string, state=tf.float32)
        valid = {VALID!r}

        def call(name, inputs):
            values = eval(f"dict({{valid[name]}})")
            values.update(eval(f"dict({{inputs}})"))
            return served[name](**{{k: tf.constant(v, types[k]) for k, v in values.items()}})

        def answer():
            out = call("generate", "")["generated"].numpy()[0].decode()
            state = call("stream_start", "")["state"].numpy().tolist()
            return out, call("stream_next", f"state={{state}}")["generated"].numpy()[0].decode()

        first, lines = answer(), []
        for name, inputs in {[case[:2] for case in BAD_REQUESTS]!r}:
            try:
                call(name, inputs)
                lines.append("no error")
            except tf.errors.InvalidArgumentError as error:
                failed = [line.strip() for line in error.message.splitlines()
                          if line.strip().startswith("assertion failed:")]
                lines.append(failed[0] if failed else error.message)
            lines.append(answer() == first)
        assert not any(m.startswith(("keras_models", "trainers", "tf_keras")) for m in sys.modules)
        print(json.dumps([first, lines]))
        """
    )
    (batch, limits), (first, lines) = map(json.loads, child.stdout.strip().splitlines()[-2:])
    assert batch == expected
    assert limits == {"max_length": 50, "max_prompt_length": 40, "max_batch": 4, "max_stops": 16,
                      "max_stop_length": 64, "state_size": 64}
    assert first == [good, good]
    for (name, inputs, message), line, answered in zip(
        BAD_REQUESTS, lines[::2], lines[1::2], strict=True
    ):
        assert line == f"assertion failed: [{message}]", (name, inputs, line)
        assert answered is True, (name, inputs)


def test_the_bad_requests_are_documented():
    section = DOC.read_text(encoding="utf-8").split("## Served requests", 1)[1].split("\n## ")[0]
    for name, inputs, message in BAD_REQUESTS:
        assert f"| `{name}` | `{inputs}` | {message} |" in section, (name, inputs)
    assert len(BAD_REQUESTS) >= 15


def test_non_finite_logits_are_one_clear_error_not_an_out_of_vocabulary_draw(tmp_path, capsys):
    from trainers import cli

    vocab.write_vocabulary(tmp_path / "vocabulary.txt", VOCABULARY)
    model = make_model()
    model.dense.bias.assign(tf.fill(model.dense.bias.shape, float("nan")))
    diverged = CharGenerator(model, tmp_path / "vocabulary.txt")
    with pytest.raises(NonFiniteLogits, match="logits are not finite"):
        diverged.generate("ab", 5, temperature=1.0)
    version = export_saved_model(diverged, "char_lstm", signatures=diverged.export_signatures(),
                                 root=tmp_path)
    assert cli.main(["text", "sample", "--model", str(version), "--temperature", "1"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"seqgraph text: error: {version}: the model's logits are not finite: its training "
        "diverged; train it again with a lower learning rate"
    ]
