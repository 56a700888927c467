"""A whole LSTM sequence as one differentiable op, with backpropagation through time by hand.

Forward, for time-major inputs ``x [T, B, I]`` and the ``LSTMCell`` weights (blocks i, f, g, o)::

    Z_x = x W + b                       one matmul for all T steps   [T, B, 4H]
    z_t = Z_x[t] + h_{t-1} U            one matmul per step
    i, f, g, o = σ, σ, tanh, σ of the blocks of z_t
    c_t = g ⊙ i + c_{t-1} ⊙ f ;  h_t = tanh(c_t) ⊙ o

One sigmoid gives all four gates: ``tanh(z) = 2σ(2z) − 1``, so the g columns of W, U and b are
doubled up front and ``a_t = σ(z_t)`` holds (i, f, (g+1)/2, o). Backward, from ``∂L/∂h_t``
(every step) and ``∂L/∂h_T``, ``∂L/∂c_T`` (final states)::

    δh = ∂L/∂h_t + δz_{t+1} Uᵀ
    δc = δc_{t+1} ⊙ f_{t+1} + δh ⊙ o ⊙ (1 − tanh²c_t)
    δz_t = [δc ⊙ g, δc ⊙ c_{t-1}, 2 δc ⊙ i, δh ⊙ tanh c_t] ⊙ a_t ⊙ (1 − a_t)

and then, each as one matmul over all steps: ``∂W = xᵀ δZ``, ``∂U = H_prevᵀ δZ``,
``∂b = Σ δZ``, ``∂x = δZ Wᵀ`` (g columns doubled back). Per step the loops keep one matmul and
a few element-wise ops, which is where a per-step ``keras.layers.RNN`` spends its time (the
layout of cuDNN's and PyTorch's fused LSTM kernels).
"""

from keras_models.backend import tf


def _scan(step, length, initial, outputs, reverse=False):
    """``tf.while_loop`` over ``t`` (``T-1 … 0`` when ``reverse``) writing ``outputs`` arrays.

    ``step(t, carry) -> (carry, values)`` with one value per entry of ``outputs`` (dtypes).
    Returns the final carry and the stacked values, each ``[T, …]``.
    """
    arrays = [tf.TensorArray(dtype, size=length) for dtype in outputs]

    def body(t, carry, arrays):
        index = length - 1 - t if reverse else t
        carry, values = step(index, carry)
        return t + 1, carry, [a.write(index, v) for a, v in zip(arrays, values, strict=True)]

    _, carry, arrays = tf.while_loop(lambda t, *_: t < length, body, (0, initial, arrays))
    return carry, [a.stack() for a in arrays]


def _g_scale(units, dtype):
    """``[4H]``: 1 on the i, f and o columns, 2 on the g columns."""
    ones = tf.ones([units], dtype)
    return tf.concat([ones, ones, 2 * ones, ones], axis=0)


@tf.custom_gradient
def lstm_sequence(x, h0, c0, kernel, recurrent_kernel, bias):
    """Run the LSTM over ``x [T, B, I]`` from states ``h0, c0 [B, H]``.

    Returns ``(h [T, B, H], h_T [B, H], c_T [B, H])``; the gradient is the BPTT above.
    """
    steps, batch = tf.shape(x)[0], tf.shape(x)[1]
    input_dim, units = tf.shape(kernel)[0], tf.shape(h0)[1]
    scale = _g_scale(units, x.dtype)
    recurrent_scaled = recurrent_kernel * scale
    flat_x = tf.reshape(x, [-1, input_dim])
    z_x = tf.reshape(tf.matmul(flat_x, kernel * scale) + bias * scale, [steps, batch, 4 * units])

    def forward(t, carry):
        h, c = carry
        a = tf.sigmoid(z_x[t] + tf.matmul(h, recurrent_scaled))
        i, f, g_half, o = tf.split(a, 4, axis=-1)
        c = (2 * g_half - 1) * i + c * f
        h = tf.tanh(c) * o
        return (h, c), (h, c, a)

    (h_last, c_last), (hs, cs, gates) = _scan(forward, steps, (h0, c0), [x.dtype] * 3)
    hs.set_shape(x.shape[:2].concatenate(h0.shape[1:]))

    def grad(d_hs, d_h_last, d_c_last):
        recurrent_t = tf.transpose(recurrent_scaled)
        c_prev = tf.concat([c0[None], cs[:-1]], axis=0)

        def backward(t, carry):
            d_h_next, d_c_next = carry
            a = gates[t]
            i, f, g_half, o = tf.split(a, 4, axis=-1)
            tanh_c = tf.tanh(cs[t])
            d_h = d_hs[t] + d_h_next
            d_c = d_c_next + d_h * o * (1 - tanh_c * tanh_c)
            d_a = tf.concat([d_c * (2 * g_half - 1), d_c * c_prev[t], 2 * d_c * i, d_h * tanh_c],
                            axis=-1)
            d_z = d_a * a * (1 - a)
            return (tf.matmul(d_z, recurrent_t), d_c * f), (d_z,)

        (d_h0, d_c0), (d_z,) = _scan(backward, steps, (d_h_last, d_c_last), [x.dtype], reverse=True)
        flat_d_z = tf.reshape(d_z, [-1, 4 * units])
        h_prev = tf.reshape(tf.concat([h0[None], hs[:-1]], axis=0), [-1, units])
        d_x = tf.matmul(flat_d_z, tf.transpose(kernel * scale))
        return (
            tf.reshape(d_x, tf.shape(x)),
            d_h0,
            d_c0,
            tf.matmul(tf.transpose(flat_x), flat_d_z) * scale,
            tf.matmul(tf.transpose(h_prev), flat_d_z) * scale,
            tf.reduce_sum(flat_d_z, axis=0) * scale,
        )

    return (hs, h_last, c_last), grad
