"""Running a trained generator: tiled upscaling, ONNX export, int8 quantization, engines.

* :mod:`.upscale` - ``upscale`` any image (gray, alpha, 16-bit, any size) with tiling
  (chosen to fit a memory budget by default), precision and device choices.
* :mod:`.onnx` - export to ONNX (checked against torch), fp16 graphs, a session wrapper
  with the evaluation contract, and a cache keyed by the weights.
* :mod:`.int8` - calibration images (training sets only) and ONNX Runtime's QDQ int8.
* :mod:`.openvino` - OpenVINO fp32 and NNCF int8 (the fast int8 path on x86 CPUs).
* :mod:`.engines` - which engine runs a model file (checkpoint, ``.onnx``, OpenVINO IR).
"""
