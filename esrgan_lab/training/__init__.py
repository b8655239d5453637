"""Training the two stages of ESRGAN (paper Sec. 4.1): PSNR-oriented, then GAN.

* :mod:`.config` - YAML configs validated against dataclasses.
* :mod:`.steps` - one optimisation step of each stage (the only ``backward`` calls) and
  the EMA of the generator.
* :mod:`.models` - the generator (from scratch or pretrained), discriminator and loss
  terms of a stage.
* :mod:`.stage` - one stage as it runs: models, optimizers, schedules, where it stands;
  its checkpoint, restore, export and metrics.
* :mod:`.state` - checkpoint folders, RNG state, resume, the exported generator.
* :mod:`.patches` - the training patch stream and its loader.
* :mod:`.validation` - the validation pairs and their Y-PSNR during training.
* :mod:`.log` - the per-stage ``log.csv``, its rows, running means of the losses.
* :mod:`.runtime` - process group, device, mixed precision, learning-rate schedules.
* :mod:`.trainer` - the ``Trainer`` and its loop, tying them together (also under
  ``torchrun``).
"""
