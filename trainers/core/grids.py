"""The settings of a hyperparameter sweep, from one or more values per option.

Two designs:

- ``product``: every combination (the full grid), the first option varying slowest;
- ``one-factor``: the base setting (the first value of every option), then each option's other
  values one at a time, the rest held at the base: ``1 + Σ (values − 1)`` settings instead of
  ``Π values``. This is how a study varies one thing at a time around a known-good model.

``replicate`` options (seeds) are not factors: every setting is run with each of their values,
innermost, so a setting's runs can be averaged.
"""

import itertools

from keras_models.utils.errors import UsageError

MODES = ("product", "one-factor")


def refuse_repeats(options, labels=None):
    """Raise ``UsageError`` when an option of ``options`` (``{option: [value, ...]}``) repeats a
    value, named by ``labels`` (``{option: name}``, e.g. its flag): ``--seeds repeats 1; give
    each value once``."""
    for name, values in options.items():
        repeated = sorted({repr(v) for v in values if values.count(v) > 1})
        if repeated:
            label = (labels or {}).get(name, name)
            raise UsageError(f"{label} repeats {', '.join(repeated)}; give each value once")


def expand_grid(options, mode, replicate=(), labels=None):
    """The list of settings (``{option: value}``, keys in the order of ``options``) that
    ``options`` (``{option: [value, ...]}``) give in ``mode``.

    Raises ``UsageError`` when an option repeats a value (the grid would train one setting
    twice); ``labels`` (``{option: name}``) names the options in that message.
    """
    if mode not in MODES:
        raise UsageError(f"unknown sweep mode {mode!r}; choose one of {', '.join(MODES)}")
    refuse_repeats(options, labels)
    factors = {k: v for k, v in options.items() if k not in replicate}
    if mode == "product":
        settings = [dict(zip(factors, values, strict=True))
                    for values in itertools.product(*factors.values())]
    else:
        base = {k: v[0] for k, v in factors.items()}
        settings = [base] + [{**base, k: value} for k, values in factors.items()
                             for value in values[1:]]
    copies = [dict(zip(replicate, values, strict=True))
              for values in itertools.product(*(options[k] for k in replicate))]
    return [{k: {**setting, **copy}[k] for k in options} for setting in settings
            for copy in copies]


def varied(options, replicate=()):
    """The options that take more than one value, replicates left out: what a sweep compares."""
    return [k for k, values in options.items() if len(values) > 1 and k not in replicate]
