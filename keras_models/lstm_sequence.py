"""Whole LSTM sequences as one differentiable op, with backpropagation through time by hand.

Forward, for time-major inputs ``x [T, B, I]`` and fused weights (blocks i, f, g, o)::

    Z_x = x W + b                       one matmul for all T steps   [T, B, 4H]
    z_t = Z_x[t] + h_{t-1} U            one matmul per step
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

and then, each as one matmul (or sum) over all steps: ``∂W = xᵀ δZ``, ``∂U = H_prevᵀ δZ``,
``∂b = Σ δZ``, ``∂x = δZ Wᵀ``, ``∂p_i = Σ δz_i ⊙ c_{t-1}``, ``∂p_f = Σ δz_f ⊙ c_{t-1}``,
``∂p_o = Σ δz_o ⊙ c_t``. Per step the loops keep one matmul and the element-wise ops; everything
else is a few large products (the layout of cuDNN's and PyTorch's fused LSTM kernels).
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


def _input_gradients(x, flat_x, flat_d_z, kernel):
    """``∂x = δZ Wᵀ``, ``∂W = xᵀ δZ``, ``∂b = Σ δZ`` over all steps (``flat_*``: ``[T·B, …]``)."""
    d_x = tf.reshape(tf.matmul(flat_d_z, tf.transpose(kernel)), tf.shape(x))
    return d_x, tf.matmul(tf.transpose(flat_x), flat_d_z), tf.reduce_sum(flat_d_z, axis=0)


def _input_projection(x, kernel, bias):
    """``x [T, B, I]`` as ``[T·B, I]``, and ``Z_x = x W + b`` for all steps, ``[T, B, 4H]``."""
    flat_x = tf.reshape(x, [-1, tf.shape(kernel)[0]])
    z_x = tf.reshape(tf.matmul(flat_x, kernel) + bias, [tf.shape(x)[0], tf.shape(x)[1], -1])
    return flat_x, z_x


def _forward(step, x, h0, c0):
    """Run ``step`` over all T steps; ``(h_T, c_T)``, ``h [T, B, H]``, ``c [T, B, H]``, extras.

    ``step(t, (h, c)) -> ((h', c'), (h', c', extra))``; the stacked ``c`` and ``extra`` are what
    the backward pass reads (stacked, not kept as TensorArrays: a gradient that captured those
    could not be saved).
    """
    last, arrays = _scan(step, tf.shape(x)[0], (h0, c0), [x.dtype] * 3)
    hs, cs, extra = (array.stack() for array in arrays)
    hs.set_shape(x.shape[:2].concatenate(h0.shape[1:]))
    return last, hs, cs, extra


def _previous(first, stacked):
    """``[first, stacked[0], …, stacked[T-2]]``: the value before each step."""
    return tf.concat([first[None], stacked[:-1]], axis=0)


def _run(x, h0, c0, kernel, recurrent_kernel, bias, peephole):
    """Forward pass and its gradient function for both variants (``peephole`` None or [3H])."""
    steps, units = tf.shape(x)[0], tf.shape(h0)[1]
    flat_x, z_x = _input_projection(x, kernel, bias)
    p_i, p_f, p_o = (None,) * 3 if peephole is None else tf.split(peephole, 3)

    def forward(t, carry):
        h, c = carry
        z_i, z_f, z_g, z_o = tf.split(z_x[t] + tf.matmul(h, recurrent_kernel), 4, axis=-1)
        if peephole is not None:
            z_i, z_f = z_i + p_i * c, z_f + p_f * c
        i, f, g = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_g)
        c_new = g * i + c * f
        o = tf.sigmoid(z_o if peephole is None else z_o + p_o * c_new)
        h = tf.tanh(c_new) * o
        return (h, c_new), (h, c_new, tf.concat([i, f, g, o], axis=-1))

    (h_last, c_last), hs, cs, gates = _forward(forward, x, h0, c0)

    def grad(d_hs, d_h_last, d_c_last):
        recurrent_t = tf.transpose(recurrent_kernel)
        c_prevs = _previous(c0, cs)

        def backward(t, carry):
            d_h_next, d_c_next = carry
            i, f, g, o = tf.split(gates[t], 4, axis=-1)
            c, c_prev = cs[t], c_prevs[t]
            tanh_c = tf.tanh(c)
            d_h = d_hs[t] + d_h_next
            d_z_o = d_h * tanh_c * o * (1 - o)
            d_c = d_c_next + d_h * o * (1 - tanh_c * tanh_c)
            if peephole is not None:
                d_c += d_z_o * p_o
            d_z_i, d_z_f = d_c * g * i * (1 - i), d_c * c_prev * f * (1 - f)
            d_z = tf.concat([d_z_i, d_z_f, d_c * i * (1 - g * g), d_z_o], axis=-1)
            d_c_prev = d_c * f
            if peephole is not None:
                d_c_prev += d_z_i * p_i + d_z_f * p_f
            return (tf.matmul(d_z, recurrent_t), d_c_prev), (d_z,)

        (d_h0, d_c0), (d_z,) = _scan(backward, steps, (d_h_last, d_c_last), [x.dtype], reverse=True)
        d_z = d_z.stack()
        flat_d_z = tf.reshape(d_z, [-1, 4 * units])
        h_prev = tf.reshape(_previous(h0, hs), [-1, units])
        d_x, d_kernel, d_bias = _input_gradients(x, flat_x, flat_d_z, kernel)
        d_recurrent = tf.matmul(tf.transpose(h_prev), flat_d_z)
        grads = [d_x, d_h0, d_c0, d_kernel, d_recurrent, d_bias]
        if peephole is not None:
            d_z_i, d_z_f, _, d_z_o = tf.split(d_z, 4, axis=-1)
            grads.append(tf.reduce_sum(tf.concat(
                [d_z_i * c_prevs, d_z_f * c_prevs, d_z_o * cs], axis=-1), axis=[0, 1]))
        return grads

    return (hs, h_last, c_last), grad


def _run_assignment(x, h0, c0, kernel, recurrent_kernel, bias):
    """The assignment's peephole LSTM: gates (f, i, o) read c through ``U [H, 3H]``, no h."""
    steps, units = tf.shape(x)[0], tf.shape(h0)[1]
    flat_x, z_x = _input_projection(x, kernel, bias)
    z_gates, z_cand = tf.split(z_x, [3 * units, units], axis=-1)
    candidates = tf.sigmoid(z_cand)  # σ(W_cx x + b_c) for every step at once

    def forward(t, carry):
        _, c = carry
        gates = tf.sigmoid(z_gates[t] + tf.matmul(c, recurrent_kernel))
        f, i, o = tf.split(gates, 3, axis=-1)
        c_new = candidates[t] * i + c * f
        h = tf.tanh(c_new) * o
        return (h, c_new), (h, c_new, gates)

    (h_last, c_last), hs, cs, gates = _forward(forward, x, h0, c0)

    def grad(d_hs, d_h_last, d_c_last):
        recurrent_t = tf.transpose(recurrent_kernel)
        c_prevs = _previous(c0, cs)
        d_hs = d_hs + tf.concat([tf.zeros_like(d_hs[:-1]), d_h_last[None]], axis=0)

        def backward(t, d_c_next):
            f, i, o = tf.split(gates[t], 3, axis=-1)
            s, tanh_c = candidates[t], tf.tanh(cs[t])
            d_c = d_c_next + d_hs[t] * o * (1 - tanh_c * tanh_c)
            d_z_gates = tf.concat([d_c * c_prevs[t] * f * (1 - f), d_c * s * i * (1 - i),
                                   d_hs[t] * tanh_c * o * (1 - o)], axis=-1)
            d_c_prev = d_c * f + tf.matmul(d_z_gates, recurrent_t)
            return d_c_prev, (d_z_gates, d_c * i * s * (1 - s))

        d_c0, (d_z_gates, d_z_cand) = _scan(backward, steps, d_c_last, [x.dtype] * 2,
                                            reverse=True)
        d_z_gates = tf.reshape(d_z_gates.stack(), [-1, 3 * units])
        flat_d_z = tf.concat([d_z_gates, tf.reshape(d_z_cand.stack(), [-1, units])], axis=-1)
        d_x, d_kernel, d_bias = _input_gradients(x, flat_x, flat_d_z, kernel)
        c_prev = tf.reshape(c_prevs, [-1, units])
        d_recurrent = tf.matmul(tf.transpose(c_prev), d_z_gates)
        return [d_x, tf.zeros_like(h0), d_c0, d_kernel, d_recurrent, d_bias]

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
