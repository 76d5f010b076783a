"""The generative-AI guard: what a platform puts in front of its own image generator.

mediaguard generates nothing. This area decides whether a generation request may run
and remembers what ran; it knows nothing of AWS (``mediaguard.adapters.generations``
stores quotas and records in DynamoDB, ``mediaguard.api.generations`` is the route).

* ``screen``: prompt screening that explains itself (reason codes and the rule that
  matched): a request to sexualise or undress an identifiable real person, through a
  reference image with a face or a named person; minors with any sexual content;
  obfuscation (spacing, leetspeak, homoglyphs, repeated letters, misspellings, a few
  other languages) normalised first. Deterministic rules are the floor.
* ``textmodel``: the text-classifier slot (ONNX, configured like the image slot).
* ``quota``: per-user and per-tenant token buckets, minute and day windows.
* ``records``: the generation record (user, tenant, prompt sha256, references, model,
  time; output sha256 and PDQ once the output is marked) and its audit chains.
* ``service``: one request through all of it (``request_generation``).
* ``config``: the settings, read once per process.

The marking side (watermark, C2PA, the own-generations bank, verify) lives beside these
modules and records outputs through ``records``.
"""
