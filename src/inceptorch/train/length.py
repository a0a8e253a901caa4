"""How long a run is when the recipe leaves it to the data (`epochs: auto`): a budget of optimizer steps.

A fixed number of epochs gives a small data set few steps: 30 epochs of 2,000 images at batch 32 are 1,860 steps,
too few for a network trained from scratch to fit its training set, while the same 30 epochs of 100,000 images are
94,000. A budget of steps sizes the run to what the optimizer needs instead, as ImageNet recipes that count
iterations do (the Caffe GoogLeNet replication trains 2.4M iterations whatever the epoch length); the cosine schedule
then spans the whole run, which early stopping on a plateau would cut short.
"""
from __future__ import annotations

import math

MIN_EPOCHS = 10   # every image is seen at least this often, however large the data set
MAX_EPOCHS = 300  # and a tiny data set is not passed over more often than this


def epochs_for_budget(step_budget: int, steps_per_epoch: int) -> tuple[int, str]:
    """The epochs that make about `step_budget` optimizer steps, within [MIN_EPOCHS, MAX_EPOCHS], and a line
    saying so for the run's log."""
    wanted = math.ceil(step_budget / max(steps_per_epoch, 1))
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, wanted))
    bound = " (the least)" if epochs == MIN_EPOCHS > wanted else " (the most)" if epochs == MAX_EPOCHS < wanted \
        else ""
    return epochs, (f"epochs: auto = {epochs}{bound}, about {epochs * steps_per_epoch:,} optimizer steps at "
                    f"{steps_per_epoch} an epoch (a budget of {step_budget:,} steps; --epochs N sets the length, "
                    "--set step_budget=S the budget)")
