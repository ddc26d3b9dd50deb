"""Drawing: the one palette (and, as the layers settle, figures and rasters)."""
