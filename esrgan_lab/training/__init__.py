"""Training the two stages of ESRGAN (paper Sec. 4.1): PSNR-oriented, then GAN.

* :mod:`.config` - YAML configs validated against dataclasses.
* :mod:`.steps` - one optimisation step of each stage (the only ``backward`` calls) and
  the EMA of the generator.
* :mod:`.state` - checkpoints, RNG state, resume, the exported generator.
* :mod:`.log` - the per-stage ``log.csv`` and running means of the losses.
* :mod:`.runtime` - process group, device, mixed precision, learning-rate schedules.
* :mod:`.trainer` - the ``Trainer`` that ties them together (also under ``torchrun``).
"""
