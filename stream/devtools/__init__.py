"""Developer tools: the local Kafka launcher, the demo and its index."""
