"""Evidence packages verified offline (``decisions.evidence``): the expected hashes come from
the anchored audit chain inside the package, never from its unsigned manifest."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from mediaguard.audit import chain as audit
from mediaguard.decisions.evidence import PackageInputs, build_package, verify_package

ORIGINAL, SANITIZED = b"the upload as received", b"the sanitized copy"
AT = "2030-01-01T12:00:00+00:00"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _package(original: bytes = ORIGINAL) -> bytes:
    """A package as the export builds it: the ingest record, then a digest anchoring it."""
    sanitized = audit.next_record("m1", None, AT, "system:sanitize", "sanitized",
                                  {"sha256": _sha(original), "sanitized_sha256": _sha(SANITIZED)})
    digest = audit.next_digest(None, AT, {"m1": audit.Head(sanitized.seq, sanitized.hash)})
    anchor = {"key": digest.key, "lock_mode": "COMPLIANCE", "digest": json.loads(audit.encode_digest(digest))}
    return build_package(PackageInputs(media_id="m1", exported_at=AT, files={"original": ORIGINAL,
                                                                             "sanitized": SANITIZED},
                                       sources={}, records=[sanitized], anchor=anchor,
                                       recorded_original_sha256=_sha(original)))


def _forged(package: bytes, replace: dict[str, bytes], drop: str | None = None) -> bytes:
    """Files swapped or dropped, with manifest.json (recorded hash included) and SHA256SUMS rewritten to match."""
    files = {n: zipfile.ZipFile(io.BytesIO(package)).read(n) for n in zipfile.ZipFile(io.BytesIO(package)).namelist()}
    files |= replace
    manifest = json.loads(files["manifest.json"])
    for name, data in replace.items():
        manifest["files"][name]["sha256"] = _sha(data)
    if "original" in replace:
        manifest["recorded_original_sha256"] = _sha(replace["original"])
    files["manifest.json"] = json.dumps(manifest).encode()
    if drop:
        files.pop(drop)
    files["SHA256SUMS"] = "".join(f"{_sha(d)}  {n}\n" for n, d in sorted(files.items())
                                  if n not in ("SHA256SUMS", "VERIFY.txt")).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def test_a_genuine_package_verifies():
    # GIVEN a package whose anchored chain records the original's and the copy's hashes
    # WHEN it is verified THEN nothing is wrong and the original's hash comes from the chain
    problems, summary = verify_package(_package())
    assert problems == [] and summary["original_sha256"] == _sha(ORIGINAL) and summary["anchored_seq"] == 0


def test_a_swapped_original_with_a_rewritten_manifest_and_sums_fails():
    # GIVEN the original swapped, manifest.json (recorded hash too) and SHA256SUMS rewritten to match
    forged = _forged(_package(), {"original": b"someone else's picture"})
    # WHEN it is verified THEN the chain's hash of the original exposes it
    assert "original: sha256 differs from the one recorded on the audit chain" in verify_package(forged)[0]


def test_a_swapped_sanitized_copy_fails_against_the_chain():
    forged = _forged(_package(), {"sanitized": b"another copy"})
    assert "sanitized: sha256 differs from the one recorded on the audit chain" in verify_package(forged)[0]


def test_a_file_the_manifest_lists_but_the_package_lacks_fails():
    # GIVEN the sanitized copy dropped from the zip and from SHA256SUMS, the manifest still listing it
    forged = _forged(_package(), {}, drop="sanitized")
    assert "sanitized: listed in manifest.json but missing" in verify_package(forged)[0]


def test_a_zip_bomb_is_refused_before_it_is_inflated(monkeypatch):
    # GIVEN a cap of 1 KB on what verification inflates, and a package declaring 64 KB of zeros
    from mediaguard.decisions import evidence

    monkeypatch.setattr(evidence, "MAX_UNCOMPRESSED", 1024)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("original", b"\0" * 65536)
    # WHEN it is verified THEN it is refused unread
    problems, _ = verify_package(out.getvalue())
    assert problems == ["the package inflates to more than 1024 bytes: not read"]
