"""Test-only: a copy of the installed thetadatadx SDK that trusts one throwaway loopback certificate.

Why: thetadatadx-py opens its market-data gRPC channel with TLS always on, trusting only the
Mozilla roots compiled into its extension (``webpki_roots::TLS_SERVER_ROOTS``, read by
``mdds/client.rs build_rustls_config``); no setting, file or environment variable adds a root, and
a plaintext or private-CA double is refused (``InvalidContentType``, ``UnknownIssuer``: docs/direct.md).
So the suite cannot point the SDK *as published* at a loopback double of the market-data service.

What this does, at test time only and never to the installed package: copy the installed
``thetadatadx`` package into a temporary directory; in the copy's extension, replace the 89-byte
public key of one compiled-in trust anchor ("Amazon Root CA 3", ECDSA P-256) with the public key of
a key made here; issue a certificate for 127.0.0.1 and localhost signed by that key whose issuer
name is byte-identical to the anchor's subject. The copy then trusts that certificate (and still
every other root); nothing else in it changes. It refuses to patch unless the anchor's subject and
key each occur exactly once in the extension. Put the copy's directory first on ``sys.path`` (or
``PYTHONPATH``) to use it. Never committed, never shipped; built from the wheel the tests installed.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import ipaddress
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

# "Amazon Root CA 3" as webpki stores an anchor: the DER contents (outer SEQUENCE stripped) of its
# subject name and of its SubjectPublicKeyInfo. A public certificate authority's public data.
ANCHOR_SUBJECT = bytes.fromhex(
    "310b3009060355040613025553310f300d060355040a1306416d617a6f6e3119301706035504031310416d617a6f6e20526f6f742043412033")
ANCHOR_KEY = bytes.fromhex(
    "301306072a8648ce3d020106082a8648ce3d030107034200042997a7c6417fc00d9be8011b56c6f252a5ba2db212e8d22ed7fac9c5d8aa6d1f"
    "73813b3b986b397c33a5c54e868e8017686245577d44581db337e56708eb66de")


class PatchRefused(RuntimeError):
    """The installed SDK is not the one this patch was written for."""


@dataclass(frozen=True)
class PatchedSdk:
    """Where the patched copy lives (put ``path`` first on sys.path) and the server's certificate."""

    path: Path
    certificate: bytes  # PEM, for 127.0.0.1 and localhost
    key: bytes  # PEM, its private key


def _contents(der: bytes) -> bytes:
    """DER contents without the outer SEQUENCE tag and length (how webpki stores anchors)."""
    length = der[1]
    return der[2:] if length < 0x80 else der[2 + (length & 0x7F):]


def _anchor_name() -> x509.Name:
    printable = x509.name._ASN1Type.PrintableString  # the anchor's own string type, for identical bytes
    return x509.Name([
        x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "US", _type=printable),
        x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Amazon", _type=printable),
        x509.NameAttribute(x509.NameOID.COMMON_NAME, "Amazon Root CA 3", _type=printable),
    ])


def _installed_package() -> Path:
    spec = importlib.util.find_spec("thetadatadx")
    if spec is None or spec.origin is None:
        raise PatchRefused("thetadatadx is not installed")
    return Path(spec.origin).parent


def patch_sdk(destination: Path) -> PatchedSdk:
    """Copy the installed SDK into ``destination`` with one anchor's key swapped; the matching certificate."""
    name = _anchor_name()
    if _contents(name.public_bytes()) != ANCHOR_SUBJECT:
        raise PatchRefused("the anchor's subject does not encode as expected")
    authority = ec.generate_private_key(ec.SECP256R1())
    key = _contents(authority.public_key().public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    package = destination / "thetadatadx"
    shutil.copytree(_installed_package(), package, ignore=shutil.ignore_patterns("__pycache__"))
    extension = next(package.glob("thetadatadx*.so"))
    blob = extension.read_bytes()
    for what, value in (("subject", ANCHOR_SUBJECT), ("public key", ANCHOR_KEY)):
        if blob.count(value) != 1:
            raise PatchRefused(f"the anchor's {what} occurs {blob.count(value)} times in {extension.name}, not once")
    extension.write_bytes(blob.replace(ANCHOR_KEY, key))
    server_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(authority, hashes.SHA256())
    )
    return PatchedSdk(
        destination,
        certificate.public_bytes(serialization.Encoding.PEM),
        server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()),
    )
