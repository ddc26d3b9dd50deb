"""Neural-network layer: backbones and heads (:mod:`~tsimcne_nb.nn.models`), contrastive losses
(:mod:`~tsimcne_nb.nn.losses`), batched augmentations (:mod:`~tsimcne_nb.nn.augmentations`) and
the collective operations they need under DDP (:mod:`~tsimcne_nb.nn.collectives`)."""
