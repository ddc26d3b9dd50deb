"""QC detectors, one module per family: tight map clusters, feature clusters, duplicates and
property outliers.  Each returns a table of groups with a score on the one shared scale."""
