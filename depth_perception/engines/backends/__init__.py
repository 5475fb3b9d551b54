"""Engine backends: torch (safetensors + registry), onnxruntime (.onnx), tensorrt (serialized plans)."""
