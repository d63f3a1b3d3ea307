"""`xc pull`: images from a registry over the Docker Registry HTTP API v2.

The protocol (distribution's ``docs/spec/api.md``, the OCI distribution
spec), as far as a pull needs it:

1. ``GET /v2/`` says whether the host is a registry and how it wants to be
   authenticated.  200: no authentication.  401 with
   ``WWW-Authenticate: Bearer realm=...,service=...[,scope=...]``: ask the
   token server at *realm* (``GET realm?service=S&scope=repository:NAME:pull``,
   with HTTP basic credentials when we have some) for a token, then send
   ``Authorization: Bearer TOKEN``.  401 with ``Basic realm=...``: send the
   user name and password as HTTP basic authentication.  A later 401 (a
   token expired, or a scope the first token lacked) repeats the exchange
   once with the challenge's own scope.
2. ``GET /v2/NAME/manifests/REF`` with ``Accept`` listing the manifest types
   we take; the answer's ``Content-Type`` says which came.  An image index
   (OCI) or manifest list (Docker) names one manifest per platform: the
   linux/amd64 one is fetched by digest.  Docker's schema 1 is refused.
   A manifest fetched by digest must hash to it; one fetched by tag must hash
   to the ``Docker-Content-Digest`` the registry sends, when it sends one.
3. ``GET /v2/NAME/blobs/DIGEST`` for the config and each layer the store
   lacks (the config's ``rootfs.diff_ids`` say which layers we have).  A
   layer download goes to ``tmp/partial/HEX.part`` in the store; one that
   breaks off is continued by the next pull with ``Range: bytes=N-`` (a 206
   answer appends, a 200 starts over), and the whole blob is checked
   against its digest before it is unpacked (and its uncompressed tar
   against the diff-id).  A blob that does not match is deleted; a resumed
   one is fetched once more from the start before giving up.

Authorization headers are never forwarded on a redirect (registries send
blob downloads to storage hosts).  https is tried first; plain http is
allowed for ``--insecure`` and for registries on this machine (localhost,
127.0.0.0/8, ::1), as Docker allows.  Certificates are verified unless
``--insecure``; ``--cert-dir DIR`` adds the CA certificates ``DIR/*.crt``.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import http.client
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Any

from . import _json as json
from .archive import (INDEX_TYPES, MANIFEST_TYPES, SCHEMA1, check_config, layer_sizes, manifest_layers,
                      pick_platform, record)
from .imagestore import ImageError, ImageStore, hex_of, sha256_bytes
from .reference import Reference, parse

__all__ = ["RegistryError", "Client", "pull", "parse_challenge"]

ACCEPT = ", ".join([*MANIFEST_TYPES, *INDEX_TYPES, *SCHEMA1])
_MAX_MANIFEST = 4 << 20
_CHUNK = 1 << 20
_TIMEOUT = 60


class RegistryError(ImageError):
    """A registry that cannot be reached, refuses us, or sends bad data."""


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="x",service="y"`` -> ("bearer", {"realm": "x", ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            val = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                val.append(rest[i])
                i += 1
            i += 1
            params[key] = "".join(val)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


def _is_local(host: str) -> bool:
    h = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:host.find("]")]
    return h in ("localhost", "::1") or h.startswith("127.")


def _errors(body: bytes) -> str:
    """The registry's error document, as one short line."""
    try:
        errs = json.loads(body).get("errors") or []
        return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errs)[:300]
    except (ValueError, AttributeError):
        return ""


class _NoAuthRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects; headers added as unredirected (Authorization) stay behind."""


class Client:
    """A session with one repository of one registry."""

    def __init__(self, ref: Reference, *, insecure: bool = False, creds: str | None = None,
                 cert_dir: str | None = None) -> None:
        self.ref = ref
        self.host = ref.registry
        self.insecure = insecure
        self.allow_http = insecure or _is_local(self.host)
        self.user, self.password = None, None
        if creds:
            self.user, sep, self.password = creds.partition(":")  # type: ignore[assignment]
            if not sep:
                raise RegistryError("--creds: expected USER:PASSWORD")
        self.base = ""
        self.auth: str | None = None  # the Authorization header value
        self._challenge: tuple[str, dict[str, str]] | None = None
        ctx = ssl.create_default_context()
        if cert_dir:
            crts = [os.path.join(cert_dir, n) for n in sorted(os.listdir(cert_dir)) if n.endswith((".crt", ".pem"))]
            if not crts:
                raise RegistryError(f"--cert-dir {cert_dir}: no *.crt files")
            for c in crts:
                ctx.load_verify_locations(c)
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), _NoAuthRedirect())

    # -- HTTP ------------------------------------------------------------------

    def _open(self, url: str, headers: dict[str, str] | None = None, auth: str | None = None) -> Any:
        req = urllib.request.Request(url, headers=headers or {})
        req.add_header("User-Agent", "xcontainers")
        if auth:
            req.add_unredirected_header("Authorization", auth)
        try:
            return self._opener.open(req, timeout=_TIMEOUT)
        except urllib.error.HTTPError as e:
            return e  # a response too: the caller looks at its code

    def ping(self) -> None:
        """Find the scheme and the authentication the registry wants."""
        schemes = ["https", "http"] if self.allow_http else ["https"]
        failures = []
        for scheme in schemes:
            try:
                resp = self._open(f"{scheme}://{self.host}/v2/")
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                failures.append(f"{scheme}: {reason}")
                if isinstance(reason, ssl.SSLCertVerificationError):
                    break  # it speaks TLS; http will not help
                continue
            with resp:
                resp.read()
                self.base = f"{scheme}://{self.host}"
                if resp.status == 401:
                    self._authenticate(resp.headers.get("WWW-Authenticate", ""))
                elif resp.status >= 400:
                    raise RegistryError(f"{self.base}/v2/: {resp.status} {resp.reason}: not a registry "
                                        "(Docker Registry HTTP API v2)")
                return
        hint = "" if self.allow_http else " (--insecure allows plain http)"
        if any("CERTIFICATE_VERIFY_FAILED" in f for f in failures):
            hint = " (--cert-dir DIR trusts a CA, --insecure skips verification)"
        raise RegistryError(f"cannot reach registry {self.host}: {'; '.join(failures)}{hint}")

    def _authenticate(self, challenge: str, scope: str | None = None) -> None:
        scheme, params = parse_challenge(challenge)
        self._challenge = (scheme, params)
        basic = None
        if self.user is not None:
            basic = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if scheme == "basic":
            if basic is None:
                raise RegistryError(f"registry {self.host} asks for a user name and password "
                                    "(--creds USER:PASSWORD)")
            self.auth = basic
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"registry {self.host}: unsupported authentication {challenge[:80]!r}")
        realm = params["realm"]
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(f"registry {self.host}: token realm {realm!r} is not an http(s) URL")
        if realm.startswith("http://") and not (self.allow_http or _is_local(urllib.parse.urlsplit(realm).netloc)):
            raise RegistryError(f"registry {self.host}: token realm {realm} is plain http (--insecure allows it)")
        q = {"scope": scope or params.get("scope") or f"repository:{self.ref.repository}:pull"}
        if "service" in params:
            q["service"] = params["service"]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(q)
        try:
            resp = self._open(url, auth=basic)
        except (urllib.error.URLError, OSError) as e:
            raise RegistryError(f"token server {realm}: {getattr(e, 'reason', e)}") from None
        with resp:
            body = resp.read(1 << 20)
            if resp.status in (401, 403):
                raise RegistryError(f"token server {realm}: {resp.status} {resp.reason}: authentication failed"
                                    + ("" if basic else " (--creds USER:PASSWORD)"))
            if resp.status != 200:
                raise RegistryError(f"token server {realm}: {resp.status} {resp.reason}")
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise RegistryError(f"token server {realm}: the answer holds no token")
        self.auth = f"Bearer {token}"

    def get(self, path: str, headers: dict[str, str] | None = None, ok: tuple[int, ...] = (200,)) -> Any:
        """GET *path* of the repository, authenticating again once on 401."""
        if not self.base:
            self.ping()
        url = f"{self.base}/v2/{self.ref.repository}/{path}"
        for attempt in (0, 1):
            try:
                resp = self._open(url, headers, self.auth)
            except (urllib.error.URLError, OSError) as e:
                raise RegistryError(f"{url}: {getattr(e, 'reason', e)}") from None
            if resp.status == 401 and attempt == 0:
                ch = resp.headers.get("WWW-Authenticate", "")
                resp.close()
                if ch:
                    scope = parse_challenge(ch)[1].get("scope")
                    self._authenticate(ch, scope)
                    continue
            if resp.status not in ok:
                body = resp.read(1 << 16)
                resp.close()
                what = f"{self.host}/{self.ref.repository}"
                detail = _errors(body) or resp.reason
                if resp.status == 404:
                    raise RegistryError(f"{what}: {path.split('/')[0].rstrip('s')} {path.split('/', 1)[1]} "
                                        f"not found (404 {detail})")
                if resp.status in (401, 403):
                    raise RegistryError(f"{what}: access denied ({resp.status} {detail})"
                                        + ("" if self.user else " (--creds USER:PASSWORD)"))
                raise RegistryError(f"{what}: GET {path}: {resp.status} {detail}")
            return resp
        raise AssertionError("unreachable")

    # -- manifests and blobs -------------------------------------------------

    def manifest(self, reference: str, expect: str | None = None) -> tuple[str, bytes, str]:
        resp = self.get(f"manifests/{reference}", {"Accept": ACCEPT})
        with resp:
            body = resp.read(_MAX_MANIFEST + 1)
            mt = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
            header_digest = resp.headers.get("Docker-Content-Digest")
        if len(body) > _MAX_MANIFEST:
            raise RegistryError(f"manifest {reference}: larger than {_MAX_MANIFEST} bytes")
        if mt in SCHEMA1:
            # (Its digest covers the payload without the signatures: not checked, refused anyway.)
            raise RegistryError(f"{self.ref}: Docker schema 1 manifests are not supported (push the image "
                                "again with a current client)")
        digest = sha256_bytes(body)
        want = expect or (reference if reference.startswith("sha256:") else header_digest)
        if want and digest != want:
            raise RegistryError(f"manifest {reference}: digest mismatch: expected {want}, got {digest}")
        if mt in ("", "application/json", "text/plain"):
            try:
                mt = json.loads(body).get("mediaType", mt)
            except (ValueError, AttributeError):
                pass
        return mt, body, digest

    def blob_bytes(self, desc: dict[str, Any], what: str) -> bytes:
        size = desc.get("size", 0)
        if size > _MAX_MANIFEST * 4:
            raise RegistryError(f"{what} {desc['digest']}: {size} bytes is too large")
        with self.get(f"blobs/{desc['digest']}") as resp:
            data = resp.read(_MAX_MANIFEST * 4 + 1)
        if sha256_bytes(data) != desc["digest"]:
            raise RegistryError(f"{what}: blob digest mismatch: expected {desc['digest']}, got {sha256_bytes(data)}")
        return data  # type: ignore[no-any-return]

    def blob_to_file(self, desc: dict[str, Any], path: str, what: str, progress: IO[str] | None) -> None:
        """Download the blob *desc* into *path* (continuing what is there),
        checking its digest; a mismatch removes the file."""
        import hashlib

        digest = desc["digest"]
        for attempt in (0, 1):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                h = hashlib.sha256()
                have = 0
                while True:
                    chunk = os.read(fd, _CHUNK)
                    if not chunk:
                        break
                    h.update(chunk)
                    have += len(chunk)
                size = desc.get("size")
                resumed = have
                if size is not None and have > size:
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    h, have, resumed = hashlib.sha256(), 0, 0
                if size is None or have < size:
                    headers = {"Range": f"bytes={have}-"} if have else {}
                    resp = self.get(f"blobs/{digest}", headers, ok=(200, 206))
                    with resp:
                        if have and resp.status == 200:  # the server ignored the range
                            os.ftruncate(fd, 0)
                            os.lseek(fd, 0, os.SEEK_SET)
                            h, have, resumed = hashlib.sha256(), 0, 0
                        try:
                            while True:
                                chunk = resp.read(_CHUNK)
                                if not chunk:
                                    break
                                h.update(chunk)
                                view = memoryview(chunk)
                                while view:
                                    view = view[os.write(fd, view):]
                                have += len(chunk)
                        except (OSError, urllib.error.URLError, http.client.HTTPException) as e:
                            if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
                                raise
                            raise RegistryError(f"{what}: download broke off after {have} bytes "
                                                f"({getattr(e, 'reason', e)}); xc pull again resumes it") from None
                        if size is not None and have < size:
                            raise RegistryError(f"{what}: download broke off after {have} of {size} bytes; "
                                                "xc pull again resumes it")
            finally:
                os.close(fd)
            got = "sha256:" + h.hexdigest()
            if got == digest and (size is None or have == size):
                if progress is not None:
                    progress.write(f"{what}: {have} bytes" + (f" (resumed at {resumed})" if resumed else "") + "\n")
                return
            os.unlink(path)
            if resumed and attempt == 0:
                continue  # the part we had was bad: once more from the start
            raise RegistryError(f"{what}: blob digest mismatch: expected {digest}, got {got}"
                                + (f" ({have} bytes, expected {size})" if size is not None and have != size else ""))


def pull(store: ImageStore, text: str, *, insecure: bool = False, creds: str | None = None,
         cert_dir: str | None = None, progress: IO[str] | None = sys.stderr) -> dict[str, Any]:
    """Pull the image *text* names into *store*; return its record."""
    ref = parse(text, remote=True)
    client = Client(ref, insecure=insecure, creds=creds, cert_dir=cert_dir)
    client.ping()
    mt, body, digest = client.manifest(ref.reference)
    if mt in INDEX_TYPES:
        desc = pick_platform(_json(body, f"{ref}: image index"), f"{ref}: image index")
        mt, body, digest = client.manifest(desc["digest"], expect=desc["digest"])
    if mt not in MANIFEST_TYPES:
        raise RegistryError(f"{ref}: unsupported manifest media type {mt!r}")
    cdesc, ldescs = manifest_layers(_json(body, f"{ref}: manifest"), f"{ref}: manifest {digest}")
    name = str(ref) if ref.tag else f"{ref.name}@{ref.digest}"
    partial = os.path.join(store.tmp, "partial")
    try:
        rec = _pull_into(store, client, ref, name, body, digest, cdesc, ldescs, partial, progress)
    finally:
        try:
            os.rmdir(partial)  # unless a broken-off download waits there to be resumed
        except OSError:
            pass
    if progress is not None:
        progress.write(f"pulled {name} ({rec['id'][:12]})\n")
    return rec


def _pull_into(store: ImageStore, client: Client, ref: Reference, name: str, body: bytes, digest: str,
               cdesc: dict[str, Any], ldescs: list[dict[str, Any]], partial: str,
               progress: IO[str] | None) -> dict[str, Any]:
    from .layer import compression_of

    with store.transaction("pull") as tx:
        tx.add_blob(body, digest, f"{ref}: manifest")
        cfg_bytes = client.blob_bytes(cdesc, f"{ref}: config")
        tx.add_blob(cfg_bytes, cdesc["digest"], f"{ref}: config")
        cfg = _json(cfg_bytes, f"{ref}: config")
        diff_ids = check_config(cfg, f"{ref}: config {cdesc['digest']}")
        if len(diff_ids) != len(ldescs):
            raise RegistryError(f"{ref}: the manifest has {len(ldescs)} layers, the config {len(diff_ids)} diff-ids")
        os.makedirs(partial, 0o700, exist_ok=True)
        size = 0
        for i, (ld, diff_id) in enumerate(zip(ldescs, diff_ids)):
            what = f"layer {i + 1}/{len(ldescs)} {ld['digest'][:19]}"
            compression = compression_of(ld["mediaType"])
            if not tx.needs_layer(diff_id):
                if progress is not None:
                    progress.write(f"{what}: already in the store\n")
                continue
            path = os.path.join(partial, hex_of(ld["digest"]) + ".part")
            client.blob_to_file(ld, path, what, progress)
            try:
                with open(path, "rb") as f:
                    size += tx.unpack_layer(f, compression=compression, diff_id=diff_id,
                                            blob_digest=ld["digest"], what=f"{ref}: {what}")
            finally:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        rec = record(cdesc["digest"], digest, diff_ids, [name], cfg, 0, f"registry {ref.registry}")
        rec["size"] = layer_sizes(store, tx, diff_ids)
        tx.commit([rec])
    return rec


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise RegistryError(f"{what}: not valid JSON ({e})") from None
