"""The algorithms, one module each with all its forms side by side.

colour (luma weights, YCbCr matrices and ranges), downscale (the thumbnail γ is estimated from),
estimator (the γ network: module, ONNX graph, ONNX Runtime), gamma (``x ** γ``), guide (the
guided upsampling of γ), denoise (noise measurement and bilateral filter), temporal_denoise (the
motion-aware recursive filter), histogram (the light-change test). Each holds a torch float form
and, where the CPU 8-bit paths need them, the 8-bit RGB and 4:2:0 plane forms; tests compare the
forms in tests/test_ops.py.
"""
