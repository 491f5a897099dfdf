"""The training lab: optimisers, learning-rate schedules, data sets and models for Keras 3.

Sub-modules:
    lab.optimizers  -- optimisers written from first principles (drop-in twins of Keras's)
    lab.schedules   -- LearningRateSchedule classes
    lab.registry    -- experiment names ("sgd", "adam", ...) -> optimiser factories
    lab.datasets    -- MNIST (offline, checksum-verified), make_moons, toy regression data
    lab.models      -- seeded model builders
    lab.surfaces    -- 1-D and 2-D test functions for trajectory experiments
    lab.tensorboard_logs -- the TensorBoard writer check; scalars read back into a DataFrame
"""

__version__ = "0.1.0"
