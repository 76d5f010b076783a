"""Generative-AI guard: screening, quotas, records (genscreen); marking and verification (genmark)."""
