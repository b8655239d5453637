"""Image quality: PSNR/SSIM, NIQE, FID, and the evaluation protocols (paper Sec. 4.1).

* :mod:`.psnr_ssim` - PSNR and SSIM on the Y channel with ``crop_border = scale``, as
  BasicSR and the published tables compute them.
* :mod:`.niqe` - NIQE, the no-reference half of the perceptual index (PIRM-SR, Sec. 4.3).
* :mod:`.fid` - Frechet Inception Distance with the pytorch-fid Inception network.
* :mod:`.scoring` - the ``standard`` and ``vendor`` protocols and the project's one
  scoring loop over SR / reference images; running a model to get them is
  :mod:`esrgan_lab.evaluation`.
"""
