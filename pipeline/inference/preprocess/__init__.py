"""Pre-processing: JPEG bytes -> model input tensor, on the CPU or the GPU."""
