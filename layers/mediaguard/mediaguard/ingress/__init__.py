"""Ingress: what an upload is and what it is made safe as.

Sniffing and limits (``media``), metadata removal (``sanitize``), provenance read
before it is stripped (``forensics``), fingerprints (``fingerprint``), video and
animation frames (``video``), and ``ingest.prepare``, the one function that takes
raw bytes to a sanitized, fingerprinted image. Knows nothing of AWS.
"""
