"""sonomap export stage: checkpoint -> ONNX -> FP16 TensorRT engine, with parity checks and a manifest."""
