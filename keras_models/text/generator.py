"""Text generation inside the graph, and the ``tf.Module`` that TensorFlow Serving runs.

For a batch of prompts ``p_b`` (``n_b`` characters each, possibly 0) and ``L_b`` characters to
generate per row:

1. **Reading the prompts**: for a stack of plain LSTMs, in blocks of ``PROMPT_BLOCK``
   characters (``_read_pipelined``): in iteration ``k`` of one loop, layer ``l`` reads block
   ``k − l`` (its input terms one gather or one product for the whole block, then one recurrent
   product per character), so the layers' chains of an iteration are independent and run side
   by side, each running on into the next iteration as soon as its own inputs are ready. Other
   cells: one ``tf.while_loop`` in which layer ``l`` is on character ``t − l`` (``_read``).
   Row ``b``'s states change only while the position is inside its ``n_b`` characters, so each
   row keeps the states of its own last character, and an empty prompt keeps the zero states.
   The same as ``CharModel.step`` once per character (tested), without logits or sampling.
2. **Generating**: a second loop draws a character from the logits of the current states
   (``keras_models/text/samplers.py``) and feeds it: per step one product per layer, the output
   layer, the draw. The loop is built once per sampling mode (greedy, temperature, temperature
   with top-k/top-p; each with or without stop strings) and one ``tf.switch_case`` per request
   picks it, so no step pays for a mode its request does not use.

Both loops run several characters per loop iteration: generation without stop strings
``UNROLL`` (``_in_blocks``), the prompt pass a block per layer. At batch 1 a loop's own ops per
iteration (one per loop variable and captured weight) cost about as much as a step, so
unrolled, a generated character runs about 37 ops of the graph instead of 84.

The step functions (``keras_models/text/steps.py``) run every plain-LSTM stack feature-major with
one product per layer per step; other cells run through their own Keras cells. The
out-of-vocabulary id is never generated; prompt characters outside the vocabulary map to it. If
the logits of the final states are not finite (weights of a diverged training), the request fails
with ``NON_FINITE_LOGITS`` instead of returning characters drawn from them.

Every input is checked inside the graph before anything sized by it is allocated, and a bad one
fails the request with an ``InvalidArgumentError`` naming the input and its allowed range; the
limits (``ServingLimits``) are fixed at export and reported by the ``limits`` signature. The
vocabulary travels inside the SavedModel as the asset ``vocabulary.txt``.

Signatures (``signatures()``; ``docs/serving.md`` has the details and a client):

- ``serving_default(prompt, length, temperature) -> generated``
- ``generate(prompt, length, temperature, top_k, top_p, seed, stop) -> generated, stopped``
- ``stream_start(prompt) -> state`` and ``stream_next(state, length, temperature, top_k, top_p,
  seed) -> generated, state``: a generation in chunks, each continuing from the state the last
  one returned
- ``limits() -> max_length, max_prompt_length, max_batch, max_stops, max_stop_length,
  state_size``
"""

import dataclasses

from keras_models.backend import tf

from keras_models.text import samplers
from keras_models.text.limits import MAX_STOP_LENGTH, MAX_STOPS, ServingLimits
from keras_models.text.steps import FeatureMajorLSTM, steps_for
from keras_models.text.vocabulary import code_point_tables
from keras_models.utils.errors import NonFiniteLogits, UsageError, require

NON_FINITE_LOGITS = (
    "the model's logits are not finite: its training diverged; train it again with a lower "
    "learning rate"
)
UTF8_BYTES = 4  # at most, per character
UNROLL = 8  # steps per loop iteration of generation without stop strings
PROMPT_BLOCK = 32  # characters per layer and loop iteration of the prompt pass

PROMPT = tf.TensorSpec([None], tf.string, name="prompt")
LENGTH = tf.TensorSpec(None, tf.int32, name="length")
TEMPERATURE = tf.TensorSpec(None, tf.float32, name="temperature")
TOP_K = tf.TensorSpec(None, tf.int32, name="top_k")
TOP_P = tf.TensorSpec(None, tf.float32, name="top_p")
SEED = tf.TensorSpec([], tf.int64, name="seed")
STOP = tf.TensorSpec(None, tf.string, name="stop")
STATE = tf.TensorSpec([None, None], tf.float32, name="state")


def _check(condition, template, *values):
    """An assertion whose message is ``template`` with ``values`` in its ``{}``."""
    return tf.debugging.Assert(condition, [tf.strings.format(template, values, summarize=4)])


def _first_true(flags):
    """The index of the first true element of ``flags`` (its size when there is none)."""
    return tf.argmax(tf.concat([tf.cast(flags, tf.int32), [1]], 0), output_type=tf.int32)


def _in_blocks(step, stop, unroll, carried, empty):
    """Run ``output, carried = step(t, carried)`` for ``t`` in ``[0, stop)``: ``unroll`` steps
    per iteration of one loop, then the remaining ``stop mod unroll`` one per iteration of a
    second. A loop's own ops per iteration cost about as much as a step's.

    Returns the final ``carried`` and the outputs stacked, ``[stop, ...]``; ``empty`` is the
    zero-step result, ``[0, ...]`` (the stack of no outputs has no known shape).
    """
    def run(begin, end, count, carried):
        def body(t, carried, kept):
            chosen = []
            for offset in range(count):
                output, carried = step(t + offset, carried)
                chosen.append(output)
            return t + count, carried, kept.write((t - begin) // count, tf.stack(chosen))

        kept = tf.TensorArray(empty.dtype, size=(end - begin) // count,
                              element_shape=[count, *empty.shape[1:]])
        _, carried, kept = tf.while_loop(lambda t, *_: t < end, body, (begin, carried, kept))
        return carried, tf.cond(end > begin, kept.concat, lambda: empty)

    middle = stop // unroll * unroll
    carried, unrolled = run(0, middle, unroll, carried)
    carried, rest = run(middle, stop, 1, carried)
    return carried, tf.concat([unrolled, rest], 0)


class CharGenerator(tf.Module):
    """Generates text with a ``CharModel``; ``vocabulary_path`` is its vocabulary file, ``limits``
    the ``ServingLimits`` of the export.

    ``generate(prompts, length, temperature=0.0, seed=0, top_k=0, top_p=1.0, stop="")`` returns
    Python strings and is reproducible for a fixed ``seed``; ``serving_default`` draws a fresh
    seed per call.
    """

    def __init__(self, model, vocabulary_path, limits=None, name=None):
        super().__init__(name=name)
        limits = limits or ServingLimits()
        limits.validate()
        self.serving_limits = limits
        self.ids_from_code_points, self.code_points_from_ids = code_point_tables(
            vocabulary_path, model.vocab_size)
        model(tf.zeros((1, 1), tf.int32))  # build the cells so the steps can call them
        # The export needs the model's variables, not its Keras functions (tracing those for
        # the SavedModel took most of an export's time): track the variables, hold the model.
        self.model_variables = list(model.variables)
        self._model = _Held(model)
        self.state_size = sum(sum(tf.nest.flatten(rnn.cell.state_size)) for rnn in model.rnns)

    @property
    def model(self):
        """The ``CharModel`` (not part of the SavedModel; its variables are)."""
        return self._model.value

    # ----- text and ids

    def encode(self, prompts):
        """Prompts (string ``[batch]``) → ragged ids ``[batch, (chars)]`` (int32); invalid UTF-8
        becomes U+FFFD (unknown: the out-of-vocabulary id)."""
        return self._ids(tf.strings.unicode_decode(prompts, "UTF-8", errors="replace"))

    def _ids(self, code_points):
        return tf.cast(self.ids_from_code_points.lookup(tf.cast(code_points, tf.int64)), tf.int32)

    def decode(self, ids):
        """Ragged ids ``[batch, (chars)]`` → strings ``[batch]``."""
        code_points = self.code_points_from_ids.lookup(tf.cast(ids, tf.int64))
        return tf.strings.unicode_encode(tf.cast(code_points, tf.int32), "UTF-8")

    # ----- request checks

    def _text_checks(self, name, texts, max_characters, what):
        """Checks of the byte length of ``texts`` (before decoding), then the decoded code points
        and the checks of their validity and length (to run before using them)."""
        limit = f"at most {max_characters} characters ({what})"
        too_long = _check(
            tf.reduce_all(tf.strings.length(texts) <= UTF8_BYTES * max_characters),
            f"{name} must have {limit}, got {{}} bytes", tf.reduce_max(tf.strings.length(texts)))
        with tf.control_dependencies([too_long]):
            code_points = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")
            kept = tf.strings.unicode_decode(texts, "UTF-8", errors="ignore").row_lengths()
        counts = code_points.row_lengths()
        checks = [
            _check(tf.reduce_all(kept == counts),
                   f"{name} is not valid UTF-8 (number {{}} of the batch, from 0); send UTF-8",
                   _first_true(kept != counts)),
            _check(tf.reduce_all(counts <= max_characters), f"{name} must have {limit}, got {{}}",
                   tf.reduce_max(counts)),
        ]
        return code_points, checks

    def _batch_check(self, name, batch):
        most = self.serving_limits.max_batch
        return _check(batch <= most, f"{name}: at most {most} rows per request (max_batch of this "
                      "export), got {}", batch)

    @staticmethod
    def _per_row(name, value, batch):
        """``value`` (a scalar or ``[batch]``) as ``[batch]``, after the check of its shape."""
        size = tf.size(value)
        shape = _check((tf.rank(value) <= 1) & ((size == 1) | (size == batch)),
                       f"{name} must be one value or one per prompt ({{}} prompts), got shape {{}}",
                       batch, tf.shape(value))
        with tf.control_dependencies([shape]):
            return tf.broadcast_to(tf.reshape(value, [-1]), [batch])

    def _sampling_checks(self, length, temperature, top_k, top_p):
        most = self.serving_limits.max_length
        return [
            _check(tf.reduce_all((length >= 1) & (length <= most)),
                   f"length must be in [1, {most}] (max_length of this export), got {{}}", length),
            _check(tf.reduce_all(tf.math.is_finite(temperature) & (temperature >= 0)),
                   "temperature must be a finite number >= 0 (0 is greedy), got {}", temperature),
            _check(tf.reduce_all(top_k >= 0), "top_k must be >= 0 (0 keeps every id), got {}",
                   top_k),
            _check(tf.reduce_all((top_p > 0) & (top_p <= 1)),
                   "top_p must be in (0, 1] (1 keeps every id), got {}", top_p),
        ]

    def _stop_ids(self, stop, batch):
        """``stop`` (a string, one per prompt, or ``[batch, stops]``) → ids ``[batch, stops,
        width]`` reversed (last character first, ``-1`` after the end), and a mask of the
        non-empty stops ``[batch, stops]``, after the checks of its shape and strings."""
        rank = tf.rank(stop)
        rank_ok = _check(rank <= 2, "stop must be a string, one per prompt, or [prompts, stops]; "
                         "got shape {}", tf.shape(stop))
        with tf.control_dependencies([rank_ok]):
            stop = tf.reshape(stop, tf.concat([tf.shape(stop), tf.ones([2 - rank], tf.int32)], 0))
        rows, stops = tf.shape(stop)[0], tf.shape(stop)[1]
        shape_ok = _check(((rows == 1) | (rows == batch)) & (stops <= MAX_STOPS),
                          f"stop must have one row or one per prompt ({{}} prompts) of at most "
                          f"{MAX_STOPS} strings, got shape {{}}", batch, tf.shape(stop))
        with tf.control_dependencies([shape_ok]):
            flat = tf.reshape(tf.broadcast_to(stop, [batch, stops]), [-1])
        code_points, checks = self._text_checks("stop", flat, MAX_STOP_LENGTH, "each")
        with tf.control_dependencies(checks):
            ids = self._ids(code_points).to_tensor(default_value=-1)
            reversed_ids = tf.reverse_sequence(ids, code_points.row_lengths(), seq_axis=1)
        width = tf.shape(reversed_ids)[1]
        return (tf.reshape(reversed_ids, [batch, stops, width]),
                tf.reshape(code_points.row_lengths() > 0, [batch, stops]))

    # ----- the two loops

    @staticmethod
    def _read(steps, ids, lengths, states):
        """The states after each row's prompt: ``ids [time, batch]`` (padded), ``lengths``.

        Iteration ``t`` runs layer ``l`` on character ``t − l`` where ``0 ≤ t − l < lengths``.
        When every prompt has the padded length, the iterations in which every layer is inside
        its prompt (``layers − 1 ≤ t < time``) run without those masks.
        """
        prompt_steps, layers = tf.shape(ids)[0], len(states)
        end = tf.where(prompt_steps > 0, prompt_steps + layers - 1, 0)
        ends = [lengths + index for index in range(layers)]  # layer index reads until t < this

        def run(start, stop, states, masked):
            def body(t, states):
                x = steps.embed(tf.gather(ids, tf.minimum(t, prompt_steps - 1)))
                new_states = []
                for index, state in enumerate(states):
                    inputs = x if index == 0 else states[index - 1][0]
                    _, updated = steps.layer(index, inputs, state)
                    if masked:
                        active = (t >= index) & (t < ends[index])
                        updated = [steps.select(active, new, old)
                                   for new, old in zip(updated, state, strict=True)]
                    new_states.append(tuple(updated))
                return t + 1, new_states

            return tf.while_loop(lambda t, _: t < stop, body, (start, states))[1]

        uniform = tf.reduce_all(lengths == prompt_steps)
        first = tf.minimum(layers - 1, end)
        last = tf.maximum(prompt_steps, first)  # [first, last): every layer inside its prompt
        states = run(0, first, states, True)
        states = tf.cond(uniform, lambda: run(first, last, states, False),
                         lambda: run(first, last, states, True))
        return run(last, end, states, True)

    @staticmethod
    def _read_pipelined(steps, ids, lengths, states):
        """``_read`` for a ``FeatureMajorLSTM``: the prompt in blocks of ``PROMPT_BLOCK``
        characters, layer ``l`` on block ``k − l`` in iteration ``k`` of one loop.

        A block's input terms are one gather (the first layer) or one product of the outputs the
        layer below gave for that block in the iteration before; each character then costs the
        layer one recurrent product ``h U`` and its gates, batch-major (``[batch, 4H]``: at
        batch 1 a vector-matrix product, which TensorFlow's CPU matmul runs faster than ``Uᵀ h``).
        The layers' chains of one iteration are independent, so the executor runs them side by
        side, and each chain runs on into the next iteration as soon as its own inputs are
        ready. Rows change state only at positions ``0 ≤ p < length``: the iterations in which
        a layer's block is partly outside a prompt (the first ``layers − 1``, the last
        ``layers − 1``, or ``layers`` when the last block is short, and all of them unless every
        prompt has the padded length) run with masks.
        """
        prompt_steps, batch, layers = tf.shape(ids)[0], tf.shape(ids)[1], len(states)
        width = PROMPT_BLOCK
        blocks = (prompt_steps + width - 1) // width
        end = tf.where(blocks > 0, blocks + layers - 1, 0)
        # every block a layer may read is inside the padded ids
        ids = tf.pad(ids, [[0, (blocks + layers) * width - prompt_steps], [0, 0]])

        def body(k, states, below, masked):
            new_states, outputs = [], []
            for index, (h, c) in enumerate(states):
                first = (k - index) * width  # the position of the block's first character
                x = ids[first:first + width] if index == 0 else below[index - 1]
                kept = []
                for offset, z in enumerate(tf.unstack(steps.sequence_inputs(index, x),
                                                      num=width)):
                    new_h, new_c = steps.cell(z + steps.recurrent_batch_major(index, h), c,
                                              axis=1)
                    if masked:
                        position = first + offset
                        active = ((position >= 0) & (position < lengths))[:, None]
                        new_h, new_c = tf.where(active, new_h, h), tf.where(active, new_c, c)
                    h, c = new_h, new_c
                    kept.append(h)
                new_states.append((h, c))
                if index < layers - 1:  # no layer reads the last one's outputs
                    outputs.append(tf.stack(kept))
            return k + 1, new_states, outputs

        def run(start, stop, states, below, masked):
            return tf.while_loop(lambda k, *_: k < stop,
                                 lambda k, states, below: body(k, states, below, masked),
                                 (start, states, below))[1:]

        states = [tuple(tf.transpose(s) for s in state) for state in states]  # [batch, H]
        below = [tf.zeros([width, batch, state[0].shape[1]]) for state in states[:-1]]
        uniform = tf.reduce_all(lengths == prompt_steps)
        first = tf.minimum(layers - 1, end)
        # [first, last): every layer on a whole block inside every prompt
        last = tf.maximum(tf.where(uniform, prompt_steps // width, 0), first)
        states, below = run(0, first, states, below, True)
        states, below = run(first, last, states, below, False)
        states, _ = run(last, end, states, below, True)
        return [tuple(tf.transpose(s) for s in state) for state in states]

    @staticmethod
    def _continue(steps, states, lengths, choose, stops=None):
        """Generate ``lengths [batch]`` characters from ``states``, each drawn by ``choose(logits,
        t)``; with ``stops`` (``_stop_ids``), a row also ends after its first stop string.

        Returns ids ``[batch, steps]``, each row's length, whether it stopped, the final states.
        Without ``stops``, the steps run ``UNROLL`` per loop iteration (``_in_blocks``).
        """
        batch = tf.shape(lengths)[0]
        total = tf.maximum(tf.reduce_max(lengths), 1)  # one (empty) step for an empty batch

        def step(t, states):
            next_ids = choose(steps.logits(states[-1][0]), t)
            x, new_states = steps.embed(next_ids), []
            for index, state in enumerate(states):
                x, state = steps.layer(index, x, state)
                new_states.append(state)
            return next_ids, new_states

        if stops is None:
            states, ids = _in_blocks(step, total, UNROLL, states, tf.zeros([0, batch], tf.int32))
            return tf.transpose(ids), lengths, tf.zeros([batch], tf.bool), states

        ids = tf.TensorArray(tf.int32, size=total)

        stop_ids, valid = stops
        width, beyond_stop = tf.shape(stop_ids)[2], stop_ids < 0

        def body(t, states, ids, recent, ended, kept, stopped):
            next_ids, states = step(t, states)
            ids = ids.write(t, next_ids)
            recent = tf.concat([next_ids[:, None], recent], axis=1)[:, :width]
            matches = tf.reduce_all((recent[:, None, :] == stop_ids) | beyond_stop, axis=-1)
            hit = tf.reduce_any(matches & valid, axis=-1) & ~ended
            return (t + 1, states, ids, recent, ended | hit | (t + 1 >= lengths),
                    tf.where(hit, t + 1, kept), stopped | hit)

        start = (0, states, ids, -tf.ones([batch, width], tf.int32), tf.zeros([batch], tf.bool),
                 lengths, tf.zeros([batch], tf.bool))
        _, states, ids, _, _, kept, stopped = tf.while_loop(
            lambda t, *rest: (t < total) & ~tf.reduce_all(rest[3]), body, start)
        return tf.transpose(ids.stack()), kept, stopped, states

    # ----- a request

    def _choosers(self, steps, temperature, top_k, top_p, seed):
        """The sampling modes (greedy, temperature, filtered) as ``choose(logits, t)``, and the
        index of the one this request needs."""
        seed = tf.stack([seed, tf.constant(0, tf.int64)])

        def draw(filtered):
            def choose(logits, t):
                step_seed = tf.random.experimental.stateless_fold_in(seed, t)
                return samplers.sample(steps.batch_major(logits), temperature, step_seed,
                                       *((top_k, top_p) if filtered else ()))
            return choose

        unfiltered = tf.reduce_all(((top_k == 0) | (top_k >= self.model.vocab_size))
                                   & (top_p >= 1))
        mode = tf.where(tf.reduce_all(temperature == 0), 0, tf.where(unfiltered, 1, 2))
        return [lambda logits, t: steps.greedy(logits), draw(False), draw(True)], mode

    def _generate(self, steps, states, length, temperature, top_k, top_p, seed, stop=None):
        """Continue ``states``: returns strings, whether each stopped, the final states and
        whether the final logits are finite. ``stop`` None builds no stop-string loops."""
        choosers, mode = self._choosers(steps, temperature, top_k, top_p, seed)
        stops = None if stop is None else self._stop_ids(stop, tf.shape(length)[0])
        branches = [lambda choose=choose: self._continue(steps, states, length, choose)
                    for choose in choosers]
        if stops is not None:
            branches += [lambda choose=choose: self._continue(steps, states, length, choose, stops)
                         for choose in choosers]
            mode += 3 * tf.cast(tf.reduce_any(stops[1]), tf.int32)
        ids, kept, stopped, states = tf.switch_case(mode, branches)
        generated = self.decode(tf.RaggedTensor.from_tensor(ids, lengths=kept))
        logits = steps.logits(states[-1][0], oov=True)
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(x))
                                for x in [logits, *tf.nest.flatten(states)]])
        return generated, stopped, states, finite

    def _prompt_states(self, steps, prompt):
        """The states after each prompt, after the checks of ``prompt``."""
        batch = tf.shape(prompt)[0]
        with tf.control_dependencies([self._batch_check("prompt", batch)]):
            code_points, checks = self._text_checks(
                "prompt", prompt, self.serving_limits.max_prompt_length,
                "max_prompt_length of this export")
        with tf.control_dependencies(checks):
            ids = self._ids(code_points)
            padded = tf.transpose(ids.to_tensor())  # [time, batch]
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        read = self._read_pipelined if isinstance(steps, FeatureMajorLSTM) else self._read
        return read(steps, padded, lengths, steps.initial(batch))

    def _sampling_inputs(self, batch, length, temperature, top_k, top_p, checks):
        """``length``, ``temperature``, ``top_k`` and ``top_p`` as ``[batch]``, after ``checks``
        and the checks of their shapes and values."""
        with tf.control_dependencies(checks):
            per_row = [self._per_row(name, value, batch) for name, value in
                       (("length", length), ("temperature", temperature), ("top_k", top_k),
                        ("top_p", top_p))]
        with tf.control_dependencies(self._sampling_checks(length, temperature, top_k, top_p)):
            return [tf.identity(value) for value in per_row]

    def _request(self, prompt, length, temperature, top_k, top_p, seed, stop):
        batch = tf.shape(prompt)[0]
        per_row = self._sampling_inputs(batch, length, temperature, top_k, top_p,
                                        [self._batch_check("prompt", batch)])
        steps = steps_for(self.model)
        states = steps.unpack(self.stream_start(prompt)["state"])  # one traced prompt pass
        generated, stopped, _, finite = self._generate(steps, states, *per_row, seed, stop)
        return _finite_or_fail(finite, {"generated": generated, "stopped": stopped})

    # ----- signatures

    @tf.function(input_signature=[PROMPT, LENGTH, TEMPERATURE])
    def serving_default(self, prompt, length, temperature):
        seed = tf.random.uniform([], maxval=tf.int64.max, dtype=tf.int64)
        out = self._request(prompt, length, temperature, tf.constant(0), tf.constant(1.0), seed,
                            stop=None)  # no stop strings: no stop-string loops in this graph
        return {"generated": out["generated"]}

    @tf.function(input_signature=[PROMPT, LENGTH, TEMPERATURE, TOP_K, TOP_P, SEED, STOP])
    def generate_signature(self, prompt, length, temperature, top_k, top_p, seed, stop):
        return self._request(prompt, length, temperature, top_k, top_p, seed, stop)

    @tf.function(input_signature=[PROMPT])
    def stream_start(self, prompt):
        steps = steps_for(self.model)
        return {"state": steps.pack(self._prompt_states(steps, prompt))}

    @tf.function(input_signature=[STATE, LENGTH, TEMPERATURE, TOP_K, TOP_P, SEED])
    def stream_next(self, state, length, temperature, top_k, top_p, seed):
        batch = tf.shape(state)[0]
        checks = [
            self._batch_check("state", batch),
            _check(tf.shape(state)[1] == self.state_size,
                   f"state must have {self.state_size} columns (the state size of this "
                   "model, from stream_start), got shape {}", tf.shape(state)),
            _check(tf.reduce_all(tf.math.is_finite(state)), "state must be finite"),
        ]
        per_row = self._sampling_inputs(batch, length, temperature, top_k, top_p, checks)
        steps = steps_for(self.model)
        with tf.control_dependencies(per_row):  # after every check
            states = steps.unpack(state)
        generated, _, states, finite = self._generate(steps, states, *per_row, seed)
        return _finite_or_fail(finite, {"generated": generated, "state": steps.pack(states)})

    @tf.function(input_signature=[])
    def limits(self):
        values = {**dataclasses.asdict(self.serving_limits), "max_stops": MAX_STOPS,
                  "max_stop_length": MAX_STOP_LENGTH, "state_size": self.state_size}
        return {name: tf.constant(value, tf.int32) for name, value in values.items()}

    def export_signatures(self):
        """The export's signatures, ``{name: function}``."""
        return {"serving_default": self.serving_default, "generate": self.generate_signature,
                "stream_start": self.stream_start, "stream_next": self.stream_next,
                "limits": self.limits}

    # ----- from Python

    def generate(self, prompts, length, temperature=0.0, seed=0, top_k=0, top_p=1.0, stop=""):
        """Continue each prompt by ``length`` characters; returns a list of Python strings.

        ``stop``: a string, or a list of them, ending a row's generation (included in the text).
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        most = self.serving_limits.max_length
        require(1 <= int(length) <= most,
                f"length must be in [1, {most}], got {length}; pass --length 1 to {most}")
        require(0 <= float(temperature) < float("inf"),
                f"temperature must be >= 0 (0 is greedy), got {temperature}")
        require(int(top_k) >= 0, f"top-k must be >= 0 (0 keeps every id), got {top_k}")
        require(0 < float(top_p) <= 1, f"top-p must be in (0, 1] (1 keeps every id), got {top_p}")
        stops = [stop] if isinstance(stop, str) else list(stop)
        try:
            out = self.generate_signature(
                prompt=tf.constant(prompts, tf.string), length=tf.constant(int(length)),
                temperature=tf.constant(float(temperature)), top_k=tf.constant(int(top_k)),
                top_p=tf.constant(float(top_p)), seed=tf.constant(int(seed), tf.int64),
                stop=tf.constant([stops], tf.string))
        except tf.errors.InvalidArgumentError as error:
            failed = first_failed_check(error.message)
            raise (NonFiniteLogits if failed == NON_FINITE_LOGITS else UsageError)(failed) from None
        return [s.decode("utf-8") for s in out["generated"].numpy()]


class _Held:
    """A value a ``tf.Module`` keeps out of its SavedModel's object graph."""

    def __init__(self, value):
        self.value = value


def _finite_or_fail(finite, outputs):
    """``outputs``, after an assertion that the final logits are finite."""
    with tf.control_dependencies([tf.debugging.Assert(finite, [NON_FINITE_LOGITS])]):
        return {name: tf.identity(value) for name, value in outputs.items()}


def first_failed_check(message):
    """The failed check of a TensorFlow error message (its ``assertion failed: [...]`` line), or
    else its first line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith("assertion failed:")]
    line = failed[0] if failed else (lines[0] if lines else "invalid request")
    return line.removeprefix("assertion failed:").strip(" []").replace("\\'", "'")
