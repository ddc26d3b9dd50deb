"""Pipelines: the runs that train *and* write result folders (``fit``, ``compare``, ``qc``,
``convert``).  The only layer that writes result folders; the CLI calls it."""
