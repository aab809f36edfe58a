"""Reproductions of the seed papers' experiments, each resumable and writing CSV + JSON + PNG.

* :mod:`crdm.reproduce.fig3` — Section 4 / Figure 3 of George et al.: k-NN on STDP weight
  trajectories, beside raw-pixel, random-projection and STDP-off baselines.
"""
