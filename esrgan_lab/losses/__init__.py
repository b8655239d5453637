"""The losses of ESRGAN's two training stages (paper Sec. 3.2-3.4, Eq. 1-3).

* :mod:`.pixel` - the L1 content loss.
* :mod:`.perceptual` - the perceptual loss on features *before* activation (Sec. 3.3).
* :mod:`.backbones` - the feature networks it can use, by name (``vgg19-imagenet``,
  ``vgg16-hed``, ``random``).
* :mod:`.gan` - the relativistic average GAN loss (Sec. 3.2) and the standard GAN.
"""
