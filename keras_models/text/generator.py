"""Text generation inside the graph, and the ``tf.Module`` that TensorFlow Serving runs.

For a batch of prompts ``p_b`` (lengths ``n_b``) and ``L`` characters to generate, one
``tf.while_loop`` advances every row one character per step with carried RNN states (cost linear
in ``n + L``): while ``t + 1 < n_b`` row ``b`` is fed its own prompt (its samples are discarded),
afterwards its previous sample. Row ``b`` returns the samples of steps ``n_b - 1 … n_b + L_b - 2``,
so prompts of different lengths share one batch. The out-of-vocabulary id gets logit ``-∞`` and
is never sampled; prompt characters outside the vocabulary map to it. Logits that are not finite
(weights of a diverged training) stop generation with an error carrying ``NON_FINITE_LOGITS``
instead of drawing an id outside the vocabulary.

The vocabulary travels inside the SavedModel as the asset ``vocabulary.txt`` (one code point per
line, line ``i`` = id ``i``, ``-1`` for the out-of-vocabulary id); two lookup tables built from it
turn code points into ids and back, so a process with only TensorFlow needs nothing else.

Signature ``serving_default(prompt: string[batch], length: int32, temperature: float32)
-> {"generated": string[batch]}``: ``length`` and ``temperature`` are scalars or one per prompt;
temperature 0 is greedy; ``generated`` is the continuation (the prompt is not repeated).
"""

from pathlib import Path

from keras_models.backend import tf

from keras_models.text import samplers
from keras_models.utils.errors import UsageError

REPLACEMENT_CHARACTER = 0xFFFD
NON_FINITE_LOGITS = "the model's logits are not finite: its training diverged"


class CharGenerator(tf.Module):
    """Generates text with a ``CharModel``; ``vocabulary_path`` is its vocabulary file.

    ``generate(prompts, length, temperature=0.0, seed=0, top_k=0)`` returns Python strings and
    is reproducible for a fixed ``seed``; ``serving_default`` (the export signature) draws a fresh
    seed per call.
    """

    def __init__(self, model, vocabulary_path, name=None):
        super().__init__(name=name)
        self.model = model
        lines = len(Path(vocabulary_path).read_text(encoding="ascii").split())
        if lines != model.vocab_size:
            raise UsageError(
                f"{vocabulary_path} has {lines} ids but the model expects {model.vocab_size}; "
                "use the vocabulary file written with this model"
            )
        index = tf.lookup.TextFileIndex
        self.ids_from_code_points = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                str(vocabulary_path), tf.int64, index.WHOLE_LINE, tf.int64, index.LINE_NUMBER
            ),
            default_value=0,
        )
        self.code_points_from_ids = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                str(vocabulary_path), tf.int64, index.LINE_NUMBER, tf.int64, index.WHOLE_LINE
            ),
            default_value=REPLACEMENT_CHARACTER,
        )
        self.oov_mask = tf.concat([[-float("inf")], tf.zeros(model.vocab_size - 1)], axis=0)
        model(tf.zeros((1, 1), tf.int32))  # build the cells so ``step`` can call them

    def encode(self, prompts):
        """Prompts (string ``[batch]``) → ragged ids ``[batch, (chars)]`` (int32)."""
        code_points = tf.cast(tf.strings.unicode_decode(prompts, "UTF-8"), tf.int64)
        return tf.cast(self.ids_from_code_points.lookup(code_points), tf.int32)

    def decode(self, ids):
        """Ragged ids ``[batch, (chars)]`` → strings ``[batch]``."""
        code_points = self.code_points_from_ids.lookup(tf.cast(ids, tf.int64))
        return tf.strings.unicode_encode(tf.cast(code_points, tf.int32), "UTF-8")

    def _generate(self, prompts, length, temperature, seed, top_k=0):
        prompt_ids = self.encode(prompts)
        prompt_lengths = tf.cast(prompt_ids.row_lengths(), tf.int32)
        batch = tf.shape(prompt_lengths)[0]
        lengths = tf.broadcast_to(tf.cast(length, tf.int32), [batch])
        temperature = tf.broadcast_to(tf.cast(temperature, tf.float32), [batch])
        checks = [
            tf.debugging.assert_positive(prompt_lengths, message="every prompt needs a character"),
            tf.debugging.assert_positive(lengths, message="length must be at least 1"),
            tf.debugging.assert_non_negative(temperature, message="temperature must be >= 0"),
        ]
        with tf.control_dependencies(checks):
            padded = prompt_ids.to_tensor()
        last_prompt_step = tf.shape(padded)[1] - 1
        steps = last_prompt_step + tf.reduce_max(lengths)
        any_sampling = tf.reduce_any(temperature > 0)

        def choose(logits, t):
            return tf.cond(
                any_sampling,
                lambda: samplers.sample(
                    logits, temperature, tf.random.experimental.stateless_fold_in(seed, t), top_k
                ),
                lambda: samplers.greedy(logits),  # all greedy: no random draws per step
            )

        def body(t, x, states, samples):
            logits, states = self.model.step(x, states)
            logits = tf.debugging.assert_all_finite(logits, NON_FINITE_LOGITS)
            next_id = choose(logits + self.oov_mask, t)
            prompt_next = tf.gather(padded, tf.minimum(t + 1, last_prompt_step), axis=1)
            x = tf.where(t + 1 < prompt_lengths, prompt_next, next_id)
            return t + 1, x, states, samples.write(t, next_id)

        _, _, _, samples = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (0, padded[:, 0], self.model.initial_states(batch), tf.TensorArray(tf.int32, steps)),
        )
        samples = tf.transpose(samples.stack())  # [batch, steps]
        positions = prompt_lengths[:, None] - 1 + tf.range(tf.reduce_max(lengths))[None, :]
        generated = tf.gather(samples, positions, batch_dims=1)
        return self.decode(tf.RaggedTensor.from_tensor(generated, lengths=lengths))

    @tf.function(reduce_retracing=True)
    def _generate_seeded(self, prompts, length, temperature, seed, top_k):
        return self._generate(prompts, length, temperature, seed, top_k)

    def generate(self, prompts, length, temperature=0.0, seed=0, top_k=0):
        """Continue each prompt by ``length`` characters; returns a list of Python strings."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts or any(not p for p in prompts):
            raise UsageError("every prompt needs at least one character; give a non-empty prompt")
        if int(length) < 1:
            raise UsageError(f"length must be at least 1, got {length}; pass --length 1 or more")
        if float(temperature) < 0:
            raise UsageError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
        if not 0 <= int(top_k) < self.model.vocab_size:
            raise UsageError(f"top-k must be in [0, {self.model.vocab_size - 1}], got {top_k}")
        out = self._generate_seeded(
            tf.constant(prompts), tf.constant(int(length)), tf.constant(float(temperature)),
            tf.constant([0, int(seed)], tf.int64), int(top_k),
        )
        return [s.decode("utf-8") for s in out.numpy()]

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="prompt"),
            tf.TensorSpec(None, tf.int32, name="length"),
            tf.TensorSpec(None, tf.float32, name="temperature"),
        ]
    )
    def serving_default(self, prompt, length, temperature):
        seed = tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64)
        return {"generated": self._generate(prompt, length, temperature, seed)}
