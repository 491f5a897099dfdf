"""Learning-rate schedules as serializable ``keras.optimizers.schedules.LearningRateSchedule``s.

A schedule is called with the optimizer's step (0-based) and returns the learning rate. Values
follow PyTorch's ``torch.optim.lr_scheduler`` conventions where a twin exists: the value at step
``i`` equals PyTorch's learning rate after ``i`` calls of ``scheduler.step()``.

    Constant            lr
    StepDecay           lr0 * decay_rate ** floor(t / decay_steps)
    ExponentialDecay    drop-in for keras.optimizers.schedules.ExponentialDecay
    CosineAnnealing     cosine from lr0 to a floor over decay_steps, flat after
    WarmupCosine        linear warm-up, then CosineAnnealing
    OneCycle            PyTorch OneCycleLR (two phases)
    CyclicalLR          PyTorch CyclicLR (triangular, triangular2, exp_range)
    CosineWarmRestarts  SGDR cosine with warm restarts
    Sequential          several schedules one after another
    Scaled              scale * schedule, scale a variable callbacks change
    per_epoch           build any of them from epoch units
"""

from lab.schedules.base import Schedule
from lab.schedules.constant import Constant
from lab.schedules.decay import ExponentialDecay, StepDecay
from lab.schedules.scaled import Scaled

__all__ = [
    "Constant",
    "ExponentialDecay",
    "Scaled",
    "Schedule",
    "StepDecay",
]
