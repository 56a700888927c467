"""The one place where seqgraph makes spektral 1.3.1 work on today's stack.

1. **SavedModel export of ``GCNConv``/``GATConv``** fails upstream with ``call() takes 1
   positional argument but 2 were given``: spektral's ``Conv.__init__`` replaces the bound
   ``call`` with an instance attribute (its dtype-check wrapper), which Keras' SavedModel tracing
   cannot call. The subclasses below drop that attribute and run the same check inside ``call``.
2. **Identical attention kernels**: spektral's ``GATConv`` draws ``attn_kernel_self`` and
   ``attn_kernel_neigh`` from one initialiser instance, and tf-keras initialisers return the same
   values on every call, so both kernels start equal. The subclass redraws the neighbour kernel
   with the next seed.
3. **scipy ≥ 1.14** removed ``spmatrix.A``, which spektral's Planetoid loader (``Citation.read``)
   uses. That is a pin, not a shim: ``scipy>=1.10,<1.14`` in ``setup.cfg``, checked by the
   Planetoid loader tests on files written with the installed scipy.

Use these classes instead of ``spektral.layers.GCNConv``/``GATConv``; they are registered under
``seqgraph>`` so Keras can reload models that contain them.
"""

from keras_models.backend import keras, tf  # noqa: F401  (one Keras before spektral)

from spektral.layers import GATConv as _SpektralGATConv
from spektral.layers import GCNConv as _SpektralGCNConv
from spektral.layers.convolutional.conv import check_dtypes


def _drop_call_wrapper(layer):
    """Remove spektral's per-instance ``call`` wrapper so the class method is used again."""
    if "call" in layer.__dict__:
        del layer.call


@keras.saving.register_keras_serializable(package="seqgraph")
class GCNConv(_SpektralGCNConv):
    """spektral's ``GCNConv`` (``X' = σ(Â X W + b)``), exportable as a SavedModel."""

    def __init__(self, channels, **kwargs):
        super().__init__(channels, **kwargs)
        _drop_call_wrapper(self)

    def call(self, inputs, mask=None):
        return super().call(check_dtypes(inputs), mask=mask)


@keras.saving.register_keras_serializable(package="seqgraph")
class GATConv(_SpektralGATConv):
    """spektral's ``GATConv``, exportable as a SavedModel, with independent attention kernels.

    ``α_ij = softmax_j(LeakyReLU(a_selfᵀ W x_i + a_neighᵀ W x_j))`` over ``j ∈ N(i) ∪ {i}``.
    """

    def __init__(self, channels, **kwargs):
        super().__init__(channels, **kwargs)
        _drop_call_wrapper(self)

    def build(self, input_shape):
        super().build(input_shape)
        init = self.attn_kernel_initializer
        seed = getattr(init, "seed", None)
        if seed is not None:
            neigh_init = init.__class__.from_config({**init.get_config(), "seed": seed + 1})
            self.attn_kernel_neighs.assign(neigh_init(self.attn_kernel_neighs.shape))

    def call(self, inputs, mask=None):
        return super().call(check_dtypes(inputs), mask=mask)

    def get_config(self):
        config = super().get_config()
        config.update({"add_self_loops": self.add_self_loops})
        return config
