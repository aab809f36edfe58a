"""``crdm tune``: parameter search with Optuna, of the Section-4 experiment or of MSTDP.

* :mod:`crdm.tune.tasks`: what a study searches (``section4``, ``mstdp``), each task's space,
  settings, objective, baseline and export declared in one place;
* :mod:`crdm.tune.space`: search-space dimensions, overrides, and the Section-4 space;
* :mod:`crdm.tune.objective`: a Section-4 trial's parameters → Figure-3 features → w-kNN
  accuracy on training images;
* :mod:`crdm.tune.mstdp`: an MSTDP trial's parameters → a trained network → its accuracy on
  held-out training images;
* :mod:`crdm.tune.study`: the study in a folder (SQLite storage), run here, in several
  processes or on Dask workers, resumable after a kill; confirmation on held-out training
  images; export of a trial for ``crdm reproduce fig3 --config``;
* :mod:`crdm.tune.report`: tables and plots.
"""

from crdm.tune.mstdp import MSTDP_SPACE, MstdpSearchSettings, evaluate_mstdp
from crdm.tune.objective import Readout, SearchSettings, evaluate, trial_configuration
from crdm.tune.space import SEARCH_SPACE, Dimension, apply_overrides, suggest
from crdm.tune.study import (
    TuneData,
    confirm,
    export_trial,
    open_folder,
    open_study,
    optimize,
    run_on_dask,
    split_training_images,
)
from crdm.tune.tasks import TASKS, Task, get_task

__all__ = ["MSTDP_SPACE", "SEARCH_SPACE", "TASKS", "Dimension", "MstdpSearchSettings", "Readout",
           "SearchSettings", "Task", "TuneData", "apply_overrides", "confirm", "evaluate",
           "evaluate_mstdp", "export_trial", "get_task", "open_folder", "open_study",
           "optimize", "run_on_dask", "split_training_images", "suggest",
           "trial_configuration"]
