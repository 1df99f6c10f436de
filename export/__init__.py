"""Build-time tooling: train the heads, export ONNX, build item indexes (torch lives only here)."""
