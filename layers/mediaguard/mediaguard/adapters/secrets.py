"""Secrets read at run time from Secrets Manager, never from a function's environment.

A ``{{resolve:secretsmanager:...}}`` reference in a template puts the value itself into
the function configuration, where anyone with ``lambda:GetFunctionConfiguration`` reads
it. The template passes the secret's ARN instead; the function reads the value with
its own role (``secretsmanager:GetSecretValue`` on that one secret) and keeps it warm.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3

from mediaguard.decisions.history import Pseudonymiser
from mediaguard.errors import MediaguardError

if TYPE_CHECKING:
    from mediaguard.genguard.provenance import SigningMaterial
    from mediaguard.settings import Settings


class SecretsManagerSecret:
    """A secret's ``AWSCURRENT`` value from Secrets Manager, re-read every ``max_age``
    seconds so a rotated secret is used without a deploy. Rotation of the webhook secret:
    give the platform the new value first (it verifies with old and new), then promote it
    to ``AWSCURRENT``. Calling returns a one-element list (the webhook signs with each)."""

    def __init__(self, client: Any, secret_id: str, *, max_age: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.secret_id, self.max_age, self.clock = client, secret_id, max_age, clock
        self._value: list[str] | None = None
        self._read_at = 0.0

    def __call__(self) -> list[str]:
        if self._value is None or self.clock() - self._read_at > self.max_age:
            self._value = [self.client.get_secret_value(SecretId=self.secret_id)["SecretString"]]
            self._read_at = self.clock()
        return self._value

    def __repr__(self) -> str:  # never print the value
        return f"SecretsManagerSecret({self.secret_id!r})"


def uploader_pseudonymiser(settings: Settings, *, secretsmanager: Any = None) -> Pseudonymiser | None:
    """The HMAC for uploader ids, keyed with the secret ``MEDIAGUARD_UPLOADER_KEY_SECRET_ARN``
    names (read once here; callers cache the result per container, see ``mediaguard.wiring``)
    or, for the CLI and tests, the inline ``MEDIAGUARD_UPLOADER_KEY``. None when neither is set.

    The key is read once, not every few minutes like the webhook secret: rotating it changes
    every uploader's partition key (it resets every history), so it is never rotated live.
    """
    if settings.uploader_key_secret_arn:
        client = secretsmanager or boto3.client("secretsmanager", region_name=settings.region)
        value = SecretsManagerSecret(client, settings.uploader_key_secret_arn)()[0]
        if not value:
            raise MediaguardError("the uploader key secret is empty", reason="misconfigured")
        return Pseudonymiser(value)
    if settings.uploader_key:
        return Pseudonymiser(settings.uploader_key)
    return None


def genguard_signing_material(settings: Settings, *, secretsmanager: Any = None) -> SigningMaterial:
    """The C2PA signer of generated outputs: the secret ``MEDIAGUARD_GENGUARD_SIGNING_SECRET_ARN``
    names (``{"certificate_chain": PEM, "private_key": PEM}``, read once; callers cache it),
    or, where none is configured (local mode, tests), the development signer that
    ``genguard.provenance.dev_signing_material`` creates under ``$MEDIAGUARD_HOME``."""
    from mediaguard.genguard.provenance import SigningMaterial, dev_signing_material

    if settings.genguard_signing_secret_arn:
        client = secretsmanager or boto3.client("secretsmanager", region_name=settings.region)
        return SigningMaterial.from_secret(SecretsManagerSecret(client, settings.genguard_signing_secret_arn)()[0])
    return dev_signing_material()
