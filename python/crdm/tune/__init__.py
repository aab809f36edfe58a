"""``crdm tune``: parameter search for the Section-4 experiment with Optuna.

* :mod:`crdm.tune.space`: the search space, declared in one place;
* :mod:`crdm.tune.objective`: a trial's parameters → Figure-3 features → w-kNN accuracy on
  training images;
* :mod:`crdm.tune.study`: the study in a folder (SQLite storage), run here, in several
  processes or on Dask workers, resumable after a kill; confirmation on held-out training
  images; export of a trial for ``crdm reproduce fig3 --config``;
* :mod:`crdm.tune.report`: tables and plots.
"""

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

__all__ = ["SEARCH_SPACE", "Dimension", "Readout", "SearchSettings", "TuneData",
           "apply_overrides", "confirm", "evaluate", "export_trial", "open_folder",
           "open_study", "optimize", "run_on_dask", "split_training_images", "suggest",
           "trial_configuration"]
