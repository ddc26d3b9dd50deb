"""Evaluation layer: metrics of a map (:mod:`~tsimcne_nb.eval.metrics`), baseline features and
maps (:mod:`~tsimcne_nb.eval.baselines`), ImageNet weights (:mod:`~tsimcne_nb.eval.weights`), the
feature cache and the method comparison (:mod:`~tsimcne_nb.eval.compare`, nothing written)."""
