"""Audit: the tamper-evident trail.

Hash-chained records per chain, heads and digests anchored in an Object Lock
bucket, and verification (``chain``). Every other area appends through it.
"""
