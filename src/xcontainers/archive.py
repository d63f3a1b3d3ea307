"""Importing image archives into the store: ``xc image import FILE``.

Two formats, as ``docker save``/``podman save``/``skopeo copy`` write them:

* **OCI image layout** (``oci-archive:``, or a directory as ``oci:``):
  ``oci-layout``, ``index.json`` and ``blobs/sha256/HEX``.  ``index.json``
  lists manifests (or nested indexes, of which the linux/amd64 entry is
  taken); a manifest names its config and its layers by digest, size and
  media type.  Every blob read is checked against its descriptor's digest
  and size, every layer's uncompressed tar against the config's
  ``rootfs.diff_ids``.  Names come from the annotations
  ``org.opencontainers.image.ref.name`` (a full name as podman writes, or
  only a tag as ``oci:DIR:TAG`` writes, then without a repository) and
  ``io.containerd.image.name``.
* **docker-archive**: ``manifest.json`` lists for each image its config
  file, its ``RepoTags`` and its layer files (plain tars, or gzip/zstd
  ones, found by their first bytes).  The config file is named after its
  digest (``HEX.json``, or ``blobs/sha256/HEX`` in newer Docker) and is
  checked against it; each layer against the config's diff-ids.

The archive itself may be gzip-compressed (``docker save | gzip``).  A tar
member that is a symlink (podman's ``ID/layer.tar -> ../HEX.tar``) is
followed inside the archive only.  Nothing reaches the store until every
image of the archive has checked out (:class:`imagestore.Transaction`).
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from typing import Any, BinaryIO

from . import _json as json
from .errors import XcError, field_name, quoted, shown
from .imagestore import ImageError, ImageStore, Transaction, hex_of, sha256_bytes

__all__ = ["import_archive", "MANIFEST_TYPES", "INDEX_TYPES", "check_config", "pick_platform",
           "manifest_layers"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
CONFIG_TYPES = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
PLATFORM = ("linux", "amd64")
_MAX_JSON = 16 << 20


class _Source:
    """Files of an archive (a tar, maybe compressed) or of a directory."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tar: tarfile.TarFile | None = None
        self.members: dict[str, tarfile.TarInfo] = {}
        if os.path.isdir(path):
            return
        try:
            with open(path, "rb") as f:
                head = f.read(6)
            mode = {b"\x1f\x8b": "r:gz", b"BZ": "r:bz2", b"\xfd7": "r:xz"}.get(head[:2], "r:")
            self.tar = tarfile.open(path, mode)
            for m in self.tar.getmembers():
                self.members[posixpath.normpath(m.name.lstrip("/"))] = m
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            if isinstance(e, FileNotFoundError):
                raise ImageError(f"{path}: no such file") from None
            raise ImageError(f"{path}: not a readable tar archive ({_first_line(e)})") from None

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()

    def _member(self, name: str, depth: int = 0) -> tarfile.TarInfo:
        name = posixpath.normpath(name)
        if name.startswith("../") or name == ".." or name.startswith("/"):
            raise ImageError(f"{self.path}: {quoted(name, 200)} points outside the archive")
        m = self.members.get(name)
        if m is None:
            raise ImageError(f"{self.path}: {name} is missing from the archive")
        if m.issym() or m.islnk():
            if depth > 16:
                raise ImageError(f"{self.path}: {name}: too many links")
            target = m.linkname if m.islnk() else posixpath.join(posixpath.dirname(name), m.linkname)
            return self._member(target, depth + 1)
        if not m.isreg():
            raise ImageError(f"{self.path}: {name} is not a regular file")
        return m

    def exists(self, name: str) -> bool:
        if self.tar is None:
            p = self._dir_path(name)
            return os.path.isfile(p)
        return posixpath.normpath(name) in self.members

    def _dir_path(self, name: str) -> str:
        name = posixpath.normpath(name)
        if name.startswith("../") or name == ".." or name.startswith("/"):
            raise ImageError(f"{self.path}: {quoted(name, 200)} points outside the layout")
        return os.path.join(self.path, name)

    def open(self, name: str) -> tuple[BinaryIO, int]:
        if self.tar is None:
            p = self._dir_path(name)
            try:
                f = open(p, "rb")
            except FileNotFoundError:
                raise ImageError(f"{self.path}: {name} is missing from the layout") from None
            return f, os.fstat(f.fileno()).st_size
        m = self._member(name)
        f = self.tar.extractfile(m)
        assert f is not None
        return f, m.size  # type: ignore[return-value]

    def read(self, name: str, what: str) -> bytes:
        f, size = self.open(name)
        if size > _MAX_JSON:
            raise ImageError(f"{self.path}: {what} {name} is too large ({size} bytes)")
        try:
            data = f.read()
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ImageError(f"{self.path}: {what} {name}: truncated ({e})") from None
        finally:
            f.close()
        if len(data) != size:
            raise ImageError(f"{self.path}: {what} {name}: truncated ({len(data)} of {size} bytes)")
        return data


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]


def _loads(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise ImageError(f"{what}: not valid JSON ({e})") from None


def check_config(cfg: Any, what: str) -> list[str]:
    """The config's diff-ids, after checking what we need of it."""
    if not isinstance(cfg, dict):
        raise ImageError(f"{what}: not a JSON object")
    os_, arch = cfg.get("os", "linux"), cfg.get("architecture", "amd64")
    if (os_, arch) != PLATFORM:
        plat = "/".join(field_name(v) if isinstance(v, str) else shown(v) for v in (os_, arch))
        raise ImageError(f"{what}: the image is for {plat}; this host runs {'/'.join(PLATFORM)}")
    rootfs = cfg.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids")
    if rootfs.get("type") != "layers" or not isinstance(diff_ids, list):
        raise ImageError(f"{what}: rootfs must be {{\"type\": \"layers\", \"diff_ids\": [...]}}")
    for d in diff_ids:
        hex_of(d, f"{what}: rootfs.diff_ids entry")
    return diff_ids


def pick_platform(index: Any, what: str) -> dict[str, Any]:
    """The linux/amd64 entry of an image index / manifest list."""
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise ImageError(f"{what}: an image index without a manifests list")
    seen = []
    for d in manifests:
        if not isinstance(d, dict) or not isinstance(d.get("platform") or {}, dict):
            raise ImageError(f"{what}: an index entry is not a descriptor object")
        p = d.get("platform") or {}
        seen.append(f"{p.get('os', '?')}/{p.get('architecture', '?')}")
        if (p.get("os"), p.get("architecture")) == PLATFORM:
            return d  # type: ignore[no-any-return]
    raise ImageError(f"{what}: no linux/amd64 image in the index (it has: {', '.join(seen) or 'nothing'})")


def manifest_layers(manifest: Any, what: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The config descriptor and layer descriptors of an image manifest."""
    from .layer import compression_of

    if not isinstance(manifest, dict) or manifest.get("schemaVersion") != 2:
        raise ImageError(f"{what}: not a schema 2 image manifest")
    config = manifest.get("config") or {}
    if not isinstance(config, dict):
        raise ImageError(f"{what}: the config descriptor is not an object")
    if config.get("mediaType") not in CONFIG_TYPES:
        raise ImageError(f"{what}: config media type {quoted(config.get('mediaType'))}: not supported")
    hex_of(config.get("digest", ""), f"{what}: config digest")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ImageError(f"{what}: no layers list")
    for d in layers:
        if not isinstance(d, dict):
            raise ImageError(f"{what}: a layer descriptor is not an object")
        compression_of(d.get("mediaType", ""))
        hex_of(d.get("digest", ""), f"{what}: layer digest")
    return config, layers


def record(config_digest: str, manifest_digest: str | None, diff_ids: list[str], names: list[str],
           cfg: dict[str, Any], size: int, source: str) -> dict[str, Any]:
    return {"id": hex_of(config_digest), "names": names, "config": config_digest, "manifest": manifest_digest,
            "layers": diff_ids, "created": cfg.get("created", ""), "size": size, "source": source}


def layer_sizes(store: ImageStore, tx: Transaction, diff_ids: list[str]) -> int:
    total = 0
    for d in diff_ids:
        p = tx.layers.get(d) or store.layer_dir(d)
        try:
            with open(os.path.join(p, "layer.json"), "rb") as f:
                total += int(json.loads(f.read()).get("size", 0))
        except (OSError, ValueError):
            pass
    return total


def _import_oci(src: _Source, tx: Transaction, names_override: list[str] | None) -> list[dict[str, Any]]:
    layout = _loads(src.read("oci-layout", "oci-layout"), f"{src.path}: oci-layout")
    if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != "1.0.0":
        raise ImageError(f"{src.path}: oci-layout: unsupported imageLayoutVersion")
    index = _loads(src.read("index.json", "index"), f"{src.path}: index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ImageError(f"{src.path}: index.json has no manifests list")

    def blob(desc: dict[str, Any], what: str, keep: bool = True) -> bytes:
        h = hex_of(desc.get("digest", ""), f"{what} digest")
        data = src.read(f"blobs/sha256/{h}", what)
        if "size" in desc and len(data) != desc["size"]:
            raise ImageError(f"{src.path}: {what} {desc['digest']}: size {len(data)}, descriptor says {desc['size']}")
        if sha256_bytes(data) != desc["digest"]:
            raise ImageError(f"{src.path}: {what}: digest mismatch: expected {desc['digest']}, "
                             f"got {sha256_bytes(data)}")
        if keep:
            tx.add_blob(data, desc["digest"], f"{src.path}: {what}")
        return data

    records = []
    for top in index["manifests"]:
        desc = top
        mt = desc.get("mediaType")
        if mt in INDEX_TYPES:
            index_doc = _loads(blob(desc, "image index", keep=False), "image index")
            desc = pick_platform(index_doc, f"{src.path}: image index")
            mt = desc.get("mediaType")
        if mt in SCHEMA1:
            raise ImageError(f"{src.path}: Docker schema 1 manifests are not supported")
        if mt not in MANIFEST_TYPES:
            raise ImageError(f"{src.path}: manifest media type {quoted(mt)}: not supported")
        mdata = blob(desc, "manifest")
        manifest = _loads(mdata, f"{src.path}: manifest {desc['digest']}")
        cdesc, ldescs = manifest_layers(manifest, f"{src.path}: manifest {desc['digest']}")
        cfg_bytes = blob(cdesc, "config")
        cfg = _loads(cfg_bytes, f"{src.path}: config")
        diff_ids = check_config(cfg, f"{src.path}: config {cdesc['digest']}")
        if len(diff_ids) != len(ldescs):
            raise ImageError(f"{src.path}: manifest has {len(ldescs)} layers, config {len(diff_ids)} diff-ids")
        from .layer import compression_of

        for i, (ld, diff_id) in enumerate(zip(ldescs, diff_ids)):
            if not tx.needs_layer(diff_id):
                continue
            f, size = src.open(f"blobs/sha256/{hex_of(ld['digest'])}")
            what = f"{src.path}: layer {i} ({ld['digest']})"
            if "size" in ld and size != ld["size"]:
                raise ImageError(f"{what}: size {size}, descriptor says {ld['size']}")
            with f:
                tx.unpack_layer(f, compression=compression_of(ld["mediaType"]), diff_id=diff_id,
                                blob_digest=ld["digest"], what=what)
        names = []
        ann = {**(top.get("annotations") or {}), **(desc.get("annotations") or {})}
        for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name"):
            n = ann.get(key, "")
            if n and ("/" in n or ":" in n):
                names.append(_local(n))
                break
        records.append(record(cdesc["digest"], desc["digest"], diff_ids, names, cfg, 0, "oci-archive"))
    return _apply_names(records, names_override, src.path)


def _import_docker(src: _Source, tx: Transaction, names_override: list[str] | None) -> list[dict[str, Any]]:
    items = _loads(src.read("manifest.json", "manifest"), f"{src.path}: manifest.json")
    if not isinstance(items, list) or not items:
        raise ImageError(f"{src.path}: manifest.json lists no images")
    records = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("Config", ""), str):
            raise ImageError(f"{src.path}: manifest.json: an entry is not an object with a Config name")
        cname = item.get("Config", "")
        cfg_bytes = src.read(cname, "config")
        digest = sha256_bytes(cfg_bytes)
        stem = posixpath.basename(cname).removesuffix(".json")
        if len(stem) == 64 and set(stem) <= set("0123456789abcdef") and digest != "sha256:" + stem:
            raise ImageError(f"{src.path}: config {cname}: digest mismatch: its name says sha256:{stem}, "
                             f"its content is {digest}")
        tx.add_blob(cfg_bytes)
        cfg = _loads(cfg_bytes, f"{src.path}: config {cname}")
        diff_ids = check_config(cfg, f"{src.path}: config {cname}")
        layers = item.get("Layers") or []
        if len(layers) != len(diff_ids):
            raise ImageError(f"{src.path}: {cname}: {len(layers)} layer files, {len(diff_ids)} diff-ids")
        for i, (lname, diff_id) in enumerate(zip(layers, diff_ids)):
            if not tx.needs_layer(diff_id):
                continue
            blob_digest = None
            parts = posixpath.normpath(lname).split("/")
            if len(parts) == 3 and parts[:2] == ["blobs", "sha256"]:
                blob_digest = "sha256:" + parts[2]
            f, _ = src.open(lname)
            with f:
                tx.unpack_layer(f, compression=None, diff_id=diff_id, blob_digest=blob_digest,
                                what=f"{src.path}: layer {i} ({lname})")
        names = [_local(t) for t in item.get("RepoTags") or []]
        records.append(record(digest, None, diff_ids, names, cfg, 0, "docker-archive"))
    return _apply_names(records, names_override, src.path)


def _local(name: str) -> str:
    from .reference import local_name

    return local_name(name)


def _apply_names(records: list[dict[str, Any]], names: list[str] | None, path: str) -> list[dict[str, Any]]:
    if names:
        if len(records) != 1:
            raise ImageError(f"{path}: --name needs an archive of one image; this one has {len(records)}")
        records[0]["names"] = names
    return records


def import_archive(store: ImageStore, path: str, name: str | None = None) -> list[dict[str, Any]]:
    """Import every image of the archive (or OCI layout directory) *path*;
    return their records."""
    names = [_local(name)] if name else None
    src = _Source(path)
    try:
        with store.transaction("import") as tx:
            if src.exists("index.json") and src.exists("oci-layout"):
                records = _import_oci(src, tx, names)
            elif src.exists("manifest.json"):
                records = _import_docker(src, tx, names)
            else:
                raise ImageError(f"{path}: neither an OCI image layout (oci-layout, index.json) "
                                 "nor a docker archive (manifest.json)")
            for rec in records:
                rec["size"] = layer_sizes(store, tx, rec["layers"])
            tx.commit(records)
            return records
    except XcError:
        raise
    except (tarfile.TarError, EOFError) as e:
        raise ImageError(f"{path}: truncated or corrupt archive ({_first_line(e)})") from None
    except (TypeError, AttributeError, KeyError) as e:
        # JSON of the right syntax with the wrong shapes (a null where an
        # object belongs, a list for a string): the archive is refused.
        raise ImageError(f"{path}: malformed image metadata ({type(e).__name__}: {_first_line(e)})") from None
    finally:
        src.close()
