"""Dozat's momentum schedule of Nadam and NAdamW: ``μ_t = β₁·(1 − ½·MOMENTUM_DECAY^(ψ·t))``.

The momentum warms up from ``β₁/2`` towards ``β₁``; ``ψ = 1`` in Nadam (Keras, TensorFlow), and
``ψ`` is NAdamW's ``momentum_decay`` (PyTorch's ``NAdam``). Both optimisers and their
multi-tensor rule (``lab.optimizers.multi_tensor``) read the constant from here.

Reference:
    Dozat, 2016, "Incorporating Nesterov momentum into Adam"
    (https://openreview.net/pdf?id=OM0jvwB8jIp57ZJjtNEZ).
"""

MOMENTUM_DECAY = 0.96
