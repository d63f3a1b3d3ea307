"""`xc pull` against a real registry on loopback.

The registry is Debian's ``docker-registry`` (distribution 2.8), started by
the fixtures below on 127.0.0.1 with a config and a storage directory of
their own; test images are pushed into it with skopeo.  Three ways to
authenticate are set up for real: none; HTTP basic (htpasswd) over TLS
with a self-signed certificate made by openssl; and token authentication,
where the registry trusts a certificate whose key signs (RS256, with the
openssl CLI) the JWTs that a small token server here hands out.  Nothing
leaves the machine.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import need_root
from imagelib import LayerBuilder, Xc, image_config, podman_images, sha, skopeo, snapshot, write_oci_layout

pytestmark = pytest.mark.root

REGISTRY = shutil.which("docker-registry")
SERVICE = "xc-test-registry"
ISSUER = "xc-test-token-issuer"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl_cert(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return key, cert


class Registry:
    """docker-registry on 127.0.0.1, with its own config, storage and log."""

    def __init__(self, base: Path, auth: dict[str, Any] | None = None, tls: tuple[Path, Path] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        if REGISTRY is None:
            pytest.skip("docker-registry is not installed (make setup installs Debian's docker-registry)")
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.data = base / "data"
        http_cfg: dict[str, Any] = {"addr": self.host, "secret": "xc-test"}
        if tls:
            http_cfg["tls"] = {"certificate": str(tls[1]), "key": str(tls[0])}
        cfg: dict[str, Any] = {"version": 0.1, "log": {"level": "info", "accesslog": {"disabled": False}},
                               "storage": {"filesystem": {"rootdirectory": str(self.data)},
                                           "delete": {"enabled": True}},
                               "http": http_cfg, **(extra or {})}
        if auth:
            cfg["auth"] = auth
        # JSON is YAML: no YAML writer needed.
        (base / "config.yml").write_text(json.dumps(cfg, indent=1))
        self.log = base / "registry.log"
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen([REGISTRY, "serve", str(base / "config.yml")], stdout=self.logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.scheme = "https" if tls else "http"
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"docker-registry did not start: {self.log.read_text()[-2000:]}")
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()

    def push(self, src: str, repo: str, *args: str) -> str:
        skopeo("copy", "--dest-tls-verify=false", *args, src, f"docker://{self.host}/{repo}")
        return f"{self.host}/{repo}"

    def blob_path(self, digest: str) -> Path:
        h = digest[7:]
        return self.data / "docker/registry/v2/blobs/sha256" / h[:2] / h / "data"

    def manifest(self, repo: str, tag: str) -> dict[str, Any]:
        req = urllib.request.Request(f"http://{self.host}/v2/{repo}/manifests/{tag}", headers={"Accept": ", ".join([
            "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"])})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need_root()
    return podman_images(tmp_path_factory.mktemp("podman-images"))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, images: dict[str, Path]) -> Iterator[Registry]:
    """An open registry holding test/busybox in OCI (tag oci) and Docker
    schema 2 (tag docker) form."""
    need_root()
    reg = Registry(tmp_path_factory.mktemp("registry"))
    try:
        reg.push(f"docker-archive:{images['docker']}", "test/busybox:oci", "--format", "oci")
        reg.push(f"docker-archive:{images['docker']}", "test/busybox:docker", "--format", "v2s2")
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def xcli(tmp_path: Path) -> Iterator[Xc]:
    need_root()
    x = Xc(tmp_path / "xc")
    yield x
    x.cleanup()


def _store_manifest(x: Xc, rec: dict[str, Any]) -> dict[str, Any]:
    return json.loads((x.store / "blobs/sha256" / rec["manifest"][7:]).read_text())  # type: ignore[no-any-return]


def test_pull_oci_and_docker_media_types_and_run(xcli, registry):
    recs = {}
    for tag, mt in (("oci", "application/vnd.oci.image.manifest.v1+json"),
                    ("docker", "application/vnd.docker.distribution.manifest.v2+json")):
        ref = f"{registry.host}/test/busybox:{tag}"
        r = xcli("pull", ref)
        rec = json.loads(xcli("image", "inspect", ref).stdout)
        assert _store_manifest(xcli, rec)["mediaType"] == mt
        assert rec["id"] == r.stdout.strip()
        recs[tag] = rec
    # One image config, one layer on disk (the layer tar is the same under both media types).
    assert recs["oci"]["id"] == recs["docker"]["id"] and len(xcli.layer_dirs()) == 1
    out = xcli("run", "--rm", f"{registry.host}/test/busybox:docker").stdout
    assert out == "hello from /work\n"
    # By digest, and a second pull of what the store has fetches no layer.
    digest = recs["oci"]["manifest"]
    r = xcli("pull", f"{registry.host}/test/busybox@{digest}")
    assert "already in the store" in r.stderr
    assert f"{registry.host}/test/busybox@{digest}" in xcli("image", "ls").stdout


def _two_platform_layout(tmp: Path, platforms: list[tuple[str, str]]) -> Path:
    """An OCI layout whose index names one image per platform; the amd64 one
    holds /which = amd64, the others their own architecture."""
    layout = tmp / "multi"
    manifests = []
    for os_, arch in platforms:
        layer = LayerBuilder().file("which", f"{arch}\n".encode()).bytes()
        info = write_oci_layout(layout, [layer], compress="gzip",
                                config=image_config([sha(layer)], platform=(os_, arch)))
        mbytes = (layout / "blobs/sha256" / info["manifest"][7:]).read_bytes()
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": info["manifest"],
                          "size": len(mbytes), "platform": {"os": os_, "architecture": arch}})
    idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": manifests}).encode()
    (layout / "blobs/sha256" / sha(idx)[7:]).write_bytes(idx)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(idx), "size": len(idx),
         "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
    return layout


@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_pull_image_index_picks_linux_amd64(xcli, registry, tmp_path, fmt):
    """An OCI image index, and (skopeo --format v2s2) a Docker manifest list."""
    layout = _two_platform_layout(tmp_path, [("linux", "arm64"), ("linux", "amd64"), ("linux", "s390x")])
    ref = registry.push(f"oci:{layout}:latest", f"test/multi-{fmt}:latest", "--all", "--format", fmt)
    list_type = {"oci": "application/vnd.oci.image.index.v1+json",
                 "v2s2": "application/vnd.docker.distribution.manifest.list.v2+json"}[fmt]
    req = urllib.request.Request(f"http://{registry.host}/v2/test/multi-{fmt}/manifests/latest",
                                 headers={"Accept": list_type}, method="HEAD")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["Content-Type"] == list_type
    xcli("pull", ref)
    rec = json.loads(xcli("image", "inspect", ref).stdout)
    assert rec["image_config"]["architecture"] == "amd64"
    layer = xcli.store / "layers" / rec["layers"][0][7:] / "diff/which"
    assert layer.read_text() == "amd64\n"
    if fmt == "v2s2":
        return
    # An index without linux/amd64 is refused, and nothing is left.
    layout2 = _two_platform_layout(tmp_path / "2", [("linux", "arm64"), ("windows", "amd64")])
    ref2 = registry.push(f"oci:{layout2}:latest", "test/noamd64:latest", "--all")
    before = snapshot(xcli.store, xcli.bundles)
    xcli.fails("pull", ref2, want="no linux/amd64 image in the index (it has: linux/arm64, windows/amd64)")
    assert snapshot(xcli.store, xcli.bundles) == before


def test_pull_errors_404_unreachable_schema1(xcli, registry, images, tmp_path):
    xcli("pull", f"{registry.host}/test/busybox:oci")
    before = snapshot(xcli.store, xcli.bundles)
    xcli.fails("pull", f"{registry.host}/test/nothing:1", want="test/nothing: manifest 1 not found (404")
    xcli.fails("pull", f"{registry.host}/test/busybox:nope", want="manifest nope not found (404")
    xcli.fails("pull", f"127.0.0.1:{_free_port()}/test/busybox:1", want="cannot reach registry")
    xcli.fails("pull", "Bad/Name", want="invalid image reference")
    s1 = Registry(tmp_path / "s1", extra={"compatibility": {"schema1": {"enabled": True}}})
    try:
        s1.push(f"docker-archive:{images['docker']}", "test/old:1", "--format", "v2s1")
        xcli.fails("pull", f"{s1.host}/test/old:1", want="Docker schema 1 manifests are not supported")
    finally:
        s1.stop()
    assert snapshot(xcli.store, xcli.bundles) == before


def test_corrupt_blob_in_the_registry_is_refused(xcli, images, tmp_path):
    reg = Registry(tmp_path / "reg")
    try:
        ref = reg.push(f"docker-archive:{images['docker']}", "test/corrupt:1", "--format", "oci")
        xcli("image", "import", str(images["oci"]), "--name", "other:1")  # a store that exists
        xcli("image", "rm", "other:1")
        before = snapshot(xcli.store, xcli.bundles)
        layer = reg.manifest("test/corrupt", "1")["layers"][0]["digest"]
        blob = reg.blob_path(layer)
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))
        err = xcli.fails("pull", ref, want="blob digest mismatch: expected " + layer)
        assert "layer 1/1" in err
        assert snapshot(xcli.store, xcli.bundles) == before  # no partial download kept either
    finally:
        reg.stop()


def _written(log: Path, digest: str, count: int = 0) -> list[int]:
    """Bytes the registry wrote for each GET of blob *digest* (its access log),
    in the order the requests completed. The registry writes a request's line
    after the client may already have all its bytes and gone on: with *count*,
    wait (up to 10 s) until that many lines are there."""
    deadline = time.monotonic() + 10
    while True:
        out = []
        for line in log.read_text().splitlines():
            if "response completed" in line and f"/blobs/{digest}" in line and 'http.request.method=GET' in line:
                m = re.search(r"http\.response\.written=(\d+)", line)
                if m:
                    out.append(int(m.group(1)))
        if len(out) >= count or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def test_pull_resumes_a_partial_download(xcli, images, tmp_path):
    reg = Registry(tmp_path / "reg")
    try:
        ref = reg.push(f"docker-archive:{images['docker']}", "test/resume:1", "--format", "oci")
        layer = reg.manifest("test/resume", "1")["layers"][0]
        data = reg.blob_path(layer["digest"]).read_bytes()
        assert len(data) == layer["size"]
        part_dir = xcli.store / "tmp/partial"
        part_dir.mkdir(parents=True)
        half = len(data) // 2
        (part_dir / f"{layer['digest'][7:]}.part").write_bytes(data[:half])
        r = xcli("pull", ref)
        assert f"(resumed at {half})" in r.stderr
        assert _written(reg.log, layer["digest"], 1) == [len(data) - half]
        assert not part_dir.exists()
        assert xcli("run", "--rm", ref, "echo", "ok").stdout == "ok\n"
        # A partial download whose bytes are wrong: caught by the digest,
        # fetched again from the start.
        xcli("image", "rm", ref)
        part_dir.mkdir()
        (part_dir / f"{layer['digest'][7:]}.part").write_bytes(bytes(half))
        r = xcli("pull", ref)
        # Two requests: the resumed one, then the whole blob. The log orders
        # them by when the registry finished each (CI saw them swapped), so
        # compare them as a set of sizes.
        assert sorted(_written(reg.log, layer["digest"], 3)[1:]) == sorted([len(data) - half, len(data)])
        assert not part_dir.exists()
    finally:
        reg.stop()


# -- authentication -----------------------------------------------------------------


def test_basic_auth_over_tls(xcli, images, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    tls = _openssl_cert(certs, "registry")
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(subprocess.run(["htpasswd", "-Bbn", "alice", "s3cret"], capture_output=True, text=True,
                                       check=True).stdout)
    reg = Registry(tmp_path / "reg", auth={"htpasswd": {"realm": "xc-test", "path": str(htpasswd)}}, tls=tls)
    try:
        skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:s3cret", "--format", "oci",
               f"docker-archive:{images['docker']}", f"docker://{reg.host}/test/basic:1")
        ref = f"{reg.host}/test/basic:1"
        ca = tmp_path / "ca"
        ca.mkdir()
        shutil.copy(tls[1], ca / "registry.crt")
        xcli.fails("pull", ref, want="certificate verify failed")
        xcli.fails("pull", "--cert-dir", str(ca), ref, want="asks for a user name and password (--creds")
        xcli.fails("pull", "--cert-dir", str(ca), "--creds", "alice:wrong", ref, want="access denied (401")
        xcli("pull", "--cert-dir", str(ca), "--creds", "alice:s3cret", ref)
        xcli("image", "rm", ref)
        xcli("pull", "--insecure", "--creds", "alice:s3cret", ref)
        assert xcli("run", "--rm", ref, "echo", "basic").stdout == "basic\n"
    finally:
        reg.stop()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A token server: HTTP basic credentials in, a JWT (RS256) out, granting
    the requested actions on the requested repository to the right user and
    nothing to anyone else.  Signed with the openssl CLI."""

    def __init__(self, key: Path, cert: Path, users: dict[str, str]) -> None:
        der = subprocess.run(["openssl", "x509", "-in", str(cert), "-outform", "DER"], capture_output=True,
                             check=True).stdout
        self.key, self.x5c, self.users = key, base64.b64encode(der).decode(), users
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if server.users.get(u) != p:
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = u
                server.requests.append({"user": user, **q})
                body = json.dumps({"token": server.token(user, q.get("scope", ""), q.get("service", ""))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def token(self, user: str | None, scope: str, service: str) -> str:
        access = []
        if user is not None and scope.startswith("repository:"):
            _, name, actions = scope.split(":", 2)
            access.append({"type": "repository", "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": user or "", "aud": service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": hashlib.sha256(os.urandom(16)).hexdigest(), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
                             capture_output=True, check=True).stdout
        return f"{signing_input}.{_b64url(sig)}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_token_auth(xcli, images, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    key, cert = _openssl_cert(certs, "token")
    tokens = TokenServer(key, cert, {"bob": "hunter2"})
    reg = Registry(tmp_path / "reg", auth={"token": {"realm": tokens.realm, "service": SERVICE, "issuer": ISSUER,
                                                     "rootcertbundle": str(cert)}})
    try:
        skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "bob:hunter2", "--format", "oci",
               f"docker-archive:{images['docker']}", f"docker://{reg.host}/test/token:1")
        ref = f"{reg.host}/test/token:1"
        before = snapshot(xcli.store, xcli.bundles)
        xcli.fails("pull", "--creds", "bob:wrong", ref, want="token server " + tokens.realm)
        xcli.fails("pull", "--creds", "bob:wrong", ref, want="401")
        # Anonymous: the token grants nothing, the registry says no.
        xcli.fails("pull", ref, want="access denied (401")
        assert snapshot(xcli.store, xcli.bundles) == before
        tokens.requests.clear()
        xcli("pull", "--creds", "bob:hunter2", ref)
        assert {(r["user"], r["service"], r["scope"]) for r in tokens.requests} == {
            ("bob", SERVICE, "repository:test/token:pull")}
        assert xcli("run", "--rm", ref, "echo", "token").stdout == "token\n"
    finally:
        reg.stop()
        tokens.stop()


class CuttingProxy:
    """A TCP proxy to the registry that breaks the connection after
    *limit* bytes of one answer (the first one larger than that)."""

    def __init__(self, upstream: int, limit: int) -> None:
        self.upstream, self.limit, self.cuts = upstream, limit, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._pump, args=(c,), daemon=True).start()

    def _pump(self, c: socket.socket) -> None:
        u = socket.create_connection(("127.0.0.1", self.upstream))
        threading.Thread(target=self._copy, args=(c, u, None), daemon=True).start()
        self._copy(u, c, self.limit if self.cuts == 0 else None)

    def _copy(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[: limit - sent])
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def stop(self) -> None:
        self.stopping = True
        self.sock.close()


def test_a_download_that_breaks_off_is_resumed(xcli, images, tmp_path):
    reg = Registry(tmp_path / "reg")
    proxy = CuttingProxy(reg.port, 400_000)
    try:
        reg.push(f"docker-archive:{images['docker']}", "test/cut:1", "--format", "oci")
        layer = reg.manifest("test/cut", "1")["layers"][0]
        ref = f"127.0.0.1:{proxy.port}/test/cut:1"
        err = xcli.fails("pull", ref, want="download broke off after")
        assert "xc pull again resumes it" in err and proxy.cuts == 1
        parts = os.listdir(xcli.store / "tmp/partial")
        assert parts == [f"{layer['digest'][7:]}.part"]
        have = (xcli.store / "tmp/partial" / parts[0]).stat().st_size
        assert 0 < have < layer["size"]
        assert xcli("image", "ls", "--json").stdout.strip() == "[]"
        r = xcli("pull", ref)
        assert f"(resumed at {have})" in r.stderr
        deadline = time.monotonic() + 10
        while layer["size"] - have not in _written(reg.log, layer["digest"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert layer["size"] - have in _written(reg.log, layer["digest"])
        assert not (xcli.store / "tmp/partial").exists()
        assert xcli("run", "--rm", ref, "echo", "whole").stdout == "whole\n"
    finally:
        proxy.stop()
        reg.stop()


# -- pure logic -------------------------------------------------------------------------


def test_references_and_challenges():
    from xcontainers.reference import parse
    from xcontainers.registry import parse_challenge

    r = parse("localhost:5000/test/busybox:latest", remote=True)
    assert (r.registry, r.repository, r.tag, r.digest) == ("localhost:5000", "test/busybox", "latest", "")
    r = parse("busybox", remote=True)
    assert (r.registry, r.repository, r.tag) == ("docker.io", "library/busybox", "latest")
    r = parse("example.com/a/b@sha256:" + "0" * 64)
    assert (r.registry, r.repository, r.tag, r.reference) == ("example.com", "a/b", "", "sha256:" + "0" * 64)
    assert str(parse("x/y")) == "x/y:latest"
    for bad in ("UPPER/case", "a//b", "a:", "-a", "a@sha256:12", "a/b:t@md5:00", ""):
        with pytest.raises(Exception, match="image reference|digest"):
            parse(bad)
    header = 'Bearer realm="https://auth.example/token",service="reg, 1",scope="repository:a/b:pull,push"'
    assert parse_challenge(header) == ("bearer", {"realm": "https://auth.example/token", "service": "reg, 1",
                                                  "scope": "repository:a/b:pull,push"})
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


def test_concurrent_pulls_of_one_image(xcli, registry):
    ref = f"{registry.host}/test/busybox:oci"
    procs = [subprocess.Popen([str(Path(__file__).resolve().parent.parent / ".venv/bin/xc"), "pull", "-q", ref],
                              env=xcli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), results
    assert len({out for out, _, _ in results}) == 1
    assert len(xcli.layer_dirs()) == 1 and os.listdir(xcli.store / "tmp") == []
    assert xcli("run", "--rm", ref, "echo", "one").stdout == "one\n"
