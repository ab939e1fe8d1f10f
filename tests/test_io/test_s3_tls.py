"""S3 over TLS against a real server on 127.0.0.1: moto behind a TLS-terminating proxy whose
certificate a test CA signed. A store given that CA (``client_kwargs.verify``) reads through the
botocore client and then the direct path, both verifying; one without it refuses the server."""

from __future__ import annotations

import datetime
import functools
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cellmap_schemas.errors import StoreError
from cellmap_schemas.io import open_store
from conftest import S3Server

_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _certificates(out: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 it signed: (ca.pem, server.pem, key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cellmap-schemas test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = out / "ca.pem", out / "server.pem", out / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class _TlsProxy:
    """TLS on a loopback port, forwarded in the clear to ``target``; keeps what clients sent."""

    def __init__(self, target: tuple[str, int], cert: Path, key: Path) -> None:
        self.target = target
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sent = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()  # a client that refused our certificate
            return
        upstream = socket.create_connection(self.target)
        threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()
        self._pump(client, upstream, True)

    def _pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    with self._lock:
                        self.sent += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                s.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def tls(s3: S3Server, tmp_path: Path) -> Iterator[tuple[_TlsProxy, Path]]:
    ca, cert, key = _certificates(tmp_path)
    client = s3.client()
    client.create_bucket(Bucket="tls")
    for name in ("a", "b", "c"):
        client.put_object(Bucket="tls", Key=f"{name}/attributes.json", Body=b'{"n5": "2.0.0"}')
    host, port = s3.endpoint.removeprefix("http://").split(":")
    proxy = _TlsProxy((host, int(port)), cert, key)
    try:
        yield proxy, ca
    finally:
        proxy.close()


async def _read_all(endpoint: str, verify: str | None) -> list[bytes | None]:
    options: dict[str, object] = {"endpoint_url": endpoint}
    if verify is not None:
        options["client_kwargs"] = {"verify": verify}
    async with open_store("s3://tls", storage_options=options) as store:
        return [await store.get(f"{name}/attributes.json") for name in ("a", "b", "c")]


def test_a_custom_ca_verifies_the_client_and_the_direct_path(tls: tuple[_TlsProxy, Path]) -> None:
    proxy, ca = tls
    endpoint = f"https://127.0.0.1:{proxy.port}"
    got = anyio.run(functools.partial(_read_all, endpoint, str(ca)), backend="asyncio")
    assert got == [b'{"n5": "2.0.0"}'] * 3
    heads = bytes(proxy.sent)
    assert b"User-Agent: aiobotocore/" in heads  # the first GET, through the client
    assert b"User-Agent: Python/3" in heads  # the next ones, direct (aiohttp), verified


def test_without_the_ca_the_server_is_refused_in_one_line(tls: tuple[_TlsProxy, Path]) -> None:
    proxy, _ = tls
    endpoint = f"https://127.0.0.1:{proxy.port}"
    with pytest.raises(StoreError) as caught:
        anyio.run(functools.partial(_read_all, endpoint, None), backend="asyncio")
    message = str(caught.value)
    assert "\n" not in message and "s3://tls" in message
    assert "certificate" in message.lower() or "ssl" in message.lower(), message
    assert b"GET " not in bytes(proxy.sent)  # nothing was sent to an unverified server
