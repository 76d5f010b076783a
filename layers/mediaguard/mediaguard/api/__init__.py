"""HTTP APIs: the upload API (``uploads``) and the review/admin API (``review``).

Both are Powertools resolvers (``app``) whose handlers only plug adapters in with
``use(...)``; both answer refusals in the one format of ``errors`` and read the caller
with ``auth``.
"""
