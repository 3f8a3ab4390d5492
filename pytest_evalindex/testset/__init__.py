"""The frozen test set: the record type, sampling it from a spec, and its JSONL file."""
