"""C2PA manifests for the platform's generated images, signed with the platform's key.

Every output gets a manifest with one ``c2pa.created`` action whose IPTC
``digitalSourceType`` is ``trainedAlgorithmicMedia`` and whose software agent names the
model, plus an ``org.mediaguard.generation`` assertion holding the generation id (the
id only: no user, no prompt). ``verify`` reads that assertion back.

The signing material (an ES256 key and its certificate chain, PEM) comes from:

* AWS: a Secrets Manager secret (``MEDIAGUARD_GENGUARD_SIGNING_SECRET_ARN``) whose value
  is ``{"certificate_chain": PEM, "private_key": PEM}``, read by the function's own role
  (``adapters.secrets``). Chosen over a KMS-backed signer callback: c2pa-python's
  callback signer works, but every signature would be a KMS call and KMS returns DER
  ECDSA that must be re-encoded for COSE; a secret read once per container is simpler.
  A certificate from a CA in the C2PA trust list is the platform's to obtain.
* locally: a development CA and signer generated on first use with ``cryptography``
  and kept under ``$MEDIAGUARD_HOME/genguard/`` (key file mode 0600). A manifest it signs
  is "valid", never "trusted", anywhere but here.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from mediaguard.errors import MediaguardError
from mediaguard.ingress.forensics import _c2pa_context, _c2pa_summary

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
GENERATION_ASSERTION = "org.mediaguard.generation"
CLAIM_GENERATOR = "mediaguard-genguard"
MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


@dataclass(frozen=True)
class SigningMaterial:
    """An ES256 private key and its certificate chain (signer first, then the CA), PEM."""

    chain_pem: bytes
    key_pem: bytes

    def __repr__(self) -> str:  # never print the key
        return "SigningMaterial(<es256>)"

    @property
    def watermark_key(self) -> bytes:
        """The key of the watermark's digest (``watermark.generation_digest``), derived from
        the signing key: the stack's one secret, so no second one to provision, and a
        deployment with another signer makes marks ours does not resolve. Rotating the
        signer changes it; marks made before still resolve, because ``verify`` looks the
        decoded digest up among the banked refs instead of recomputing it."""
        return hashlib.blake2b(self.key_pem, digest_size=32, person=b"mg.watermark.k").digest()

    @classmethod
    def from_secret(cls, value: str) -> SigningMaterial:
        """From a Secrets Manager value ``{"certificate_chain": ..., "private_key": ...}``."""
        try:
            doc = json.loads(value)
            material = cls(doc["certificate_chain"].encode(), doc["private_key"].encode())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MediaguardError("the C2PA signing secret is not {certificate_chain, private_key}",
                                  reason="misconfigured") from exc
        # The template creates the secret with empty values: the platform puts its signer later.
        if b"-----BEGIN" not in material.chain_pem or b"-----BEGIN" not in material.key_pem:
            raise MediaguardError("the C2PA signing secret holds no PEM yet (put the platform's signer)",
                                  reason="misconfigured")
        return material


def sign(media: bytes, mime: str, material: SigningMaterial, *, generation_id: str,
         model: str | None = None) -> bytes:
    """``media`` with an embedded, signed manifest declaring it generated (trainedAlgorithmicMedia).

    Example::

        signed = sign(jpeg, "image/jpeg", dev_signing_material(home), generation_id="g-1", model="sdxl")
    """
    import c2pa

    action = {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA}
    if model:
        action["softwareAgent"] = {"name": model[:100]}
    manifest = {
        "claim_generator_info": [{"name": CLAIM_GENERATOR, "version": "1"}],
        "title": f"generation {generation_id}",
        "format": mime,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [action]}},
            {"label": GENERATION_ASSERTION, "data": {"generation_id": generation_id}},
        ],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, material.chain_pem, material.key_pem, None))
    out = io.BytesIO()
    with c2pa.Builder(json.dumps(manifest)) as builder:
        builder.sign(signer, mime, io.BytesIO(media), out)
    return out.getvalue()


@dataclass(frozen=True)
class ManifestReading:
    """What :func:`read` found: the generation id our assertion names, and whether it validates."""

    present: bool
    state: str | None = None  # valid | trusted | invalid | error
    generation_id: str | None = None
    digital_source_type: str | None = None

    @property
    def ours(self) -> bool:
        """A manifest that validates and carries our generation assertion."""
        return self.generation_id is not None and self.state in ("valid", "trusted")


def read(data: bytes, mime: str, *, trust_anchors: str | None = None) -> ManifestReading:
    """Read and validate the active manifest; never raises for media without one."""
    import c2pa

    try:
        context = _c2pa_context(trust_anchors)
        reader = c2pa.Reader(mime, io.BytesIO(data), context=context) if context else c2pa.Reader(mime, io.BytesIO(data))
        with reader:
            store = json.loads(reader.json())
    except c2pa.C2paError.ManifestNotFound:
        return ManifestReading(present=False)
    except (c2pa.C2paError, ValueError):
        return ManifestReading(present=True, state="error")
    info = _c2pa_summary(store)
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest") or "") or {}
    generation_id = next((str(a.get("data", {}).get("generation_id")) for a in manifest.get("assertions") or []
                          if a.get("label") == GENERATION_ASSERTION and a.get("data", {}).get("generation_id")), None)
    return ManifestReading(present=True, state=info.state, generation_id=generation_id,
                           digital_source_type=info.digital_source_type)


# --- signing material -------------------------------------------------------------------


def dev_signing_material(home: Path | str | None = None) -> SigningMaterial:
    """The local development signer, created on first use under ``home``/genguard.

    ``home`` defaults to ``$MEDIAGUARD_HOME``, else ``./.mediaguard`` (where ``bank`` and
    ``serve`` keep their state). The CA's certificate is written beside it
    (``dev-ca.pem``) so a local verifier can use it as a trust anchor.
    """
    root = Path(home or os.environ.get("MEDIAGUARD_HOME") or ".mediaguard") / "genguard"
    chain, key = root / "dev-signer-chain.pem", root / "dev-signer-key.pem"
    if chain.is_file() and key.is_file():
        return SigningMaterial(chain.read_bytes(), key.read_bytes())
    root.mkdir(parents=True, exist_ok=True)
    chain_pem, key_pem, ca_pem = make_es256_chain("mediaguard dev")
    fd = os.open(key.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    (root / "dev-ca.pem").write_bytes(ca_pem)
    chain.write_bytes(chain_pem)
    os.replace(key.with_suffix(".tmp"), key)
    return SigningMaterial(chain_pem, key_pem)


def make_es256_chain(organisation: str, *, days: int = 365) -> tuple[bytes, bytes, bytes]:
    """(chain PEM: signer then CA, signer key PEM, CA certificate PEM): a P-256 CA and an
    end-entity signer with the key usage and EKU c2pa-rs accepts (digitalSignature,
    emailProtection; not a CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation)])

    def usage(**on: bool) -> x509.KeyUsage:
        flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                               "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
        return x509.KeyUsage(**{**flags, **on})

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name(f"{organisation} root")).issuer_name(name(f"{organisation} root"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(name(f"{organisation} generation signer")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return leaf.public_bytes(pem) + ca.public_bytes(pem), key_pem, ca.public_bytes(pem)
