"""Pure state and ranking maths: no faust, onnxruntime or faiss imports allowed here."""
