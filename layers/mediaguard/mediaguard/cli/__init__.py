"""The ``mediaguard`` command line (local mode and operators' tools). Never in a Lambda layer."""
