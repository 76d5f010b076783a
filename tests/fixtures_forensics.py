"""Real provenance-bearing media, made in memory for the forensics tests.

* A C2PA manifest signed with a throwaway ES256 (P-256) chain: a CA and an
  end-entity certificate with the key usage and EKU c2pa-rs accepts.
* JPEG/PNG/WebP with the XMP, IPTC, EXIF and PNG text that generators write.
* The Stable Diffusion dwtDct watermark, embedded by a port of
  invisible-watermark 0.2.0's ``EmbedMaxDct.encode`` (MIT, ShieldMnt). The
  package itself declares torch and opencv-python as hard dependencies, so it is
  not a project dependency; :func:`import_imwatermark` uses it when present to
  cross-check this port and the decoder.
"""

from __future__ import annotations

import datetime
import importlib.util
import io
import json
import struct
import sys
import types

import numpy as np
from PIL import Image, PngImagePlugin

DST_TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
DST_CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
GENERATOR = "mediaguard-test-generator"


def photo(name: str = "astronaut") -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def with_jpeg_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """Insert one APPn segment right after SOI."""
    return jpeg[:2] + struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload + jpeg[2:]


def xmp_packet(*, source_type: str | None = None, creator_tool: str | None = None) -> bytes:
    attrs = ""
    if source_type:
        attrs += f' Iptc4xmpExt:DigitalSourceType="{source_type}"'
    if creator_tool:
        attrs += f' xmp:CreatorTool="{creator_tool}"'
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        f"{attrs}/></rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>"
    ).encode()


def jpeg_with_xmp(jpeg: bytes, packet: bytes) -> bytes:
    return with_jpeg_segment(jpeg, 0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + packet)


def jpeg_with_iptc(jpeg: bytes, datasets: dict[int, bytes]) -> bytes:
    """APP13 Photoshop IRB with one IPTC-IIM resource (0x0404) holding record-2 datasets."""
    iim = b"".join(b"\x1c\x02" + bytes([num]) + struct.pack(">H", len(v)) + v for num, v in datasets.items())
    block = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iim)) + iim
    block += b"\x00" * (len(iim) & 1)
    return with_jpeg_segment(jpeg, 0xED, b"Photoshop 3.0\x00" + block)


def png_with_text(img: Image.Image, texts: dict[str, str], *, compressed: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_itxt(key, value, zip=True) if compressed else info.add_text(key, value)
    return encode(img, "PNG", pnginfo=info)


def a1111_user_comment(parameters: str) -> bytes:
    """EXIF UserComment as AUTOMATIC1111 writes it into JPEG/WebP (piexif, "UNICODE" charset)."""
    return b"UNICODE\x00" + parameters.encode("utf-16-be")


# --- C2PA -------------------------------------------------------------------


def make_es256_chain() -> tuple[bytes, bytes, bytes]:
    """(signer chain PEM: end-entity then CA, end-entity private key PEM, CA certificate PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mediaguard tests"),
                          x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")])

    def usage(**on: bool) -> x509.KeyUsage:
        flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                               "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
        return x509.KeyUsage(**{**flags, **on})

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("mediaguard test root")).issuer_name(name("mediaguard test root"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    # c2pa-rs wants an end-entity (not CA) certificate with digitalSignature and one of
    # its allowed EKUs (emailProtection, documentSigning, ...), issued by a CA in the chain.
    leaf = (x509.CertificateBuilder().subject_name(name("mediaguard test signer")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))

    def pem(cert) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pem(leaf) + pem(ca), key_pem, pem(ca)


def sign_c2pa(media: bytes, mime: str, chain_pem: bytes, key_pem: bytes, *,
              source_type: str = DST_TRAINED) -> bytes:
    """Embed a real signed manifest that declares a ``c2pa.created`` action of ``source_type``."""
    import c2pa

    manifest = {
        "claim_generator_info": [{"name": GENERATOR, "version": "1.0"}],
        "title": "generated.jpg",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": source_type,
             "softwareAgent": {"name": "Adobe Firefly"}},
        ]}}],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain_pem, key_pem, None))
    out = io.BytesIO()
    with c2pa.Builder(json.dumps(manifest)) as builder:
        builder.sign(signer, mime, io.BytesIO(media), out)
    return out.getvalue()


# --- invisible watermark (dwtDct) ----------------------------------------------


def embed_dwtdct(rgb: np.ndarray, bits: np.ndarray, scale: float = 36.0) -> np.ndarray:
    """Port of invisible-watermark 0.2.0 ``EmbedMaxDct.encode`` on the U channel.

    Each 4x4 block of the haar approximation gets bit ``bits[k % n]`` written into
    its largest non-DC coefficient as ``(|c| // scale + 0.25 + 0.5 * bit) * scale``.
    The inverse haar of a changed approximation spreads half the change onto each
    of the four pixels; OpenCV's YUV formulas take the result back to RGB.
    """
    h, w = rgb.shape[:2]
    hh, ww = h // 4 * 4, w // 4 * 4
    f = rgb.astype(np.float64)
    y = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    u = (f[..., 2] - y) * 0.492 + 128.0
    v = (f[..., 0] - y) * 0.877 + 128.0
    u8 = np.clip(np.rint(u), 0, 255)
    crop = u8[:hh, :ww]
    approx = (crop[0::2, 0::2] + crop[1::2, 0::2] + crop[0::2, 1::2] + crop[1::2, 1::2]) / 2.0
    delta = np.zeros_like(approx)
    n, num = len(bits), 0
    for i in range(approx.shape[0] // 4):
        for j in range(approx.shape[1] // 4):
            block = approx[i * 4 : i * 4 + 4, j * 4 : j * 4 + 4].flatten()
            pos = int(np.argmax(np.abs(block[1:]))) + 1
            val, bit = block[pos], int(bits[num % n])
            new = (abs(val) // scale + 0.25 + 0.5 * bit) * scale
            delta[i * 4 + pos // 4, j * 4 + pos % 4] = (new if val >= 0 else -new) - val
            num += 1
    marked_u = u8.copy()
    marked_u[:hh, :ww] = np.trunc(crop + np.kron(delta, np.ones((2, 2))) / 2.0)  # upstream stores into uint8
    du = marked_u - 128.0
    out = np.stack([y + 1.140 * (v - 128.0), y - 0.395 * du - 0.581 * (v - 128.0), y + 2.032 * du], axis=-1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def import_imwatermark():
    """The real invisible-watermark package, or None where it is not installed.

    ``import imwatermark`` imports torch for its rivaGan method only; dwtDct never
    touches it, so a stub module stands in when real torch is absent (it is
    never installed for this project).
    """
    if importlib.util.find_spec("imwatermark") is None or importlib.util.find_spec("cv2") is None:
        return None
    if importlib.util.find_spec("torch") is None:
        sys.modules.setdefault("torch", types.ModuleType("torch"))
    import imwatermark

    return imwatermark
