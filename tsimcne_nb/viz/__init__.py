"""Drawing: the one palette (:mod:`~tsimcne_nb.viz.palette`), figures of maps and datasets
(:mod:`~tsimcne_nb.viz.figures`) and images placed on a map (:mod:`~tsimcne_nb.viz.overlays`).

matplotlib is imported only inside the drawing functions.
"""

from tsimcne_nb.viz.figures import class_colors, contact_sheet, plot_map, plot_panels, save_figure
from tsimcne_nb.viz.overlays import callouts, thumbnail_grid_over_map

__all__ = ["callouts", "class_colors", "contact_sheet", "plot_map", "plot_panels", "save_figure",
           "thumbnail_grid_over_map"]
