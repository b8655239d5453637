"""Pretrained weights: file formats, the registry of named weights, loading and choosing.

* :mod:`.checkpoints` - every published RRDBNet key layout (official ESRGAN, old
  architecture, BasicSR/Real-ESRGAN), conversion, ``.pth``/``.safetensors`` I/O, and
  network interpolation (paper Sec. 3.4, Eq. 4).
* :mod:`.registry` - named weights with URLs and hashes, the hash-checked downloader,
  and the project's own weights in ``data/weights``.
* :mod:`.loading` - ``load_model`` (any checkpoint -> a matching RRDBNet) and
  ``select_weights``, the one choice among the weights on disk.
"""
