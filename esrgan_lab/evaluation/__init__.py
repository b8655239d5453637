"""Evaluation: running a model over a data set and scoring it (paper Sec. 4.1).

* :mod:`.evaluate` - the one place a model is run for scoring (:func:`.evaluate.run_model`),
  models loaded for evaluation, image pairs and whole datasets run and scored under the
  ``standard`` or ``vendor`` protocol, and folders of SR outputs scored against their GT.

Above :mod:`esrgan_lab.inference` (which runs models) and :mod:`esrgan_lab.metrics`
(which scores images); used by ``esrgan-lab evaluate``, the trainer and the notebooks.
"""
