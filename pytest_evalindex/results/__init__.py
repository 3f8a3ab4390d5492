"""The results document: its types, the tables and intervals computed from samples, and
everything that reads a finished run (gates, comparisons, baselines, repeats, shards).
"""
