"""Images and data: files, the one array <-> tensor conversion, degradation, datasets.

* :mod:`.images` - image files in and out (gray, alpha, 16-bit), the project's one
  conversion between OpenCV arrays and RGB tensors, and its one rounding rule.
* :mod:`.degrade` - MATLAB-compatible bicubic ``imresize``, ``modcrop`` and the standard
  x4 LQ image (paper Sec. 4.1: "down-sampling HR images with the MATLAB bicubic kernel").
* :mod:`.vendor` - the vendor benchmark's pre- and post-processing, exactly.
* :mod:`.samples` - scikit-image sample images, the fallback when no dataset is set.
* :mod:`.sources` - where images come from: folders, named sets, sample sets.
* :mod:`.paired` - GT/LQ training patches (stateless, resumable streams) and whole
  validation pairs.
* :mod:`.prepare` - training images cut into sub-images exactly as BasicSR's
  ``extract_subimages.py`` does (480x480, step 240; paired LQ, resumable, meta file).
* :mod:`.catalog` - known datasets by name (DIV2K, Flickr2K, OST, Set5, ...): where they
  come from, their checksums, and their resumable, checked download and extraction.
"""
