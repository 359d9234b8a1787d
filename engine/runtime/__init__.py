"""Where networks run: device choice, the torch face restorer, ONNX export."""
