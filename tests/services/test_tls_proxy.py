"""TLS verification, a profile's custom CA and its proxy, against real servers on 127.0.0.1.

A throwaway CA and server certificates are made with ``cryptography`` in a temporary folder. A
TLS front (a small HTTPS server in a thread) passes every request on to the real simulator, so
the Marquez client talks HTTPS to the simulator as it would to a Marquez behind a TLS gateway.
A small forward proxy (absolute-URI requests for http:// targets, CONNECT tunnels for https://
ones) counts what passes through it.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import os
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError

from runmonitor.domain.errors import ConnectionFailed
from runmonitor.services import get
from runmonitor.services.base import STORED_CONTEXT
from runmonitor.services.http import tls_context
from runmonitor.services.marquez import MarquezConnection
from runmonitor.simulator import Simulator
from runmonitor.storage.settings.model import ProfileError, validate_connection

x509 = pytest.importorskip("cryptography.x509", reason="the cryptography package makes the test certificates")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


# -- certificates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate (PEM)
    server: tuple[Path, Path]  # certificate and key for 127.0.0.1 and localhost
    elsewhere: tuple[Path, Path]  # certificate and key for another host name only
    not_pem: Path


def _name(common_name: str) -> Any:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_pem(path: Path, cert: Any, key: Any = None) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _leaf(ca_key: Any, ca_name: Any, names: list[Any], now: datetime) -> tuple[Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("runmonitor test server"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("RunMonitor throwaway test CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_pem(folder / "ca.pem", ca)
    local = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    cert, key = _leaf(ca_key, ca_name, local, now)
    _write_pem(folder / "server.pem", cert, key)
    cert, key = _leaf(ca_key, ca_name, [x509.DNSName("marquez.elsewhere.example")], now)
    _write_pem(folder / "elsewhere.pem", cert, key)
    (folder / "notes.txt").write_text("not a certificate\n")
    return Pki(
        ca=folder / "ca.pem",
        server=(folder / "server.pem", folder / "server.key"),
        elsewhere=(folder / "elsewhere.pem", folder / "elsewhere.key"),
        not_pem=folder / "notes.txt",
    )


# -- servers ----------------------------------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Refused handshakes and dropped tunnels are expected here; keep stderr clean."""


@contextlib.contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _relay(handler: BaseHTTPRequestHandler, host: str, port: int, path: str) -> None:
    """Send the handler's request to ``host:port`` and copy the answer back."""
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length else None
    skip = {"host", "connection", "proxy-connection", "keep-alive"}
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in skip}
    upstream = http.client.HTTPConnection(host, port, timeout=10)
    try:
        upstream.request(handler.command, path, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
    finally:
        upstream.close()
    handler.send_response(answer.status)
    for name, value in answer.getheaders():
        if name.lower() not in skip | {"content-length", "transfer-encoding", "date", "server"}:
            handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class _TlsFrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target_port: ClassVar[int]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        _relay(self, "127.0.0.1", self.target_port, self.path)

    do_GET = do_POST = do_PUT = do_DELETE = _forward


class TlsFront(_QuietServer):
    """HTTPS on 127.0.0.1 in front of the simulator; the handshake runs in the request thread."""

    def __init__(self, cert: tuple[Path, Path], target_port: int) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile=cert[0], keyfile=cert[1])
        handler = type("Front", (_TlsFrontHandler,), {"target_port": target_port})
        super().__init__(("127.0.0.1", 0), handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: ClassVar[ForwardProxy]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        target = urlsplit(self.path)
        self.proxy.seen.append(f"{self.command} {self.path}")
        if target.scheme != "http" or target.hostname is None:
            self.send_error(400, "absolute http:// URLs only")
            return
        path = target.path + (f"?{target.query}" if target.query else "")
        _relay(self, target.hostname, target.port or 80, path)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def do_CONNECT(self) -> None:
        self.proxy.seen.append(f"CONNECT {self.path}")
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        sockets = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(sockets, [], [], 10)
                if not ready:
                    return
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is self.connection else self.connection).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()
            self.close_connection = True


class ForwardProxy(_QuietServer):
    """A forward proxy on 127.0.0.1 that records each request line it handles."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        super().__init__(("127.0.0.1", 0), type("Proxy", (_ProxyHandler,), {"proxy": self}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class TlsForwardProxy(ForwardProxy):
    """The same proxy, reached over TLS (an https:// proxy URL)."""

    def __init__(self, cert: tuple[Path, Path]) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile=cert[0], keyfile=cert[1])
        super().__init__()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def front(pki: Pki, sim: Simulator) -> Iterator[TlsFront]:
    with serving(TlsFront(pki.server, sim.port)) as server:
        assert isinstance(server, TlsFront)
        yield server


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with serving(ForwardProxy()) as server:
        assert isinstance(server, ForwardProxy)
        yield server


@pytest.fixture
def no_env_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def marquez(sim: Simulator, **overrides: Any) -> Any:
    cls = get("marquez")
    return cls(cls.config_model.model_validate({**sim.demo_connection("marquez"), **overrides}))


def https_url(front: TlsFront) -> str:
    return f"https://127.0.0.1:{front.port}/marquez"


# -- TLS ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_env_proxies")
async def test_an_unknown_ca_is_refused_with_advice(front: TlsFront, sim: Simulator) -> None:
    async with marquez(sim, base_url=https_url(front)) as client:
        with pytest.raises(ConnectionFailed) as info:
            await client.check_connection()
    message = str(info.value)
    assert message.startswith("The server's certificate is not trusted:")
    assert "set a custom CA for this profile" in message
    assert info.value.may_have_reached_service is False
    assert sim.requests("marquez") == []  # nothing got past the handshake


@pytest.mark.usefixtures("no_env_proxies")
async def test_a_custom_ca_makes_the_connection_work(
    front: TlsFront, sim: Simulator, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "certs").mkdir(parents=True)
    (home / "certs" / "company-ca.pem").write_bytes(pki.ca.read_bytes())
    monkeypatch.setenv("HOME", str(home))
    config = MarquezConnection.model_validate(
        {
            **sim.demo_connection("marquez"),
            "base_url": https_url(front),
            "ca_bundle": "~/certs/company-ca.pem",
        }
    )
    assert config.ca_bundle == "~/certs/company-ca.pem"  # kept as typed, expanded when used
    assert config.warnings() == []
    async with get("marquez")(config) as client:
        assert "namespace" in await client.check_connection()
        run = await client.create_run(client.request_model.model_validate(sim.demo_request("marquez")))
        assert (await client.get_status(run.ref)).ref.run_id == run.ref.run_id
    assert len(sim.requests("marquez")) >= 3


def test_the_custom_ca_adds_to_the_default_trust_store(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    default = tls_context(True).cert_store_stats()["x509_ca"]
    extended = tls_context(True, str(pki.ca)).cert_store_stats()["x509_ca"]
    assert default > 10  # certifi's Mozilla list
    assert extended == default + 1
    assert tls_context(False).verify_mode == ssl.CERT_NONE


@pytest.mark.usefixtures("no_env_proxies")
async def test_turning_verification_off_works_and_is_warned(
    front: TlsFront, sim: Simulator, pki: Pki
) -> None:
    async with marquez(sim, base_url=https_url(front), verify_tls=False) as client:
        assert "namespace" in await client.check_connection()
        assert client.config.warnings() == ["TLS certificate verification is off for this connection."]
    both = MarquezConnection(base_url=https_url(front), verify_tls=False, ca_bundle=str(pki.ca))
    assert "The custom CA certificates are not used while TLS verification is off." in both.warnings()


@pytest.mark.usefixtures("no_env_proxies")
async def test_a_certificate_for_another_host_is_named(pki: Pki, sim: Simulator) -> None:
    with serving(TlsFront(pki.elsewhere, sim.port)) as server:
        assert isinstance(server, TlsFront)
        async with marquez(sim, base_url=https_url(server), ca_bundle=str(pki.ca)) as client:
            with pytest.raises(ConnectionFailed, match="not valid for this address") as info:
                await client.check_connection()
    assert "127.0.0.1" in str(info.value)
    assert info.value.may_have_reached_service is False


@pytest.mark.usefixtures("no_env_proxies")
async def test_https_to_a_plain_http_server_says_tls_failed(sim: Simulator) -> None:
    async with marquez(sim, base_url=f"https://127.0.0.1:{sim.port}/marquez") as client:
        with pytest.raises(ConnectionFailed, match=r"secure \(TLS\) connection") as info:
            await client.check_connection()
    assert "needs http://" in str(info.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("missing.pem", "full path"),
        ("/nonexistent/runmonitor/ca.pem", "no such file"),
        ("{folder}", "not a regular file"),
        ("{not_pem}", "holds no PEM certificates"),
        ("{empty}", "holds no PEM certificates"),
        ("{key}", "holds no PEM certificates"),
    ],
)
def test_a_ca_bundle_must_be_a_readable_pem_file(pki: Pki, tmp_path: Path, value: str, message: str) -> None:
    (tmp_path / "empty.pem").write_bytes(b"")
    path = value.format(folder=tmp_path, not_pem=pki.not_pem, empty=tmp_path / "empty.pem", key=pki.server[1])
    with pytest.raises(ValidationError) as info:
        MarquezConnection(base_url="https://marquez.example.com", ca_bundle=path)
    [error] = info.value.errors()
    assert error["loc"] == ("ca_bundle",)
    assert message in error["msg"]
    # The profile layer names the field too (that is what the profile dialog and CLI show).
    with pytest.raises(ProfileError) as profile_error:
        validate_connection("marquez", {"base_url": "https://marquez.example.com", "ca_bundle": path})
    assert set(profile_error.value.errors) == {"ca_bundle"}


def test_an_unreadable_ca_bundle_is_refused(pki: Pki, tmp_path: Path) -> None:
    locked = tmp_path / "locked.pem"
    locked.write_bytes(pki.ca.read_bytes())
    locked.chmod(0)
    if os.access(locked, os.R_OK):
        pytest.skip("running as a user that can read any file (root)")
    with pytest.raises(ValidationError, match="cannot be read"):
        MarquezConnection(base_url="https://marquez.example.com", ca_bundle=str(locked))


async def test_a_ca_file_that_went_away_fails_each_request_clearly(
    front: TlsFront, sim: Simulator, pki: Pki, tmp_path: Path
) -> None:
    copy = tmp_path / "ca.pem"
    copy.write_bytes(pki.ca.read_bytes())
    copy.unlink()  # the file went away after the profile was saved
    # Read back from the settings file, the value is still accepted (not checked against disk) ...
    config = MarquezConnection.model_validate(
        {"base_url": https_url(front), "ca_bundle": str(copy)}, context=STORED_CONTEXT
    )
    # ... while a person entering it is told at once.
    with pytest.raises(ValidationError, match="no such file"):
        MarquezConnection(base_url=https_url(front), ca_bundle=str(copy))
    async with get("marquez")(config) as client:
        for _ in range(2):
            with pytest.raises(ConnectionFailed, match="custom CA certificates cannot be used") as info:
                await client.check_connection()
            assert info.value.may_have_reached_service is False
    assert sim.requests("marquez") == []


def test_settings_without_the_new_fields_stay_valid() -> None:
    stored = {"base_url": "https://marquez.example.com", "verify_tls": True, "timeout_seconds": 15.0}
    values = validate_connection("marquez", stored)
    assert values["ca_bundle"] is None and values["proxy"] is None
    assert MarquezConnection.model_validate(stored).ca_bundle is None
    blank = MarquezConnection(base_url="https://marquez.example.com", ca_bundle="  ", proxy="")
    assert blank.ca_bundle is None and blank.proxy is None


# -- proxies --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_env_proxies")
async def test_a_profile_proxy_carries_the_requests(proxy: ForwardProxy, sim: Simulator) -> None:
    async with marquez(sim, proxy=proxy.url) as client:
        assert "namespace" in await client.check_connection()
    assert proxy.seen
    assert all(line.startswith(f"GET {sim.root_url}/marquez/") for line in proxy.seen), proxy.seen
    assert len(sim.requests("marquez")) == len(proxy.seen)


async def test_the_environment_proxy_applies_without_a_profile_proxy(
    proxy: ForwardProxy, sim: Simulator, no_env_proxies: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with marquez(sim) as client:
        assert "namespace" in await client.check_connection()
    assert len(proxy.seen) == 1 and proxy.seen[0].startswith(f"GET {sim.root_url}/marquez/")


async def test_no_proxy_bypasses_the_environment_proxy(
    proxy: ForwardProxy, sim: Simulator, no_env_proxies: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with marquez(sim) as client:
        assert "namespace" in await client.check_connection()
    assert proxy.seen == []
    assert len(sim.requests("marquez")) == 1


@pytest.mark.usefixtures("no_env_proxies")
async def test_https_through_the_proxy_is_a_tunnel_the_proxy_cannot_read(
    proxy: ForwardProxy, front: TlsFront, sim: Simulator, pki: Pki
) -> None:
    config = {"base_url": https_url(front), "ca_bundle": str(pki.ca), "proxy": proxy.url}
    async with marquez(sim, **config) as client:
        assert "namespace" in await client.check_connection()
        assert client.config.warnings() == []  # an http:// proxy only sees host and port
    assert proxy.seen == [f"CONNECT 127.0.0.1:{front.port}"]
    assert len(sim.requests("marquez")) == 1


@pytest.mark.usefixtures("no_env_proxies")
async def test_an_https_proxy_is_verified_with_the_profiles_trust(sim: Simulator, pki: Pki) -> None:
    with serving(TlsForwardProxy(pki.server)) as server:
        assert isinstance(server, TlsForwardProxy)
        async with marquez(sim, proxy=server.url) as client:
            with pytest.raises(ConnectionFailed, match="certificate is not trusted"):
                await client.check_connection()
        assert server.seen == []
        async with marquez(sim, proxy=server.url, ca_bundle=str(pki.ca)) as client:
            assert "namespace" in await client.check_connection()
        assert len(server.seen) == 1 and server.seen[0].startswith(f"GET {sim.root_url}/marquez/")


@pytest.mark.usefixtures("no_env_proxies")
async def test_an_unreachable_proxy_is_a_connection_failure(sim: Simulator) -> None:
    with socket.socket() as spare:  # a port nobody listens on
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    async with marquez(sim, proxy=f"http://127.0.0.1:{port}") as client:
        with pytest.raises(ConnectionFailed) as info:
            await client.check_connection()
    assert info.value.may_have_reached_service is False
    assert sim.requests("marquez") == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://alice:pa55word-xyz@proxy.example.com:3128", "must not contain a user name or password"),
        ("http://@proxy.example.com:3128", "must not contain a user name or password"),
        ("socks5://proxy.example.com:1080", "SOCKS proxies are not supported"),
        ("proxy.example.com:3128", "must start with http:// or https://"),
        ("http://proxy.example.com", "must include a port"),
        ("http://:3128", "must include a host name"),
        ("http://proxy.example.com:99999", "invalid port"),
        ("http://proxy.example.com:3128/path", "only scheme, host and port"),
    ],
)
def test_a_profile_proxy_is_a_plain_proxy_url(value: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        MarquezConnection(base_url="https://marquez.example.com", proxy=value)
    [error] = info.value.errors()
    assert error["loc"] == ("proxy",)
    assert message in error["msg"]
    assert "pa55word-xyz" not in str(info.value)


def test_proxy_urls_are_normalised_and_warned_about_only_when_they_see_plain_text() -> None:
    config = MarquezConnection(
        base_url="https://marquez.example.com", proxy=" http://proxy.example.com:3128/ "
    )
    assert config.proxy == "http://proxy.example.com:3128"
    assert config.warnings() == []  # https:// travels through a CONNECT tunnel
    local = MarquezConnection(base_url="http://127.0.0.1:5000", proxy="http://proxy.example.com:3128")
    assert local.warnings() == ["Plain http:// through a proxy: the proxy can read credentials and data."]
    remote = MarquezConnection(base_url="http://marquez.example.com", proxy="http://proxy.example.com:3128")
    assert [note for note in remote.warnings() if note.startswith("Plain http://")] == [
        "Plain http:// to a remote host: credentials and data travel unencrypted."
    ]
