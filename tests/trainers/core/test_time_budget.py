"""The wall-clock budget: training stops within a step of the budget, counting the seconds of a
resumed run's earlier sessions."""

from keras_models.backend import keras

import numpy as np
import pytest

from trainers.core.callbacks import StopAfterMinutes


class FakeClock:
    """A clock that advances ``tick`` seconds each time it is read."""

    def __init__(self, tick):
        self.now, self.tick = 0.0, tick

    def __call__(self):
        self.now += self.tick
        return self.now


@pytest.mark.parametrize("spent_seconds, steps", [(0.0, 6), (20.0, 4)])
def test_training_stops_once_the_budget_is_spent(spent_seconds, steps):
    """Budget 1 minute; the clock is read at the start and after every batch, 10 fake seconds
    apart, so 10·k seconds have passed after k steps: the 60 s are spent after 6 steps, or
    after 4 when a resumed run already spent 20 s."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((8, 2), np.float32), np.ones((8, 1), np.float32)
    budget = StopAfterMinutes(1.0, spent_seconds=spent_seconds, clock=FakeClock(10.0))
    history = model.fit(x, y, batch_size=1, epochs=4, callbacks=[budget], verbose=0)
    assert int(model.optimizer.iterations.numpy()) == steps
    assert len(history.history["loss"]) == 1  # the epoch ended early, and training with it
