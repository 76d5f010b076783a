"""Evidence packages for legal and law enforcement: one zip per item, verifiable offline.

Contents (``build_package``):

* ``original`` — the upload as received, from the evidence bucket (S3 Object Lock) when the
  item was removed, else the pinned upload version; ``sanitized`` likewise;
* ``audit/chain.jsonl`` — every record of the item's audit chain;
* ``audit/anchor.json`` — the newest archived digest (Object Lock, compliance mode) whose
  heads include this chain, exactly as archived, with its S3 key;
* ``manifest.json`` — media id, export time, each file's sha256 and size, and the sha256 of
  the original recorded on the chain at ingest or preservation;
* ``SHA256SUMS`` — ``sha256sum -c`` format, for every file above;
* ``VERIFY.txt`` — how to check all of it without mediaguard.

``verify_package`` does what VERIFY.txt describes and returns the problems (empty: verified).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import asdict, dataclass
from typing import Any

from mediaguard.audit import chain as audit

FORMAT = "mediaguard.evidence/1"
CHAIN_FILE = "audit/chain.jsonl"
ANCHOR_FILE = "audit/anchor.json"

VERIFY_TEXT = """\
Verifying this evidence package offline
=======================================

1. File integrity. In the unzipped folder run:

       sha256sum -c SHA256SUMS

   Every line must say OK. manifest.json lists the same sums and sizes.

2. The audit chain (audit/chain.jsonl: one JSON record per line, in seq order). For each
   record compute

       sha256( json.dumps({"chain": chain, "seq": seq, "at": at, "actor": actor, "event": event,
                           "detail": detail, "prev": prev_hash},
                          sort_keys=True, separators=(",", ":")) )

   (Python's json.dumps; UTF-8, lower-case hex). It must equal the record's "hash", and each
   record's "prev_hash" must equal the previous record's "hash" (the first: 64 zeros).

3. The original. The chain records its sha256 at ingest ("detail.sha256" of the "sanitized"
   or "<media type>_accepted" record) and at removal (the "evidence_preserved" record's
   evidence entry of role "original"): every such value must equal the sha256 of the file
   "original", and at least one of those records must be anchored (step 4). Likewise the
   file "sanitized" against "detail.sanitized_sha256" of the "sanitized" record and the
   "sanitized" evidence entry. (manifest.json's "recorded_original_sha256" is a convenience
   copy, not evidence: the manifest is not signed.)

4. The anchor (audit/anchor.json, when present). "digest" is the archived digest, byte for byte
   as stored under "key" in the stack's digest bucket, under S3 Object Lock in compliance mode
   (nobody can alter it before its retention ends). Check:
   a. sha256 of json.dumps(sorted([chain, seq, hash] for each head), separators=(",", ":"))
      equals digest.record.detail.root;
   b. digest.record.hash recomputes as in step 2;
   c. digest.heads[<media id>] = [seq, hash] names a record of audit/chain.jsonl with that hash.
   To rule out a forged anchor, fetch the object at "key" from the digest bucket ("bucket")
   yourself and compare it with "digest". Records after the anchored seq are held only by the
   chain's links until a later digest (in the stack, not in this package) anchors them.

`mediaguard evidence verify PACKAGE.zip` runs steps 1-4 (without the fetch in 4).
"""


@dataclass(frozen=True)
class PackageInputs:
    media_id: str
    exported_at: str
    files: dict[str, bytes]  # "original", "sanitized" (whichever exist)
    sources: dict[str, str]  # file -> where it came from (bucket/key), for the manifest
    records: list[audit.AuditRecord]
    anchor: dict[str, Any] | None  # {"key", "version_id", "lock_mode", "digest": <decoded JSON>}
    recorded_original_sha256: str | None


# Records whose ``detail.sha256`` is the original's, written at ingest by the sanitize stage.
# ``failed``: the failure stage records it when sanitize never returned (a timeout).
INGEST_HASH_EVENTS = frozenset({"sanitized", "image_accepted", "animation_accepted", "video_accepted",
                                "audio_accepted", "failed"})
# Read at most this much uncompressed from a package: a zip bomb is refused, not inflated.
MAX_UNCOMPRESSED = 2 * 1024**3


def chain_hashes(records: list[audit.AuditRecord], role: str) -> list[tuple[int, str]]:
    """(seq, sha256) of every record of the chain stating the sha256 of ``role`` (``original``
    or ``sanitized``): at ingest, and at preservation for removal."""
    found: list[tuple[int, str]] = []
    field = "sha256" if role == "original" else "sanitized_sha256"
    for record in records:
        detail = record.detail or {}
        if record.event in INGEST_HASH_EVENTS and detail.get(field):
            found.append((record.seq, str(detail[field])))
        elif record.event == "evidence_preserved":
            found += [(record.seq, str(e["sha256"])) for e in detail.get("evidence", [])
                      if e.get("role") == role and e.get("sha256")]
    return found


def recorded_original_sha256(records: list[audit.AuditRecord], fallback: str | None) -> str | None:
    """The original's sha256 as the chain states it (the latest record), else ``fallback`` (the
    item's ``sha256`` from ingest)."""
    found = chain_hashes(records, "original")
    return found[-1][1] if found else fallback


def find_anchor(archive: list[audit.ArchivedDigest], chain: str) -> dict[str, Any] | None:
    """The newest archived digest whose heads include ``chain``, as the package stores it."""
    best: tuple[int, audit.ArchivedDigest, audit.Digest] | None = None
    for obj in archive:
        try:
            digest = audit.decode_digest(obj.body)
        except ValueError:
            continue
        if chain in digest.heads and (best is None or digest.seq > best[0]):
            best = (digest.seq, obj, digest)
    if best is None:
        return None
    _, obj, _ = best
    return {"key": obj.key, "lock_mode": obj.lock_mode, "digest": json.loads(obj.body)}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_package(inputs: PackageInputs) -> bytes:
    """The zip (deterministic order, stored timestamps fixed to the export time's date)."""
    files: dict[str, bytes] = dict(inputs.files)
    files[CHAIN_FILE] = "".join(json.dumps(asdict(r), sort_keys=True) + "\n" for r in inputs.records).encode()
    if inputs.anchor is not None:
        files[ANCHOR_FILE] = json.dumps(inputs.anchor, sort_keys=True, indent=1).encode()
    manifest = {
        "format": FORMAT, "media_id": inputs.media_id, "exported_at": inputs.exported_at,
        "recorded_original_sha256": inputs.recorded_original_sha256,
        "anchored": inputs.anchor is not None,
        "files": {name: {"sha256": _sha(data), "size": len(data), "source": inputs.sources.get(name)}
                  for name, data in sorted(files.items())},
    }
    files["manifest.json"] = json.dumps(manifest, sort_keys=True, indent=1).encode()
    sums = "".join(f"{_sha(data)}  {name}\n" for name, data in sorted(files.items()))
    files["SHA256SUMS"] = sums.encode()
    files["VERIFY.txt"] = VERIFY_TEXT.encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            zf.writestr(zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0)), files[name])
    return buffer.getvalue()


def verify_package(data: bytes) -> tuple[list[str], dict[str, Any]]:
    """Steps 1-4 of VERIFY.txt: (problems, summary). No problem means the package verifies."""
    problems: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            # zipfile never inflates an entry past its declared size, so the declared sizes bound the read.
            if sum(info.file_size for info in zf.infolist()) > MAX_UNCOMPRESSED:
                return [f"the package inflates to more than {MAX_UNCOMPRESSED} bytes: not read"], {}
            files = {name: zf.read(name) for name in zf.namelist()}
    except zipfile.BadZipFile:
        return ["not a zip file"], {}
    if "SHA256SUMS" not in files or "manifest.json" not in files:
        return ["SHA256SUMS or manifest.json is missing"], {}
    listed: dict[str, str] = {}
    for line in files["SHA256SUMS"].decode().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
        if name not in files:
            problems.append(f"{name}: listed in SHA256SUMS but missing")
        elif _sha(files[name]) != digest:
            problems.append(f"{name}: sha256 does not match SHA256SUMS")
    for name in files:
        if name not in listed and name not in ("SHA256SUMS", "VERIFY.txt"):
            problems.append(f"{name}: not listed in SHA256SUMS")
    manifest = json.loads(files["manifest.json"])
    for name, entry in manifest.get("files", {}).items():
        if name not in files:
            problems.append(f"{name}: listed in manifest.json but missing")
        elif _sha(files[name]) != entry["sha256"]:
            problems.append(f"{name}: sha256 does not match manifest.json")
    media_id = manifest.get("media_id")
    records = [audit.AuditRecord(**json.loads(line)) for line in files.get(CHAIN_FILE, b"").decode().splitlines()]
    problems += [f"audit chain: {f}" for f in audit.verify(records, chain=media_id) if f.failing]
    anchored = None
    if ANCHOR_FILE in files:
        anchored = _check_anchor(json.loads(files[ANCHOR_FILE]), media_id, records, problems)
    # The expected hashes come from the chain (linked, and anchored by the digest), never from
    # the unsigned manifest: a swapped file with a rewritten manifest and SHA256SUMS must fail.
    recorded = None
    for role in ("original", "sanitized"):
        stated = chain_hashes(records, role)
        if role not in files:
            continue
        if not stated:
            if role == "original":
                problems.append("original: the audit chain records no sha256 of it")
            continue
        if any(_sha(files[role]) != sha for _, sha in stated):
            problems.append(f"{role}: sha256 differs from the one recorded on the audit chain")
        if anchored is not None and all(seq > anchored for seq, _ in stated):
            problems.append(f"{role}: no record stating its sha256 is anchored by the digest")
        if role == "original":
            recorded = stated[-1][1]
    # Records after the anchored one are protected by the chain's links only, until a later
    # digest (in the stack, not in this package) anchors them.
    unanchored = len(records) if anchored is None else sum(1 for r in records if r.seq > anchored)
    return problems, {"media_id": media_id, "files": len(files), "records": len(records),
                      "anchored_seq": anchored, "unanchored_records": unanchored, "original_sha256": recorded}


def _check_anchor(anchor: dict[str, Any], media_id: str, records: list[audit.AuditRecord],
                  problems: list[str]) -> int | None:
    try:
        digest = audit.decode_digest(json.dumps(anchor["digest"]).encode())
    except (ValueError, KeyError):
        problems.append("anchor: not a digest")
        return None
    if audit.heads_root(digest.heads) != digest.record.detail.get("root"):
        problems.append("anchor: the digest's root does not match its heads")
    r = digest.record
    if audit.record_hash(r.chain, r.seq, r.at, r.actor, r.event, r.detail, r.prev_hash) != r.hash:
        problems.append("anchor: the digest record's hash does not recompute")
    head = digest.heads.get(media_id)
    by_seq = {rec.seq: rec for rec in records}
    if head is None or head.seq not in by_seq or by_seq[head.seq].hash != head.hash:
        problems.append("anchor: the digest does not anchor this chain's records")
        return None
    return head.seq
