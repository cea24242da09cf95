"""Seeing the result of a sort run: a self-contained HTML report and data for a viewer.

``build_report(run_dir, averages_dir=..., tomogram=..., annotation=...)`` returns one HTML page
(images as embedded PNG, inline CSS, no scripts) with the run record, per-iteration curves, a
t-SNE map of the features, a gallery of the classes and, with truth, the evaluation.
``viewer_layers`` prepares the layers ``cryomine view`` shows in napari. See ``docs/report.md``.
"""

from cryomine.report._build import build_report, write_report
from cryomine.report._figures import ISOSURFACE_AVAILABLE, class_color, embedding_2d
from cryomine.report._layers import ViewerLayer, viewer_layers
from cryomine.report._run import ClassAverageFiles, RunData, load_run, read_fsc_csv

__all__ = [
    "ISOSURFACE_AVAILABLE",
    "ClassAverageFiles",
    "RunData",
    "ViewerLayer",
    "build_report",
    "class_color",
    "embedding_2d",
    "load_run",
    "read_fsc_csv",
    "viewer_layers",
    "write_report",
]
