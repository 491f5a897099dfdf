"""Learning-rate schedules as serializable ``keras.optimizers.schedules.LearningRateSchedule``s.

A schedule is called with the optimizer's step (0-based) and returns the learning rate as a
float32 tensor. Values follow PyTorch's ``torch.optim.lr_scheduler`` conventions where a twin
exists: the value at step ``i`` equals PyTorch's learning rate after ``i`` ``scheduler.step()``
calls.

    Constant            lr
    StepDecay           lr0 * decay_rate ** floor(t / decay_steps)
    ExponentialDecay    drop-in for keras.optimizers.schedules.ExponentialDecay
    CosineAnnealing     cosine from lr0 to a floor over decay_steps, flat after
    WarmupCosine        linear warm-up, then CosineAnnealing
    OneCycle            PyTorch OneCycleLR (two phases)
    CyclicalLR          PyTorch CyclicLR (triangular, triangular2, exp_range)
    CosineWarmRestarts  SGDR cosine with warm restarts
    Sequential          several schedules one after another
    LinearWarmup        linear warm-up, alone or in front of any schedule
    LinearDecay         straight line to an end value (PyTorch LinearLR)
    PolynomialDecay     drop-in for keras.optimizers.schedules.PolynomialDecay (cycle too)
    PiecewiseConstant   drop-in for Keras's PiecewiseConstantDecay; from_milestones: MultiStepLR
    InverseTimeDecay    drop-in for keras.optimizers.schedules.InverseTimeDecay
    WarmupStableDecay   warm-up, constant, then a linear, cosine or 1-sqrt cool-down (WSD)
    Scaled              scale * schedule, scale a variable callbacks change
    per_epoch           build any of them from epoch units
"""

from lab.schedules.base import Schedule
from lab.schedules.constant import Constant
from lab.schedules.cosine import CosineAnnealing, WarmupCosine
from lab.schedules.cyclical import CyclicalLR
from lab.schedules.decay import ExponentialDecay, InverseTimeDecay, StepDecay
from lab.schedules.epochs import per_epoch, step_arguments
from lab.schedules.one_cycle import OneCycle
from lab.schedules.piecewise import PiecewiseConstant
from lab.schedules.polynomial import LinearDecay, PolynomialDecay
from lab.schedules.restarts import CosineWarmRestarts
from lab.schedules.scaled import Scaled
from lab.schedules.sequential import Sequential
from lab.schedules.warmup import LinearWarmup
from lab.schedules.warmup_stable_decay import WarmupStableDecay

__all__ = [
    "Constant",
    "CosineAnnealing",
    "CosineWarmRestarts",
    "CyclicalLR",
    "ExponentialDecay",
    "OneCycle",
    "Schedule",
    "Scaled",
    "Sequential",
    "StepDecay",
    "WarmupCosine",
    "per_epoch",
    "step_arguments",
]
__all__ += [
    "InverseTimeDecay",
    "LinearDecay",
    "LinearWarmup",
    "PiecewiseConstant",
    "PolynomialDecay",
    "WarmupStableDecay",
]
