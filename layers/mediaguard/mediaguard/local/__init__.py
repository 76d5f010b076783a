"""Local mode: the real template.yaml and state machine on moto, handlers in-process.

Nothing here forks pipeline logic: it deploys what the template declares into
moto and routes moto's Lambda invocations to the handlers the template names.
"""
