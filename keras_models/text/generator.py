"""Text generation inside the graph, and the ``tf.Module`` that TensorFlow Serving runs.

For a batch of prompts ``p_b`` (lengths ``n_b``) and ``L`` characters to generate, one
``tf.while_loop`` advances every row one character per step with carried RNN states (cost linear
in ``n + L``): while ``t + 1 < n_b`` row ``b`` is fed its own prompt (its samples are discarded),
afterwards its previous sample. Row ``b`` returns the samples of steps ``n_b - 1 … n_b + L_b - 2``,
so prompts of different lengths share one batch. The out-of-vocabulary id gets logit ``-∞`` and
is never sampled; prompt characters outside the vocabulary map to it. Logits that are not finite
(weights of a diverged training) are never sampled from: ``generate`` raises ``NonFiniteLogits``
and the signature fails with an ``InvalidArgumentError`` saying so.

The vocabulary travels inside the SavedModel as the asset ``vocabulary.txt``
(``keras_models/text/vocabulary.py``), so a process with only TensorFlow needs nothing else.

Signature ``serving_default(prompt: string[batch], length: int32, temperature: float32)
-> {"generated": string[batch]}``: ``length`` and ``temperature`` are scalars or one per prompt;
temperature 0 is greedy; ``generated`` is the continuation (the prompt is not repeated).
"""

from keras_models.backend import tf

from keras_models.text import samplers
from keras_models.text.vocabulary import code_point_tables
from keras_models.utils.errors import NonFiniteLogits, UsageError

NON_FINITE_LOGITS = (
    "the model's logits are not finite: its training diverged; train it again with a lower "
    "learning rate"
)


class CharGenerator(tf.Module):
    """Generates text with a ``CharModel``; ``vocabulary_path`` is its vocabulary file.

    ``generate(prompts, length, temperature=0.0, seed=0, top_k=0)`` returns Python strings and
    is reproducible for a fixed ``seed``; ``serving_default`` (the export signature) draws a fresh
    seed per call.
    """

    def __init__(self, model, vocabulary_path, name=None):
        super().__init__(name=name)
        self.model = model
        self.ids_from_code_points, self.code_points_from_ids = code_point_tables(
            vocabulary_path, model.vocab_size)
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

        def body(t, x, states, samples, finite):
            logits, states = self.model.step(x, states)
            finite_now = tf.reduce_all(tf.math.is_finite(logits))
            logits = tf.where(tf.math.is_finite(logits), logits, tf.zeros_like(logits))
            next_id = choose(logits + self.oov_mask, t)
            prompt_next = tf.gather(padded, tf.minimum(t + 1, last_prompt_step), axis=1)
            x = tf.where(t + 1 < prompt_lengths, prompt_next, next_id)
            return t + 1, x, states, samples.write(t, next_id), finite & finite_now

        _, _, _, samples, finite = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (0, padded[:, 0], self.model.initial_states(batch), tf.TensorArray(tf.int32, steps),
             tf.constant(True)),
        )
        samples = tf.transpose(samples.stack())  # [batch, steps]
        positions = prompt_lengths[:, None] - 1 + tf.range(tf.reduce_max(lengths))[None, :]
        generated = tf.gather(samples, positions, batch_dims=1)
        return self.decode(tf.RaggedTensor.from_tensor(generated, lengths=lengths)), finite

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
        out, finite = self._generate_seeded(
            tf.constant(prompts), tf.constant(int(length)), tf.constant(float(temperature)),
            tf.constant([0, int(seed)], tf.int64), int(top_k),
        )
        if not finite:
            raise NonFiniteLogits(NON_FINITE_LOGITS)
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
        generated, finite = self._generate(prompt, length, temperature, seed)
        with tf.control_dependencies([tf.debugging.Assert(finite, [NON_FINITE_LOGITS])]):
            return {"generated": tf.identity(generated)}
