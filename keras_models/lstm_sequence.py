"""Whole LSTM sequences as one differentiable op, with backpropagation through time by hand.

Forward, for time-major inputs ``x [T, B, I]`` and fused weights (blocks i, f, g, o)::

    z_t = x_t W + h_{t-1} U + b         one matmul per step, [x_t, h_{t-1}] [W; U]
    i = σ(z_i + p_i ⊙ c_{t-1}),  f = σ(z_f + p_f ⊙ c_{t-1}),  g = tanh(z_g)
    c_t = g ⊙ i + c_{t-1} ⊙ f ;  o = σ(z_o + p_o ⊙ c_t) ;  h_t = tanh(c_t) ⊙ o

``lstm_sequence`` is the plain LSTM (no p); ``peephole_lstm_sequence`` the classic peephole LSTM
(diagonal p = (p_i, p_f, p_o)); ``assignment_peephole_sequence`` the assignment's peephole LSTM
(gates read c through ``U``, candidate ``σ(W_cx x + b_c)`` for all steps at once; its backward
carries only ``δc``, with ``δc_{t-1} = δc ⊙ f + δz Uᵀ``). Backward of the other two, from
``∂L/∂h_t`` (every step) and ``∂L/∂h_T``, ``∂L/∂c_T`` (final states), with ``δz_{T+1} = 0``::

    δh   = ∂L/∂h_t + δz_{t+1} Uᵀ
    δz_o = δh ⊙ tanh c_t ⊙ o(1 − o)
    δc   = δc_{t+1} + δh ⊙ o ⊙ (1 − tanh²c_t) + δz_o ⊙ p_o
    δz_i = δc ⊙ g ⊙ i(1 − i),  δz_f = δc ⊙ c_{t-1} ⊙ f(1 − f),  δz_g = δc ⊙ i ⊙ (1 − g²)
    δc_{t-1} term = δc ⊙ f + δz_i ⊙ p_i + δz_f ⊙ p_f

with ``[δx_t, δz_t Uᵀ] = δz_t [W; U]ᵀ`` as one matmul per step, and then, each as one matmul (or
sum) over all steps: ``∂[W; U] = [x, H_prev]ᵀ δZ``, ``∂b = Σ δZ``, ``∂p_i = Σ δz_i ⊙ c_{t-1}``,
``∂p_f = Σ δz_f ⊙ c_{t-1}``, ``∂p_o = Σ δz_o ⊙ c_t``.

Inside the loops every per-step tensor is feature-major, ``[features, B]`` (``h`` is ``[H, B]``,
``z`` is ``[4H, B]``), so each product is ``[4H, I+H] @ [I+H, B]``: TensorFlow's CPU matmul runs
these shapes up to twice as fast as the batch-major ``[B, I+H] @ [I+H, 4H]`` (``bench/gemm.py``).
Inputs, outputs and states cross the op's boundary batch-major, as Keras passes them.
"""

from keras_models.backend import tf


def _scan(step, length, initial, outputs, reverse=False):
    """``tf.while_loop`` over ``t`` (``T-1 … 0`` when ``reverse``) writing ``outputs`` arrays.

    ``step(t, carry) -> (carry, values)`` with one value per entry of ``outputs`` (dtypes).
    Returns the final carry and one ``TensorArray`` of ``T`` values per output.
    """
    arrays = [tf.TensorArray(dtype, size=length, clear_after_read=False) for dtype in outputs]

    def body(t, carry, arrays):
        index = length - 1 - t if reverse else t
        carry, values = step(index, carry)
        return t + 1, carry, [a.write(index, v) for a, v in zip(arrays, values, strict=True)]

    _, carry, arrays = tf.while_loop(lambda t, *_: t < length, body, (0, initial, arrays))
    return carry, arrays


def _size(tensor, axis):
    """The static size of ``axis`` when known (slices then keep their shapes in the loops)."""
    return tensor.shape[axis] if tensor.shape[axis] is not None else tf.shape(tensor)[axis]


def _feature_major(x):
    """``[T, B, F]`` ↔ ``[T, F, B]`` (its own inverse)."""
    return tf.transpose(x, [0, 2, 1])


def _forward(step, x, h0, c0):
    """Run ``step`` over the T steps of ``x [T, B, I]`` from batch-major ``h0, c0 [B, H]``.

    ``step(t, (h, c)) -> ((h', c'), (h', c', extra))`` on feature-major ``[H, B]`` states.
    Returns the final ``(h_T, c_T)`` and ``h [T, B, H]`` batch-major, ``c [T, H, B]`` and the
    stacked extras (stacked, not kept as TensorArrays: a gradient that captured those could not
    be saved).
    """
    last, arrays = _scan(step, tf.shape(x)[0], (tf.transpose(h0), tf.transpose(c0)),
                         [x.dtype] * 3)
    hs, cs, extra = (array.stack() for array in arrays)
    hs = _feature_major(hs)
    hs.set_shape(x.shape[:2].concatenate(h0.shape[1:]))
    return tuple(tf.transpose(state) for state in last), hs, cs, extra


def _previous(first, stacked):
    """``[first, stacked[0], …, stacked[T-2]]``: the value before each step."""
    return tf.concat([first[None], stacked[:-1]], axis=0)


def _flat(stacked_fm):
    """Feature-major ``[T, F, B]`` as ``[F, T·B]``, columns in the order of a ``[T·B, …]``."""
    return tf.reshape(tf.transpose(stacked_fm, [1, 0, 2]), [tf.shape(stacked_fm)[1], -1])


def _weight_gradient(d_z_fm, *inputs):
    """``[in_1, in_2, …]ᵀ δZ`` over all steps: ``δZ [T, G, B]`` feature-major, each ``in_k``
    batch-major ``[T, B, F_k]``; returns ``[ΣF_k, G]`` (computed transposed, the fast way)."""
    flat_inputs = tf.concat([tf.reshape(v, [-1, tf.shape(v)[-1]]) for v in inputs], axis=1)
    return tf.transpose(tf.matmul(_flat(d_z_fm), flat_inputs))


def _run(x, h0, c0, kernel, recurrent_kernel, bias, peephole):
    """Forward pass and its gradient function for both variants (``peephole`` None or [3H])."""
    steps, inputs = tf.shape(x)[0], _size(kernel, 0)
    x_fm = _feature_major(x)
    weights = tf.concat([kernel, recurrent_kernel], axis=0)  # [I+H, 4H]
    weights_t, bias_column = tf.transpose(weights), bias[:, None]
    p_i, p_f, p_o = (None,) * 3 if peephole is None else tf.split(peephole[:, None], 3)

    def forward(t, carry):
        h, c = carry
        z = tf.matmul(weights_t, tf.concat([x_fm[t], h], axis=0)) + bias_column
        z_i, z_f, z_g, z_o = tf.split(z, 4)
        if peephole is not None:
            z_i, z_f = z_i + p_i * c, z_f + p_f * c
        i, f, g = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_g)
        c_new = g * i + c * f
        o = tf.sigmoid(z_o if peephole is None else z_o + p_o * c_new)
        h = tf.tanh(c_new) * o
        return (h, c_new), (h, c_new, tf.concat([i, f, g, o], axis=0))

    (h_last, c_last), hs, cs, gates = _forward(forward, x, h0, c0)

    def grad(d_hs, d_h_last, d_c_last):
        d_hs = _feature_major(d_hs)
        c_prevs = _previous(tf.transpose(c0), cs)

        def backward(t, carry):
            d_h_next, d_c_next = carry
            i, f, g, o = tf.split(gates[t], 4)
            c, c_prev = cs[t], c_prevs[t]
            tanh_c = tf.tanh(c)
            d_h = d_hs[t] + d_h_next
            d_z_o = d_h * tanh_c * o * (1 - o)
            d_c = d_c_next + d_h * o * (1 - tanh_c * tanh_c)
            if peephole is not None:
                d_c += d_z_o * p_o
            d_z_i, d_z_f = d_c * g * i * (1 - i), d_c * c_prev * f * (1 - f)
            d_z = tf.concat([d_z_i, d_z_f, d_c * i * (1 - g * g), d_z_o], axis=0)
            d_c_prev = d_c * f
            if peephole is not None:
                d_c_prev += d_z_i * p_i + d_z_f * p_f
            d_x_h = tf.matmul(weights, d_z)  # [δx_t; δh_{t-1}] feature-major
            return (d_x_h[inputs:], d_c_prev), (d_z, d_x_h[:inputs])

        (d_h0, d_c0), (d_z, d_x) = _scan(backward, steps, (tf.transpose(d_h_last),
                                                           tf.transpose(d_c_last)),
                                         [x.dtype] * 2, reverse=True)
        d_z = d_z.stack()
        d_weights = _weight_gradient(d_z, x, _previous(h0, hs))
        grads = [_feature_major(d_x.stack()), tf.transpose(d_h0), tf.transpose(d_c0),
                 d_weights[:inputs], d_weights[inputs:], tf.reduce_sum(d_z, axis=[0, 2])]
        if peephole is not None:
            d_z_i, d_z_f, _, d_z_o = tf.split(d_z, 4, axis=1)
            grads.append(tf.reduce_sum(tf.concat(
                [d_z_i * c_prevs, d_z_f * c_prevs, d_z_o * cs], axis=1), axis=[0, 2]))
        return grads

    return (hs, h_last, c_last), grad


def _run_assignment(x, h0, c0, kernel, recurrent_kernel, bias):
    """The assignment's peephole LSTM: gates (f, i, o) read c through ``U [H, 3H]``, no h."""
    steps, inputs, units = tf.shape(x)[0], _size(kernel, 0), _size(h0, 1)
    x_fm = _feature_major(x)
    gate_kernel, candidate_kernel = tf.split(kernel, [3 * units, units], axis=1)
    gate_bias, candidate_bias = tf.split(bias, [3 * units, units])
    weights = tf.concat([gate_kernel, recurrent_kernel], axis=0)  # [I+H, 3H]
    weights_t, bias_column = tf.transpose(weights), gate_bias[:, None]
    flat_x = tf.reshape(x, [-1, inputs])
    # σ(W_cx x + b_c) for every step at once, [T, H, B]
    candidates = _feature_major(tf.reshape(
        tf.sigmoid(tf.matmul(flat_x, candidate_kernel) + candidate_bias),
        [steps, -1, units]))

    def forward(t, carry):
        _, c = carry
        gates = tf.sigmoid(tf.matmul(weights_t, tf.concat([x_fm[t], c], axis=0)) + bias_column)
        f, i, o = tf.split(gates, 3)
        c_new = candidates[t] * i + c * f
        h = tf.tanh(c_new) * o
        return (h, c_new), (h, c_new, gates)

    (h_last, c_last), hs, cs, gates = _forward(forward, x, h0, c0)

    def grad(d_hs, d_h_last, d_c_last):
        c_prevs = _previous(tf.transpose(c0), cs)
        d_hs = _feature_major(
            d_hs + tf.concat([tf.zeros_like(d_hs[:-1]), d_h_last[None]], axis=0))

        def backward(t, d_c_next):
            f, i, o = tf.split(gates[t], 3)
            s, tanh_c = candidates[t], tf.tanh(cs[t])
            d_c = d_c_next + d_hs[t] * o * (1 - tanh_c * tanh_c)
            d_z_gates = tf.concat([d_c * c_prevs[t] * f * (1 - f), d_c * s * i * (1 - i),
                                   d_hs[t] * tanh_c * o * (1 - o)], axis=0)
            d_x_c = tf.matmul(weights, d_z_gates)  # [δx_t (gates); δz Uᵀ] feature-major
            return d_c * f + d_x_c[inputs:], (d_z_gates, d_c * i * s * (1 - s), d_x_c[:inputs])

        d_c0, (d_z_gates, d_z_candidate, d_x) = _scan(
            backward, steps, tf.transpose(d_c_last), [x.dtype] * 3, reverse=True)
        d_z_gates, d_z_candidate = d_z_gates.stack(), d_z_candidate.stack()
        d_weights = _weight_gradient(d_z_gates, x, _feature_major(c_prevs))
        d_candidate_kernel = _weight_gradient(d_z_candidate, x)
        flat_d_candidate = tf.reshape(_feature_major(d_z_candidate), [-1, units])  # [T·B, H]
        d_x = _feature_major(d_x.stack()) + tf.reshape(
            tf.matmul(flat_d_candidate, candidate_kernel, transpose_b=True), tf.shape(x))
        d_kernel = tf.concat([d_weights[:inputs], d_candidate_kernel], axis=1)
        d_bias = tf.concat([tf.reduce_sum(d_z_gates, axis=[0, 2]),
                            tf.reduce_sum(d_z_candidate, axis=[0, 2])], axis=0)
        return [d_x, tf.zeros_like(h0), tf.transpose(d_c0), d_kernel, d_weights[inputs:], d_bias]

    return (hs, h_last, c_last), grad


@tf.custom_gradient
def lstm_sequence(x, h0, c0, kernel, recurrent_kernel, bias):
    """The LSTM over ``x [T, B, I]`` from ``h0, c0 [B, H]``: ``(h [T, B, H], h_T, c_T)``."""
    return _run(x, h0, c0, kernel, recurrent_kernel, bias, None)


@tf.custom_gradient
def peephole_lstm_sequence(x, h0, c0, kernel, recurrent_kernel, bias, peephole):
    """The classic peephole LSTM (``peephole [3H]`` = p_i, p_f, p_o); outputs as above."""
    return _run(x, h0, c0, kernel, recurrent_kernel, bias, peephole)


@tf.custom_gradient
def assignment_peephole_sequence(x, h0, c0, kernel, recurrent_kernel, bias):
    """The assignment's peephole LSTM (blocks f, i, o, c; ``U`` on c); outputs as above."""
    return _run_assignment(x, h0, c0, kernel, recurrent_kernel, bias)
