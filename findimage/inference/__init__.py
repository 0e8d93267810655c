"""Running the CLIP towers on an exported engine (ONNX Runtime) and sharing the cores."""
