"""The certificate for HTTPS on ``HTTPS_PORT``: the operator's (``TLS_CERT_FILE`` and
``TLS_KEY_FILE``) or one made here on the first start.

Browsers give the microphone only to secure origins, so a colleague opening the live page
from another machine or a phone needs HTTPS. With no certificate of the operator's, the first
start makes a small certificate authority of this installation (``DATA_DIR/tls/ca.crt``, its
key beside it, 0600) and a server certificate signed by it for every name and address of this
machine: ``localhost``, the host name, ``<host>.local`` (what phones find by mDNS), the
addresses of every interface, and the extra names in ``TLS_HOSTS``. The server certificate is
made again when a name or address is new, or a month before it expires; the authority stays,
so a device that trusts it once (README: "HTTPS from other machines") keeps trusting the
platform. Browsers can also just accept the warning for the server certificate.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TLS_SUBDIR = "tls"
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
# Apple platforms refuse server certificates valid for more than 825 days even under a root
# the user installed; 397 days is what public authorities may issue, and is renewed here
# automatically anyway.
SERVER_DAYS = 397
CA_DAYS = 3650
# A server certificate this close to its end is made again at the next start.
RENEW_BEFORE = datetime.timedelta(days=30)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class TLSFiles:
    """What the web server needs for its TLS endpoint, and what the start prints."""

    cert: Path
    key: Path
    # The authority that signed ``cert`` when it was made here, else None.
    ca: Path | None
    names: tuple[str, ...]
    addresses: tuple[str, ...]

    @property
    def ca_fingerprint(self) -> str | None:
        """SHA-256 of the authority's certificate, as browsers show it (AA:BB:...)."""
        if self.ca is None:
            return None
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        cert = x509.load_pem_x509_certificate(self.ca.read_bytes())
        return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _env(name: str, environ: Mapping[str, str] | None) -> str:
    return (os.environ if environ is None else environ).get(name, "").strip()


def extra_hosts(environ: Mapping[str, str] | None = None) -> list[str]:
    """``TLS_HOSTS``: more names or addresses the generated certificate must cover (a DNS
    name colleagues use, an address behind NAT), comma separated."""
    items = [item.strip() for item in _env("TLS_HOSTS", environ).split(",") if item.strip()]
    for item in items:
        if _as_address(item) is None and not _valid_dns_name(item):
            raise ImproperlyConfigured(
                f"TLS_HOSTS: {item!r} is neither a host name nor an IP address"
            )
    return items


def _valid_dns_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return (
        bool(name)
        and len(name) <= 253
        and all(
            0 < len(label) <= 63
            and label.replace("-", "").replace("_", "").isalnum()
            and label.isascii()
            and not label.startswith("-")
            for label in labels
        )
    )


def _as_address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def machine_names() -> list[str]:
    """The names this machine answers to: ``localhost``, its host name and fully qualified
    name, and ``<host>.local`` (multicast DNS, which phones on the same network resolve)."""
    names = ["localhost"]
    host = socket.gethostname().strip()
    if host and _valid_dns_name(host):
        names.append(host)
        short = host.split(".", 1)[0]
        names.append(f"{short}.local")
    try:
        fqdn = socket.getfqdn().strip()
    except OSError:
        fqdn = ""
    if fqdn and _valid_dns_name(fqdn) and "." in fqdn:
        names.append(fqdn)
    return _unique(name.lower() for name in names)


def machine_addresses() -> list[str]:
    """Every address of every interface (loopback included, link-local left out: those need
    a zone that no certificate can name)."""
    found: list[str] = ["127.0.0.1", "::1"]
    try:
        import psutil

        for entries in psutil.net_if_addrs().values():
            for entry in entries:
                if entry.family in (socket.AF_INET, socket.AF_INET6):
                    found.append(entry.address)
    except Exception:  # psutil missing or the interfaces unreadable: the host name's addresses
        try:
            for info in socket.getaddrinfo(socket.gethostname(), None):
                found.append(str(info[4][0]))
        except OSError:
            pass
    addresses = []
    for text in found:
        address = _as_address(text)
        if address is not None and not address.is_link_local and not address.is_multicast:
            addresses.append(str(address))
    return _unique(addresses)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def tls_files(data_dir: Path, environ: Mapping[str, str] | None = None) -> TLSFiles:
    """The certificate and key to serve HTTPS with: the operator's, or this installation's
    (made or renewed here when needed)."""
    cert_file, key_file = _env("TLS_CERT_FILE", environ), _env("TLS_KEY_FILE", environ)
    if cert_file or key_file:
        return _given(cert_file, key_file)
    hosts = extra_hosts(environ)
    names = _unique([*machine_names(), *(h.lower() for h in hosts if _as_address(h) is None)])
    addresses = _unique(
        [*machine_addresses(), *(str(_as_address(h)) for h in hosts if _as_address(h))]
    )
    directory = data_dir / TLS_SUBDIR
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_cert, ca_key = _authority(directory)
    cert, key = directory / SERVER_CERT, directory / SERVER_KEY
    if not _covers(cert, key, ca_cert, names, addresses):
        _issue(cert, key, ca_cert, ca_key, names, addresses)
    return TLSFiles(cert, key, directory / CA_CERT, tuple(names), tuple(addresses))


def _given(cert_file: str, key_file: str) -> TLSFiles:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if not (cert_file and key_file):
        raise ImproperlyConfigured("TLS_CERT_FILE and TLS_KEY_FILE go together: set both")
    cert_path, key_path = Path(cert_file).resolve(), Path(key_file).resolve()
    try:
        cert = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise ImproperlyConfigured(
            f"TLS_CERT_FILE / TLS_KEY_FILE: cannot read a PEM certificate and an unencrypted "
            f"PEM key ({error})"
        ) from None
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise ImproperlyConfigured(
            f"TLS_KEY_FILE ({key_path}) is not the key of TLS_CERT_FILE ({cert_path})"
        )
    names, addresses = _subject_alternatives(cert)
    return TLSFiles(cert_path, key_path, None, tuple(names), tuple(addresses))


def _subject_alternatives(cert) -> tuple[list[str], list[str]]:
    from cryptography import x509

    try:
        alternatives = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    names = [n.lower() for n in alternatives.get_values_for_type(x509.DNSName)]
    addresses = [str(a) for a in alternatives.get_values_for_type(x509.IPAddress)]
    return names, addresses


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable by this user only, from its first byte."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    # P-256: every browser and phone takes it, and a handshake costs a fraction of RSA's.
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _key_usage(*, authority: bool):
    """Signatures only; an authority also signs certificates (and revocation lists)."""
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=authority,
        crl_sign=authority,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def _authority(directory: Path) -> tuple[Path, Path]:
    """This installation's certificate authority, made on the first start and then kept."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = _new_key()
    host = socket.gethostname() or "localhost"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Speech platform"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Speech platform local CA ({host})"[:64]),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(authority=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _covers(cert_path: Path, key_path: Path, ca_path: Path, names, addresses) -> bool:
    """Whether the server certificate there is this authority's, names every name and
    address, and has more than RENEW_BEFORE left."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    if not (cert_path.exists() and key_path.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    if cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) < RENEW_BEFORE:
        return False
    have_names, have_addresses = _subject_alternatives(cert)
    return set(names) <= set(have_names) and set(addresses) <= set(have_addresses)


def _issue(cert_path: Path, key_path: Path, ca_cert: Path, ca_key: Path, names, addresses):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    signer = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    key = _new_key()
    alternatives = [x509.DNSName(name) for name in names] + [
        x509.IPAddress(ipaddress.ip_address(address)) for address in addresses
    ]
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_key_usage(authority=False), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(signer, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def endpoint(host: str, port: int, files: TLSFiles) -> str:
    """Twisted's server endpoint string for daphne's ``-e``: TLS on ``host:port``."""

    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")

    parts = [
        f"ssl:port={int(port)}",
        f"interface={escape(host.strip('[]'))}",
        f"privateKey={escape(str(files.key))}",
        f"certKey={escape(str(files.cert))}",
    ]
    if files.ca is not None:
        # The chain (this installation's authority) goes with the certificate: a client that
        # trusts the authority needs nothing else.
        parts.append(f"extraCertChain={escape(str(files.ca))}")
    return ":".join(parts)


def public_urls(port: int, files: TLSFiles) -> list[str]:
    """The https addresses to give colleagues: names and addresses other machines can use
    (loopback left out unless nothing else is known)."""
    urls = []
    for host in (*files.addresses, *files.names):
        address = _as_address(host)
        if host == "localhost" or (address is not None and address.is_loopback):
            continue
        shown = f"[{host}]" if address is not None and address.version == 6 else host
        urls.append(f"https://{shown}:{port}/")
    return urls or [f"https://localhost:{port}/"]
