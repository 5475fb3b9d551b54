"""Engine contract, load_engine(), backends torch | onnxruntime | tensorrt, export and build."""
