"""Running a trained generator: tiled upscaling, ONNX export, int8 quantization.

* :mod:`.upscale` - ``upscale`` any image (gray, alpha, 16-bit, any size) with tiling,
  precision and device choices, torch or ONNX Runtime.
* :mod:`.onnx` - export to ONNX (checked against torch), fp16 graphs, a session wrapper
  with the evaluation contract, and a cache keyed by the weights.
* :mod:`.int8` - post-training int8 quantization calibrated on training images.
"""
