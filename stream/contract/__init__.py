"""Records, decoding and topic names: the contract every producer and consumer shares."""
