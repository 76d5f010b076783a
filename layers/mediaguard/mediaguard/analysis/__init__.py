"""Analysis: what the frames look like and what they match.

Classifiers and their model slot (``classify``), embeddings (``embedding``),
near-duplicate rules (``neardup``), the PDQ multi-index (``index``), the bank
service and hash-exchange formats (``banks``), and matching against the newest
index build plus the live delta (``matching``). Knows nothing of AWS.
"""
