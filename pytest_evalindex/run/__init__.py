"""Running a test set against a model: loading an index, the model clients and cache, the
look-ahead and xdist scheduling, the embedded model, interruptions.
"""
