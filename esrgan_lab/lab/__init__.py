"""The notebook layer: plots, widgets and the studies behind the notebooks.

Nothing in the core package imports this layer; it is the only one that imports
matplotlib or ipywidgets.

* :mod:`.viz` - plot helpers and ``savefig``, the one writer of ``figures/``.
* :mod:`.diagrams` - the architecture diagram, drawn by code.
* :mod:`.widgets` - ipywidgets (architecture explorer, comparison and interpolation
  sliders) with static fallbacks when headless.
* :mod:`.analysis` - small measurements: stage shapes, activation growth, timings.
* :mod:`.runs` - training runs through the project's trainer, and their logs.
* :mod:`.bn_study` - notebook 02, the BN-removal ablation (paper Sec. 3.1);
  :mod:`.bn_study_v2` its redesigned, registered study (issue 28).
* :mod:`.loss_study` - notebook 03, perceptual features and RaGAN (Sec. 3.2-3.3);
  :mod:`.loss_study_v2` its redesigned, registered study (issue 28).
* :mod:`.precision_study` - the deployment-precision appendix (notebook 06).
"""
