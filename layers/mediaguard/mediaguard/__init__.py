"""mediaguard: sanitize, fingerprint, classify, match, score and act on uploaded media.

The core modules know nothing of AWS; S3 and DynamoDB live behind the adapters in
``mediaguard.adapters``, and ``mediaguard.local`` runs the real template and state
machine on moto for the CLI and the tests.
"""

__version__ = "0.1.0"
