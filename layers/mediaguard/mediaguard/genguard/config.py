"""The generative-AI guard's settings, read once per process from the environment."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field, SecretStr

from mediaguard.genguard.quota import Limits


class GenGuardSettings(BaseModel):
    """Tables, limits, prompt retention and the text-classifier slot.

    ``limits`` is JSON (env ``MEDIAGUARD_GENGUARD_LIMITS``), e.g.
    ``{"user": {"minute": {"limit": 5, "burst": 5}, "day": {"limit": 100}},
    "tenant": {"minute": {"limit": 600}, "day": {"limit": 100000}}}``; a window left out
    keeps its default (:data:`mediaguard.genguard.quota.DEFAULT_LIMITS`).
    """

    generations_table: str | None = None
    quota_table: str | None = None
    limits: Limits = Field(default_factory=Limits)
    # Prompts are personal data and, for a refused one, often abusive text naming a real
    # person: only their sha256 is kept unless the platform turns this on.
    store_prompts: bool = False
    # JSON file of text classifiers (mediaguard.genguard.textmodel.TextModelsConfig). None: rules only.
    text_models_config: str | None = None
    # The JWT claim naming the platform tenant a request is billed to; without it the
    # caller's subject (a platform's service identity) is the tenant.
    tenant_claim: str = "tenant"
    # Who may call the generation routes: the platform's backend, not an end user holding
    # an upload token (who could otherwise name any ``user`` and spend their quota). A JWT
    # passes with this OAuth scope in ``scope`` or this group in ``cognito:groups``.
    platform_scope: str = "mediaguard/generations"
    platform_group: str = "platform"
    # Local mode only: the dev token map (JSON {token: {"sub", "roles"}}, as the review API
    # reads it); a token whose roles hold ``platform_group`` is the platform. Empty on AWS.
    dev_tokens: SecretStr | None = None
    # open_nsfw score of a reference at or above which the reference itself is explicit.
    # 0.8 is Yahoo's own suggestion for "likely NSFW" (scores below 0.2 are "likely safe").
    reference_nsfw_threshold: float = Field(default=0.8, gt=0.0, le=1.0)


_ENV = {
    "generations_table": "GENERATIONS_TABLE",
    "quota_table": "GENGUARD_QUOTA_TABLE",
    "limits": "MEDIAGUARD_GENGUARD_LIMITS",
    "store_prompts": "MEDIAGUARD_GENGUARD_STORE_PROMPTS",
    "text_models_config": "MEDIAGUARD_TEXT_MODELS_CONFIG",
    "tenant_claim": "MEDIAGUARD_GENGUARD_TENANT_CLAIM",
    "platform_scope": "MEDIAGUARD_GENGUARD_PLATFORM_SCOPE",
    "platform_group": "MEDIAGUARD_GENGUARD_PLATFORM_GROUP",
    "dev_tokens": "MEDIAGUARD_DEV_TOKENS",
    "reference_nsfw_threshold": "MEDIAGUARD_GENGUARD_REFERENCE_NSFW",
}


@lru_cache(maxsize=1)
def get_genguard_settings() -> GenGuardSettings:
    """Settings from the environment; cached so every warm invocation reuses them."""
    values: dict = {field: os.environ[var] for field, var in _ENV.items() if os.environ.get(var)}
    if "limits" in values:
        values["limits"] = Limits.model_validate_json(values["limits"])
    return GenGuardSettings.model_validate(values)
