"""Whole LSTM sequences as one differentiable op, with backpropagation through time by hand.

Forward, for inputs ``x [B, T, I]`` and fused weights (blocks i, f, g, o)::

    z_t = W x_t + U h_{t-1} + b        W x + b for all steps at once, one matmul per step for U h
    i = σ(z_i + p_i ⊙ c_{t-1}),  f = σ(z_f + p_f ⊙ c_{t-1}),  g = tanh(z_g)
    c_t = g ⊙ i + c_{t-1} ⊙ f ;  o = σ(z_o + p_o ⊙ c_t) ;  h_t = tanh(c_t) ⊙ o

``lstm_sequence`` is the plain LSTM (no p); ``peephole_lstm_sequence`` the classic peephole LSTM
(diagonal p = (p_i, p_f, p_o));
``matrix_peephole_sequence`` the full-matrix peephole LSTM (gates f, i, o read c through
``U``, candidate ``s = σ(W_c x + b_c)``; its backward carries only ``δc``, with
``δc_{t-1} = δc ⊙ f + U δz``). ``native_sequence`` runs any of the three with both loops in
the compiled ops of ``native_lstm``, with an optional mask and any length (``native_lstm_sequence``
for the LSTM; ``native_lstm_on_ids`` when x is an embedding lookup). Backward of the plain and
classic LSTMs, from
``∂L/∂h_t`` (every step) and ``∂L/∂h_T``, ``∂L/∂c_T`` (final states), with ``δz_{T+1} = 0``::

    δh   = ∂L/∂h_t + U δz_{t+1}
    δz_o = δh ⊙ tanh c_t ⊙ o(1 − o)
    δc   = δc_{t+1} + δh ⊙ o ⊙ (1 − tanh²c_t) + δz_o ⊙ p_o
    δz_i = δc ⊙ g ⊙ i(1 − i),  δz_f = δc ⊙ c_{t-1} ⊙ f(1 − f),  δz_g = δc ⊙ i ⊙ (1 − g²)
    δc_{t-1} term = δc ⊙ f + δz_i ⊙ p_i + δz_f ⊙ p_f

with one matmul per step for ``U δz``; then, each as one matmul (or sum) over all steps:
``∂W = δZ xᵀ``, ``∂U = δZ H_prevᵀ``, ``δx = Wᵀ δZ``, ``∂b = Σ δZ``, ``∂p_i = Σ δz_i ⊙ c_{t-1}``,
``∂p_f = Σ δz_f ⊙ c_{t-1}``, ``∂p_o = Σ δz_o ⊙ c_t``.

The time loop is unrolled (the length must be known when the graph is built): every step's
activations stay separate tensors that the backward reads directly, with nothing stacked in
between, and the whole graph is open to TensorFlow's scheduler. Inside, tensors are feature-major,
``[features, B]`` per step and ``[features, T·B]`` over all steps (columns in ``(t, b)`` order),
so each product is ``[4H, H] @ [H, B]``: TensorFlow's CPU matmul runs these shapes up to twice as
fast as the batch-major ``[B, H] @ [H, 4H]`` (``bench/gemm.py``). Inputs, outputs and states cross
the op's boundary batch-major, as Keras passes them.
"""

from keras_models.backend import tf

from keras_models.ops.native_lstm import recurrence_ops


def _transposed(matrix):
    """``matrixᵀ`` as a tensor of its own.

    A plain ``tf.transpose`` feeding a matmul is folded by Grappler into the matmul's
    ``transpose_a`` flag, which on the CPU made each ``[4H, H] @ [H, B]`` step three times slower;
    transposing a batch of one and dropping the batch axis is not folded.
    """
    rows, columns = matrix.shape
    return tf.reshape(tf.transpose(matrix[None], [0, 2, 1]), [columns, rows])


def _feature_major(x):
    """``[B, T, F]`` → ``[F, T·B]``, columns in ``(t, b)`` order."""
    return tf.reshape(tf.transpose(x, [2, 1, 0]), [tf.shape(x)[2], -1])


def _batch_major(columns, steps):
    """``[F, T·B]`` (columns in ``(t, b)`` order) → ``[B, T, F]``."""
    return tf.transpose(tf.reshape(columns, [tf.shape(columns)[0], steps, -1]), [2, 1, 0])


def _stack_batch_major(tensors):
    """T feature-major ``[F, B]`` tensors → ``[B, T, F]``."""
    return tf.transpose(tf.stack(tensors, axis=1), [2, 1, 0])


def _unstack_feature_major(x):
    """``[B, T, F]`` → T feature-major ``[F, B]`` tensors."""
    return tf.unstack(tf.transpose(x, [1, 2, 0]))


def _input_projection(x_fm, kernel, bias, steps):
    """``W x_t + b`` for every step, one matmul: T tensors ``[G, B]`` from ``x_fm [I, T·B]``."""
    return tf.split(tf.matmul(_transposed(kernel), x_fm) + bias[:, None], steps, axis=1)


def _weight_gradient(d_z, inputs_fm):
    """``(δZ inputsᵀ)ᵀ``: ``δZ [G, T·B]``, ``inputs [F, T·B]`` → ``[F, G]`` (fast orientation)."""
    return tf.transpose(tf.matmul(d_z, inputs_fm, transpose_b=True))


def _input_gradients(x_fm, kernel, d_z, steps):
    """``δx [B, T, I]``, ``∂W [I, G]`` and ``∂b [G]`` from ``δZ [G, T·B]`` over all steps."""
    d_x = _batch_major(tf.matmul(kernel, d_z), steps)
    return d_x, _weight_gradient(d_z, x_fm), tf.reduce_sum(d_z, axis=1)


def _run(x, h0, c0, kernel, recurrent_kernel, bias, peephole):
    """Forward pass and its gradient function for both variants (``peephole`` None or [3H]).

    Each step also keeps what its backward step needs, computed off the recurrent path:
    ``a = [g·i(1−i); c_{t-1}·f(1−f); i(1−g²); tanh c_t·o(1−o)]``, ``a_c = o(1−tanh²c_t) + a_o p_o``
    and ``f' = f + a_i p_i + a_f p_f``, so that backward is ``δc += δh ⊙ a_c``,
    ``δz = [δc; δc; δc; δh] ⊙ a``, ``δh_{t-1} = U δz``, ``δc_{t-1} = δc ⊙ f'``.
    """
    steps, units = x.shape[1], recurrent_kernel.shape[0]
    x_fm = _feature_major(x)
    projected = _input_projection(x_fm, kernel, bias, steps)
    recurrent_t = _transposed(recurrent_kernel)  # [4H, H]
    if peephole is not None:
        p_if, p_o = tf.split(peephole[:, None], [2 * units, units])
    hs, cs, saved = [tf.transpose(h0)], [tf.transpose(c0)], []
    for t in range(steps):
        c_prev = cs[-1]
        z_if, z_g, z_o = tf.split(tf.matmul(recurrent_t, hs[-1]) + projected[t],
                                  [2 * units, units, units])
        if peephole is not None:
            z_if += p_if * tf.concat([c_prev, c_prev], axis=0)
        s_if, g = tf.sigmoid(z_if), tf.tanh(z_g)
        i, f = tf.split(s_if, 2)
        c = g * i + c_prev * f
        o = tf.sigmoid(z_o if peephole is None else z_o + p_o * c)
        tanh_c = tf.tanh(c)
        hs.append(tanh_c * o)
        cs.append(c)
        a_if, a_o = tf.concat([g, c_prev], axis=0) * s_if * (1 - s_if), tanh_c * o * (1 - o)
        a_c, f_carry = o * (1 - tanh_c * tanh_c), f
        if peephole is not None:
            a_c += a_o * p_o
            f_carry += tf.reduce_sum(tf.reshape(a_if * p_if, [2, units, -1]), axis=0)
        saved.append((tf.concat([a_if, i * (1 - g * g), a_o], axis=0), a_c, f_carry))

    def grad(d_out, d_h_last, d_c_last):
        d_hs = _unstack_feature_major(d_out)
        d_h_next, d_c = tf.transpose(d_h_last), tf.transpose(d_c_last)
        d_zs = [None] * steps
        for t in reversed(range(steps)):
            a, a_c, f_carry = saved[t]
            d_h = d_hs[t] + d_h_next
            d_c += d_h * a_c
            d_zs[t] = tf.concat([d_c, d_c, d_c, d_h], axis=0) * a
            d_h_next = tf.matmul(recurrent_kernel, d_zs[t])
            d_c *= f_carry
        d_z = tf.concat(d_zs, axis=1)  # [4H, T·B]
        d_x, d_kernel, d_bias = _input_gradients(x_fm, kernel, d_z, steps)
        grads = [d_x, tf.transpose(d_h_next), tf.transpose(d_c), d_kernel,
                 _weight_gradient(d_z, tf.concat(hs[:-1], axis=1)), d_bias]
        if peephole is not None:
            d_z_i, d_z_f, _, d_z_o = tf.split(d_z, 4)
            c_prev, c = tf.concat(cs[:-1], axis=1), tf.concat(cs[1:], axis=1)
            grads.append(tf.reduce_sum(
                tf.concat([d_z_i * c_prev, d_z_f * c_prev, d_z_o * c], axis=0), axis=1))
        return grads

    return (_stack_batch_major(hs[1:]), tf.transpose(hs[-1]), tf.transpose(cs[-1])), grad


def _run_matrix_peephole(x, h0, c0, kernel, recurrent_kernel, bias):
    """The full-matrix peephole LSTM: gates (f, i, o) read c through ``U [H, 3H]``, no h.

    Each step keeps ``a = [c_{t-1}·f(1−f); s·i(1−i); tanh c_t·o(1−o); i·s(1−s)]`` and
    ``a_c = o(1−tanh²c_t)``; backward is ``δc = δc_{t+1} + δh ⊙ a_c``,
    ``δz = [δc; δc; δh; δc] ⊙ a``, ``δc_{t-1} = δc ⊙ f + U δz_{f,i,o}``.
    """
    steps, units = x.shape[1], recurrent_kernel.shape[0]
    x_fm = _feature_major(x)
    projected = _input_projection(x_fm, kernel, bias, steps)  # gates (3H) over candidate (H)
    recurrent_t = _transposed(recurrent_kernel)  # [3H, H]
    hs, cs, saved = [], [tf.transpose(c0)], []
    for t in range(steps):
        c_prev = cs[-1]
        z_gates, z_candidate = tf.split(projected[t], [3 * units, units])
        gates = tf.sigmoid(tf.matmul(recurrent_t, c_prev) + z_gates)
        f, i, o = tf.split(gates, 3)
        s = tf.sigmoid(z_candidate)
        c = s * i + c_prev * f
        tanh_c = tf.tanh(c)
        hs.append(tanh_c * o)
        cs.append(c)
        a_gates = tf.concat([c_prev, s, tanh_c], axis=0) * gates * (1 - gates)
        saved.append((tf.concat([a_gates, i * s * (1 - s)], axis=0),
                      o * (1 - tanh_c * tanh_c), f))

    def grad(d_out, d_h_last, d_c_last):
        d_hs = _unstack_feature_major(d_out)
        d_hs[-1] += tf.transpose(d_h_last)
        d_c = tf.transpose(d_c_last)
        d_zs = [None] * steps
        for t in reversed(range(steps)):
            a, a_c, f = saved[t]
            d_c += d_hs[t] * a_c
            d_zs[t] = tf.concat([d_c, d_c, d_hs[t], d_c], axis=0) * a
            d_c = d_c * f + tf.matmul(recurrent_kernel, d_zs[t][:3 * units])
        d_z = tf.concat(d_zs, axis=1)  # [4H, T·B]
        d_x, d_kernel, d_bias = _input_gradients(x_fm, kernel, d_z, steps)
        d_recurrent = _weight_gradient(d_z[:3 * units], tf.concat(cs[:-1], axis=1))
        return [d_x, tf.zeros_like(h0), tf.transpose(d_c), d_kernel, d_recurrent, d_bias]

    return (_stack_batch_major(hs), tf.transpose(hs[-1]), tf.transpose(cs[-1])), grad


@tf.custom_gradient
def lstm_sequence(x, h0, c0, kernel, recurrent_kernel, bias):
    """The LSTM over ``x [B, T, I]`` (T static), from ``h0, c0 [B, H]``: ``h [B,T,H], h_T, c_T``."""
    return _run(x, h0, c0, kernel, recurrent_kernel, bias, None)


@tf.custom_gradient
def peephole_lstm_sequence(x, h0, c0, kernel, recurrent_kernel, bias, peephole):
    """The classic peephole LSTM (``peephole [3H]`` = p_i, p_f, p_o); outputs as above."""
    return _run(x, h0, c0, kernel, recurrent_kernel, bias, peephole)


@tf.custom_gradient
def matrix_peephole_sequence(x, h0, c0, kernel, recurrent_kernel, bias):
    """The full-matrix peephole LSTM (blocks f, i, o, c; ``U`` on c); outputs as above."""
    return _run_matrix_peephole(x, h0, c0, kernel, recurrent_kernel, bias)


NATIVE_CELLS = ("lstm", "classic", "matrix")
# Inputs at most this wide (the memory models' embeddings) are projected inside the compiled loop,
# step by step: there ``W x + b [T, B, 4H]`` would be the largest tensor of the pass, written and
# read once for little arithmetic. Wider inputs (the text model's) take one large matmul first,
# which runs faster than a small product per step.
LOOP_PROJECTION_WIDTH = 16


def _native_loop(cell, inputs, h0, c0, recurrent_kernel, peephole, keep, kernel=None, bias=None):
    """Both loops of ``cell`` (one of ``NATIVE_CELLS``) in the compiled ops of ``native_lstm``.

    ``inputs``: ``W x + b`` already taken ``[T, B, 4H]`` (time-major), or ``x [T, B, I]`` with
    ``kernel`` W and ``bias`` b, which the forward loop applies step by step.
    ``peephole [3H]`` (classic) or ``[0]``, ``keep [T, B]`` bool (false: the row's state is held
    at that step) or ``[0, 0]`` → outputs ``h [T, B, H]`` (time-major), ``h_T, c_T``, and the
    backward function ``(∂L/∂h [T, B, H], ∂L/∂h_T, ∂L/∂c_T) → δZ [T·B, 4H], δh_0, δc_0,
    ∂U = Rᵀ δZ, ∂p`` and, with ``kernel``, ``(δx [T, B, I], ∂W, ∂b)`` (else None), which the
    backward loop sums while δz is at hand.
    R is what ``U`` multiplies: the previous h, or the previous c for ``"matrix"`` (whose
    ``U [H, 3H]`` meets the first 3H columns of δZ).
    """
    ops = recurrence_ops()
    units, recurrent_columns = recurrent_kernel.shape
    in_loop = kernel is not None
    if not in_loop:
        kernel, bias = tf.zeros([0, 4 * units]), tf.zeros([0])
    h, c, factors, c_factors, carry = ops.seqgraph_recurrence(
        inputs, kernel, bias, recurrent_kernel, peephole, h0, c0, keep, cell=cell)

    def backward(d_out, d_h_last, d_c_last):
        d_z, d_h0, d_c0, d_peephole, d_inputs, d_kernel_bias = ops.seqgraph_recurrence_grad(
            d_out, d_h_last, d_c_last, recurrent_kernel, factors, c_factors, carry, keep, c, c0,
            inputs if in_loop else tf.zeros([0, 0, 0]), kernel, cell=cell)
        d_z = tf.reshape(d_z, [-1, 4 * units])
        # ∂U = R_0ᵀ δZ_0 + R_{1..T-1}ᵀ δZ_{1..T-1}: slices along the first axis, not copies.
        first, sequence = (c0, c) if cell == "matrix" else (h0, h)
        batch = tf.shape(h0)[0]
        d_recurrent = ops.seqgraph_weight_gradient(
            first, d_z[:batch], keep[:1], columns=recurrent_columns
        ) + ops.seqgraph_weight_gradient(
            tf.reshape(sequence[:-1], [-1, units]), d_z[batch:], keep[1:],
            columns=recurrent_columns)
        input_gradients = None
        if in_loop:
            input_gradients = (d_inputs, d_kernel_bias[:-1], d_kernel_bias[-1])
        return d_z, d_h0, d_c0, d_recurrent, d_peephole, input_gradients

    return (h, h[-1], c[-1]), backward


def _native_sequence_of(cell):
    """``(x, keep, h0, c0, W, U, b, p) → h [T, B, H], h_T, c_T``, differentiable, for ``cell``.

    ``h`` stays time-major: transposed outside, the transpose (and its gradient's) is pruned from
    the graph when nothing reads the sequence (a classifier reads only ``h_T``)."""

    @tf.custom_gradient
    def sequence(x, keep, h0, c0, kernel, recurrent_kernel, bias, peephole):
        inputs, units = x.shape[2], recurrent_kernel.shape[0]
        steps = tf.shape(x)[1]
        x_tm = tf.reshape(tf.transpose(x, [1, 0, 2]), [-1, inputs])  # [T·B, I]
        if inputs <= LOOP_PROJECTION_WIDTH:  # W x + b inside the loop, never stored
            loop_inputs = [tf.reshape(x_tm, [steps, -1, inputs]), kernel, bias]
        else:  # one large matmul
            loop_inputs = [tf.reshape(tf.nn.bias_add(tf.matmul(x_tm, kernel), bias),
                                      [steps, -1, 4 * units])]
        outputs, backward = _native_loop(cell, loop_inputs[0], h0, c0, recurrent_kernel,
                                         peephole, keep, *loop_inputs[1:])

        def grad(d_out, d_h_last, d_c_last):
            d_z, d_h0, d_c0, d_recurrent, d_peephole, input_gradients = backward(
                d_out, d_h_last, d_c_last)
            if input_gradients is not None:
                d_x, d_kernel, d_bias = input_gradients
            else:
                d_x = tf.reshape(tf.matmul(d_z, kernel, transpose_b=True), [steps, -1, inputs])
                # ∂W and ∂b in one pass over δZ: [x, 1]ᵀ δZ.
                x_and_one = tf.concat([x_tm, tf.ones_like(x_tm[:, :1])], axis=1)
                d_kernel, d_bias = tf.split(
                    recurrence_ops().seqgraph_weight_gradient(x_and_one, d_z, keep), [inputs, 1])
                d_bias = d_bias[0]
            return [tf.transpose(d_x, [1, 0, 2]), None, d_h0, d_c0, d_kernel, d_recurrent,
                    d_bias, d_peephole]

        return outputs, grad

    return sequence


_NATIVE_SEQUENCES = {cell: _native_sequence_of(cell) for cell in NATIVE_CELLS}


@tf.custom_gradient
def _permute_rows(x, order):
    """``x[order]`` for a permutation ``order``, with a dense gradient (``tf.gather``'s is
    ``IndexedSlices``)."""
    return tf.gather(x, order), lambda d_y: (tf.gather(d_y, tf.math.invert_permutation(order)),
                                             None)


def native_sequence(cell, x, h0, c0, kernel, recurrent_kernel, bias, peephole=None, mask=None):
    """``cell``'s layer (``"lstm"``, ``"classic"`` or ``"matrix"``, the equations above) over
    ``x [B, T, I]`` from ``h0, c0 [B, H]``, both loops in the compiled ops of ``native_lstm``:
    ``h [B, T, H], h_T, c_T``. T need not be known when the graph is built.

    Time-major inside (``[T, B, F]``): ``W x + b`` of all steps is one matmul (or, for inputs at
    most ``LOOP_PROJECTION_WIDTH`` wide, formed step by step in the forward loop); the backward
    loop returns ``δZ [T·B, 4H]``, and ``[∂W; ∂bᵀ] = [X, 1]ᵀ δZ``, ``∂U = Rᵀ δZ`` (the third op)
    and ``δx = δZ Wᵀ`` are one matmul each (for those narrow inputs the backward loop sums ∂W, ∂b
    and δx itself, while each δz is at hand).

    ``mask [B, T]`` (bool, optional) as in Keras' masked RNN: where it is false, the row's h and c
    stay as they were (so a left-padded row keeps its initial state until its first token), and
    the output is the held h. The rows run sorted by their number of kept steps, most first: with
    left padding, each step's product then covers only the rows that have started.
    """
    weights = [kernel, recurrent_kernel, bias, tf.zeros([0]) if peephole is None else peephole]
    if mask is None:
        h, h_last, c_last = _NATIVE_SEQUENCES[cell](x, tf.zeros([0, 0], tf.bool), h0, c0,
                                                    *weights)
        return tf.transpose(h, [1, 0, 2]), h_last, c_last
    mask = tf.cast(mask, tf.bool)
    order = tf.argsort(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1), direction="DESCENDING",
                       stable=True)
    h, h_last, c_last = _NATIVE_SEQUENCES[cell](
        _permute_rows(x, order), tf.transpose(tf.gather(mask, order)), _permute_rows(h0, order),
        _permute_rows(c0, order), *weights)
    restore = tf.math.invert_permutation(order)
    return [_permute_rows(output, restore)
            for output in (tf.transpose(h, [1, 0, 2]), h_last, c_last)]


def native_lstm_sequence(x, h0, c0, kernel, recurrent_kernel, bias):
    """``lstm_sequence`` with both loops in the compiled ops (``native_sequence("lstm", …)``)."""
    return native_sequence("lstm", x, h0, c0, kernel, recurrent_kernel, bias)


def native_lstm_on_ids(ids, embeddings, h0, c0, kernel, recurrent_kernel, bias):
    """``native_lstm_sequence`` over ``x = E[ids]`` (``ids [B, T]``, ``E [V, I]``), with ``W``
    applied to the V rows of E instead of the T·B looked-up vectors; outputs as above.

    ``W x_t + b = (E W + b)[id_t]``: one ``[V, I] @ [I, 4H]`` product and a gather. Backward, with
    ``S = Σ_{t, b: id = v} δz`` the per-id sums of δZ (``S [V, 4H]``): ``∂W = Eᵀ S``,
    ``∂E = S Wᵀ``, ``∂b = Σ_v S``. Three ``[T·B, ·]`` products become ``[V, ·]`` ones, which
    is cheaper whenever V < T·B (a character vocabulary against a training batch).
    """
    h, h_last, c_last = _native_lstm_on_ids(ids, embeddings, h0, c0, kernel, recurrent_kernel,
                                            bias)
    return tf.transpose(h, [1, 0, 2]), h_last, c_last


@tf.custom_gradient
def _native_lstm_on_ids(ids, embeddings, h0, c0, kernel, recurrent_kernel, bias):
    """``native_lstm_on_ids`` with ``h`` time-major."""
    steps, units = ids.shape[1], recurrent_kernel.shape[0]
    vocabulary = tf.shape(embeddings)[0]
    ids_tm = tf.reshape(tf.transpose(ids), [-1])  # [T·B], time-major
    rows = tf.matmul(embeddings, kernel) + bias  # [V, 4H]
    projected = tf.reshape(tf.gather(rows, ids_tm), [steps, -1, 4 * units])
    outputs, backward = _native_loop("lstm", projected, h0, c0, recurrent_kernel, tf.zeros([0]),
                                     tf.zeros([0, 0], tf.bool))

    def grad(d_out, d_h_last, d_c_last):
        d_z, d_h0, d_c0, d_recurrent, _, _ = backward(d_out, d_h_last, d_c_last)
        per_id = tf.math.unsorted_segment_sum(d_z, ids_tm, vocabulary)  # S [V, 4H]
        return [None, tf.matmul(per_id, kernel, transpose_b=True), d_h0, d_c0,
                tf.matmul(embeddings, per_id, transpose_a=True), d_recurrent,
                tf.reduce_sum(per_id, axis=0)]

    return outputs, grad
