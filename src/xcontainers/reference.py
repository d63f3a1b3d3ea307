"""Image references: ``[registry/]repository[:tag][@digest]``.

The grammar is Docker's (the distribution project's ``reference`` package):
the first ``/``-separated component is a registry host when it contains a
``.`` or a ``:`` or is ``localhost``; otherwise the reference names Docker
Hub (``docker.io``), where a one-component repository lives under
``library/``.  A reference without tag or digest means ``:latest``.

Names of images in the local store are kept as the user or the archive gave
them, with ``:latest`` added when they carry no tag (``localhost/x`` stays
``localhost/x:latest``; Docker Hub's long form is not forced on them).
"""

from __future__ import annotations

from .errors import XcError, quoted

__all__ = ["Reference", "parse", "local_name", "ReferenceError_"]

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_PATH_CHARS = _ALNUM | frozenset("._-/")
_TAG_CHARS = _ALNUM | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ._-")
_HEX = frozenset("0123456789abcdef")

DOCKER_HUB = "docker.io"


class ReferenceError_(XcError):
    """A malformed image reference."""


class Reference:
    """A parsed reference: ``registry`` (host[:port], "" for a local name
    without one), ``repository`` (e.g. "test/busybox"), ``tag`` ("" when
    only a digest is given), ``digest`` ("sha256:<hex>" or "")."""

    __slots__ = ("registry", "repository", "tag", "digest")

    def __init__(self, registry: str, repository: str, tag: str, digest: str) -> None:
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    @property
    def name(self) -> str:
        """``registry/repository`` (or just the repository)."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def reference(self) -> str:
        """What the registry's manifest endpoint takes: the digest, else the tag."""
        return self.digest or self.tag

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s


def check_digest(digest: str, what: str = "digest") -> str:
    algo, sep, hexpart = digest.partition(":")
    if algo != "sha256" or not sep or len(hexpart) != 64 or not _HEX.issuperset(hexpart):
        raise ReferenceError_(f"{what} {quoted(digest, 100)}: expected sha256:<64 hex digits>")
    return digest


def parse(text: str, *, remote: bool = False) -> Reference:
    """Parse *text*.  With *remote*, fill in Docker Hub's defaults (the
    registry ``docker.io`` and its ``library/`` prefix) as a pull needs."""
    if not text or text != text.strip():
        why = "empty" if not text else "blanks around it"
        raise ReferenceError_(f"invalid image reference {quoted(text, 300)}: {why}")
    rest, _, digest = text.partition("@")
    if digest:
        check_digest(digest, f"image reference {quoted(text, 300)}: digest")
    tag = ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not tag or len(tag) > 128 or not _TAG_CHARS.issuperset(tag) or tag[0] in ".-":
            raise ReferenceError_(f"image reference {quoted(text, 300)}: invalid tag {quoted(tag, 140)}")
    first, sep, path = rest.partition("/")
    registry = ""
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry = first
    else:
        path = rest
    if not path or not _PATH_CHARS.issuperset(path) or path.startswith("/") or path.endswith("/") \
            or "//" in path or any(not c or c[0] in "._-" or c[-1] in "._-" for c in path.split("/")):
        raise ReferenceError_(f"invalid image reference {quoted(text, 300)}: the repository must be lower-case "
                              "letters, digits and . _ - separated by /")
    if remote:
        if not registry:
            registry = DOCKER_HUB
        if registry == DOCKER_HUB and "/" not in path:
            path = "library/" + path
    if not tag and not digest:
        tag = "latest"
    return Reference(registry, path, tag, digest)


def local_name(text: str) -> str:
    """The name an image gets in the local store: *text* with ``:latest``
    added when it has neither tag nor digest."""
    return str(parse(text))
