"""Hash banks: what a bank holds, the rules for changing it, and the CSV exchange format.

A bank is a named list of entries with a *kind*: ``block`` (e.g. victim-submitted NCII
hashes), ``flag`` (e.g. known deepfakes) or ``allow`` (verified originals; scoring lets
an allow match override a block match). It has per-signal thresholds (PDQ distance,
default 31; embedding cosine, default None = the system threshold) and an optional
action label that its matches carry. An entry is one banked photo, or one frame of a
banked video (``ref = <group>#<n>``), with a PDQ hash (64 hex), an embedding (base64 of
float16, see :func:`~mediaguard.analysis.banks.embeddings.encode_embedding`) or both.

Third-party hashes can be wrong, so an entry can be confirmed (who, when) and
withdrawn. StopNCII practice is that a withdrawn hash must be deleted: withdrawing
drops the hash and the embedding at once and keeps a tombstone (ref, who, when), so the
audit holds and re-importing the same list cannot bring the hash back.

Storage sits behind :class:`~.store.BankStore` (DynamoDB in ``adapters/banks.py``, files in
``local/bankfile.py``). :class:`~.service.BankService` holds the rules and is also the
:class:`~mediaguard.analysis.matching.BankReader` the similarity stage reads.

One module, one thing; import from the module that owns the name:

============== ==========================================================================
``model``       the records: Bank, Entry, NewEntry, Features (+ Featurizer), AddReport,
                and the kinds, actions and entry statuses
``errors``      BankError and its subclasses, each with a stable ``reason`` code
``validation``  what bank names, refs and qualities may be; refs derived from a hash or media
``embeddings``  how an embedding is stored (normalised float16, base64)
``exchange``    the hash-exchange CSV: reading StopNCII / ThreatExchange / PDQ-hasher
                shapes, writing this module's own
``store``       the BankStore protocol the DynamoDB and file stores implement
``service``     BankService: the rules for creating, adding, confirming, withdrawing,
                deleting; the matcher's reads
``indexing``    a stored entry as the matcher's index rows
``sources``     entries from outside: the default PDQ featurizer, folders, CSV files,
                ``mediaguard scan --bank NAME[:KIND]=PATH``
============== ==========================================================================

Nothing is re-exported here: a Lambda that only reads banks should not import the CSV
parser or the ingest path (Pillow, sanitizers) because they sit in the same package.
"""
