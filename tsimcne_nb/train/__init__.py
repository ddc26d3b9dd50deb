"""Training layer: the data feed, the one training loop, checkpoints, budgets and schedules,
callbacks, distributed launch and the device/thread/precision policy.  It trains whatever
model and loss it is given; the estimators (:mod:`tsimcne_nb.estimators`) say what to train."""
