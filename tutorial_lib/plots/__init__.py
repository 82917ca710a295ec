"""Every figure of the course and of the training runs.

`shapes` holds the course figures (masks, descriptors, barriers), `training` the run figures
(curves, box plots, predictions), `study` the study tool's and the free-mask laboratory's. All
are re-exported here: `from tutorial_lib import plots`.
"""

from tutorial_lib.plots.shapes import *  # noqa: F401,F403
from tutorial_lib.plots.study import *  # noqa: F401,F403
from tutorial_lib.plots.training import *  # noqa: F401,F403
