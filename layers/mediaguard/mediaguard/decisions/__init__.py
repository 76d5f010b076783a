"""Decisions: what happens to an item and who decides.

Scoring with versioned policies (``scoring``), enforcement with chain of custody
(``enforcement``), human review and appeals (``review``), uploader history
(``history``), geographic legal blocks (``geofence``) and the decision events
platforms receive (``events``). Knows nothing of AWS.
"""
