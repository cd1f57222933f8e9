"""The FTPS server's certificate: the configured one, or a self-signed one generated once (docs/ftps.md,
"The certificate")."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from callcenter.errors import ProvisioningError
from callcenter.ftps.settings import FtpsSettings

log = logging.getLogger("callcenter.ftps")

CERTIFICATE_DAYS = 3650


def ensure_certificate(settings: FtpsSettings, var_dir: Path) -> tuple[Path, Path]:
    """The configured certificate and key, or a self-signed pair generated once under var_dir/ftps/.

    A configured file that is missing or unreadable is an error naming it. A generated certificate
    is reused on every start until it is about to expire (or is deleted: then a new one is made)."""
    if settings.certificate or settings.private_key:
        if not settings.certificate:
            raise ProvisioningError("ftps.private_key is set but ftps.certificate is empty: set both "
                                    "(or only ftps.certificate for a PEM holding both), or neither")
        certificate = Path(settings.certificate).expanduser()
        private_key = Path(settings.private_key).expanduser() if settings.private_key else certificate
        _check_readable("ftps.certificate", certificate)
        _check_readable("ftps.private_key", private_key)
        return certificate, private_key
    folder = var_dir / "ftps"
    certificate, private_key = folder / "cert.pem", folder / "key.pem"
    if private_key.is_file() and _usable_until(certificate) > dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        return certificate, private_key
    _generate_certificate(settings, folder, certificate, private_key)
    return certificate, private_key


def _check_readable(setting: str, path: Path) -> None:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as err:
        raise ProvisioningError(f"{setting} = {str(path)!r}: {err.strerror or err}") from err


def _usable_until(certificate: Path) -> dt.datetime:
    try:
        return x509.load_pem_x509_certificate(certificate.read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def _generate_certificate(settings: FtpsSettings, folder: Path, certificate: Path, private_key: Path) -> None:
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    # Also the addresses clients are told to use, so a client that checks names can pin this one.
    for address in (settings.bind, settings.masquerade_address):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            entry: x509.GeneralName | None = x509.DNSName(address) if address else None
        else:
            entry = None if ip.is_unspecified else x509.IPAddress(ip)
        if entry is not None and entry not in names:
            names.append(entry)
    specific = settings.bind and settings.bind not in ("0.0.0.0", "::")
    common_name = settings.bind if specific else "callcenter"
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "callcenter FTPS")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))  # tolerates a client clock a little behind
        .not_valid_after(now + dt.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_atomically(private_key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()), 0o600)
    _write_atomically(certificate, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    log.info("FTPS: generated a self-signed certificate %s, valid until %s, SHA-256 fingerprint %s "
             "(admins compare it with what their client shows on the first connection)",
             certificate, cert.not_valid_after_utc.date(), fingerprint)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    # The key never exists with looser permissions, not even half-written.
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(descriptor, mode)  # a .tmp left behind by a crash kept its old mode
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
