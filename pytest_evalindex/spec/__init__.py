"""The index spec: the YAML a user writes, validated, and its tree of weighted datasets."""
