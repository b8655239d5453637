"""The networks: the RRDBNet generator, the discriminators, and what they cost.

* :mod:`.rrdbnet` - ``RRDB`` / ``RRDBNet`` (paper Sec. 3.1, Fig. 3-4): dense blocks,
  residual-in-residual, residual scaling 0.2, 0.1-scaled init, no BatchNorm (a ``norm``
  switch brings it back for the BN-removal ablation).
* :mod:`.spec` - :class:`~.spec.ModelSpec`, the one typed description of a generator
  (sizes, scale, beta, init, norm) that detection returns and everything else takes.
* :mod:`.discriminators` - the VGG-style discriminator of ESRGAN/SRGAN (Sec. 3.2) and
  Real-ESRGAN's U-Net discriminator.
* :mod:`.complexity` - parameters and FLOPs under named counting conventions.
* :mod:`.memory` - activation memory, estimated in closed form and measured.
"""
