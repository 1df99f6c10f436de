"""Adapters of the ports: ONNX Runtime sentiment, FAISS item index, Kafka clients."""
