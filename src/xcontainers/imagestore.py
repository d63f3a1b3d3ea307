"""The local image store: content-addressed, each layer unpacked once.

Layout (``$XC_STORAGE``, default ``/var/lib/xcontainers/storage``)::

    images.json             the index: image id -> record (names, config
                            digest, manifest digest, layer diff-ids, size)
    blobs/sha256/HEX        manifests and image configs, by their digest
    layers/HEX/diff/        one layer, unpacked in overlayfs form, by the
                            sha256 of its uncompressed tar (its diff-id)
    layers/HEX/layer.json   where it came from and what it holds
    tmp/KIND-PID-START-*/   work areas of imports and pulls in progress
    tmp/partial/HEX.part    blobs being downloaded (a pull resumes them)
    lock                    flock(2): shared while a container's layers
                            are looked up, exclusive while the store changes
    storage.json            a rootless user's store only: the form its
                            layers are unpacked in (below)

An image's id is the digest of its config (as Docker's).  A name
(``repo:tag``) belongs to one image at a time; an image that loses its last
name stays, listed as ``<none>``, until removed.

Every import works in a directory of its own under ``tmp/``: layers are
unpacked and checked there, and only when every digest of the image has
checked out are they renamed into ``layers/`` and the index rewritten (a
rename of a new file over the old), all under the exclusive lock.  An import
that fails, or a process killed half-way, leaves only its ``tmp/`` directory,
which the next store operation removes once its process is gone.

**Rootless stores.**  An unprivileged user's store (by default
``~/.local/share/xcontainers/storage``) is changed only from inside a user
namespace (:func:`as_owner`, rootless.run_in_userns) whose id maps are
those of the user's containers: container root is the user, and with a
range in /etc/subuid and /etc/subgid, ids 1-65536 are the range's.  The
first change of a new store decides its form and records it in
``storage.json`` (layer.py's :class:`~layer.LayerForm`): ``owners`` "ids"
(files belong to the mapped ids, as the image says) when the user has a
range, else "xattr" (files are the user's, other owners recorded in
``user.containers.override_stat``); ``whiteouts`` "chardev" when the
kernel lets the user make the 0/0 device (Linux 5.8+), else "files";
opaque directories as ``user.overlay.opaque``; devices skipped.  The maps
of an "ids" store are recorded with it: if /etc/subuid changes, the store's
files belong to ids the user no longer has, which is an error that says
so.  Root refuses a rootless store and a user refuses root's.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from . import _json as json
from .errors import XcError

__all__ = ["STORAGE", "ImageError", "ImageStore", "Transaction", "hex_of", "sha256_bytes", "as_owner",
           "FORM_FILE"]

STORAGE = os.environ.get("XC_STORAGE", "/var/lib/xcontainers/storage")
FORM_FILE = "storage.json"
_HEX = frozenset("0123456789abcdef")


class ImageError(XcError):
    """An image that cannot be imported, found or removed."""


def hex_of(digest: str, what: str = "digest") -> str:
    algo, _, h = digest.partition(":")
    if algo != "sha256" or len(h) != 64 or not _HEX.issuperset(h):
        raise ImageError(f"{what} {digest!r}: only sha256:<64 hex digits> digests are supported")
    return h


def sha256_bytes(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise ImageError(f"{what} as an unprivileged user goes through the rootless store "
                         "(imagerun.rootless_overlay)")


def _rootless_context() -> bool:
    """Whether store work here is a rootless user's: not root, or root only
    inside the user namespace rootless.run_in_userns made."""
    if os.geteuid() != 0:
        return True
    from .rootless import in_own_userns

    return in_own_userns()


def _ids(maps: list[dict[str, int]]) -> str:
    return ", ".join(f"{m['hostID']}-{m['hostID'] + m['size'] - 1}" for m in maps)


def as_owner(store: "ImageStore", fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """``fn(*args, **kw)`` with the rights to change *store*: as root, right
    here; as an unprivileged user, in a user namespace with the store's id
    maps (rootless.run_in_userns), its form decided first if it is new."""
    from . import rootless

    if os.geteuid() == 0 or rootless.in_own_userns():
        return fn(*args, **kw)
    form = store.rootless_form()
    return rootless.run_in_userns(form["uid_maps"], form["gid_maps"], fn, *args, **kw)


def _process_alive(pid: int, start: int) -> bool:
    from .state import process_start_time

    return process_start_time(pid) == start


def _self_tag() -> str:
    from .state import process_start_time

    return f"{os.getpid()}-{process_start_time(os.getpid()) or 0}"


class ImageStore:
    def __init__(self, root: str | None = None) -> None:
        self.root = os.path.abspath(root or STORAGE)
        self.blobs = os.path.join(self.root, "blobs", "sha256")
        self.layers = os.path.join(self.root, "layers")
        self.tmp = os.path.join(self.root, "tmp")
        self.index_path = os.path.join(self.root, "images.json")

    # -- the store's form (rootless stores) ----------------------------------

    def form_record(self) -> dict[str, Any] | None:
        """``storage.json``: the form of a rootless store, None for root's."""
        try:
            with open(os.path.join(self.root, FORM_FILE), "rb") as f:
                rec = json.loads(f.read())
        except FileNotFoundError:
            return None
        except ValueError:
            raise ImageError(f"{os.path.join(self.root, FORM_FILE)} is corrupt") from None
        if not isinstance(rec, dict):
            raise ImageError(f"{os.path.join(self.root, FORM_FILE)} is corrupt")
        return rec

    def _is_empty(self) -> bool:
        return not self.load_index() and not _listdir(self.layers)

    def rootless_form(self) -> dict[str, Any]:
        """The form of this rootless user's store, decided and recorded now
        if the store is new; an error if root made it, or if the ids its
        layers belong to are no longer the user's."""
        from . import rootless

        rec = self.form_record()
        if rec is None:
            if not self._is_empty():
                raise ImageError(f"the image store {self.root} holds layers unpacked by root; a rootless xc "
                                 "needs a store of its own (unset XC_STORAGE, or name another)")
            rec = self._new_form()
        if not rec.get("rootless"):
            raise ImageError(f"{os.path.join(self.root, FORM_FILE)} does not describe a rootless store")
        if rec.get("uid") != os.geteuid():
            raise ImageError(f"the image store {self.root} was made by uid {rec.get('uid')}; "
                             "each user needs a store of its own")
        if rec.get("owners") == "ids":
            uid_maps, gid_maps = rootless.container_id_maps()
            if (uid_maps, gid_maps) != (rec.get("uid_maps"), rec.get("gid_maps")):
                raise ImageError(
                    f"the image store {self.root} holds files of host uids {_ids(rec['uid_maps'])} and gids "
                    f"{_ids(rec['gid_maps'])}, but {rootless.SUBUID} and {rootless.SUBGID} now give "
                    f"{rootless.user_name()} uids {_ids(uid_maps)} and gids {_ids(gid_maps)}")
        return rec

    def _new_form(self) -> dict[str, Any]:
        from . import rootless

        self.ensure()
        uid_maps, gid_maps = rootless.container_id_maps()
        probe = os.path.join(self.tmp, f"whiteout-probe-{os.getpid()}")
        try:
            os.mknod(probe, 0o020000, os.makedev(0, 0))
            whiteouts = "chardev"
        except PermissionError:
            whiteouts = "files"  # before Linux 5.8
        finally:
            try:
                os.unlink(probe)
            except FileNotFoundError:
                pass
        owners = "ids" if len(uid_maps) > 1 else "xattr"
        if owners == "xattr":
            uid_maps, gid_maps = uid_maps[:1], gid_maps[:1]
        rec = {"version": 1, "rootless": True, "uid": os.geteuid(), "owners": owners, "whiteouts": whiteouts,
               "opaque": "user.overlay.opaque", "devices": False, "uid_maps": uid_maps, "gid_maps": gid_maps}
        import json as stdjson

        _write_atomic(os.path.join(self.root, FORM_FILE), stdjson.dumps(rec, indent=1).encode())
        return rec

    def check_root_store(self) -> None:
        """Refuse (as root) a store a user made for rootless containers."""
        rec = self.form_record()
        if rec is not None and rec.get("rootless"):
            raise ImageError(f"the image store {self.root} was made by uid {rec.get('uid')} for rootless "
                             "containers; root's xc needs a store of its own (XC_STORAGE)")

    def layer_form(self) -> Any:
        """The layer.LayerForm layers are unpacked in here (root's unless the
        store is a rootless one); a store of the other kind is an error."""
        from .layer import LayerForm

        if not _rootless_context():
            self.check_root_store()
            return LayerForm()
        rec = self.form_record()
        if rec is None or not rec.get("rootless"):
            raise ImageError(f"the image store {self.root} is not a rootless store")
        return LayerForm(opaque_xattr=rec.get("opaque", "user.overlay.opaque"),
                         whiteouts=rec.get("whiteouts", "chardev"), owners=rec.get("owners", "ids"),
                         devices=False, rootless=True)

    # -- locking and the index ---------------------------------------------

    def ensure(self) -> None:
        for d in (self.root, self.blobs, self.layers, self.tmp):
            os.makedirs(d, mode=0o700, exist_ok=True)

    @contextmanager
    def lock(self, exclusive: bool = True) -> Iterator[None]:
        self.ensure()
        fd = os.open(os.path.join(self.root, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def load_index(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self.index_path, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            return {}
        except ValueError:
            raise ImageError(f"the image index {self.index_path} is corrupt") from None
        return data.get("images", {})  # type: ignore[no-any-return]

    def _save_index(self, images: dict[str, dict[str, Any]]) -> None:
        import json as stdjson

        _write_atomic(self.index_path, stdjson.dumps({"version": 1, "images": images}, indent=1).encode())

    # -- lookups -------------------------------------------------------------

    def images(self) -> list[dict[str, Any]]:
        return sorted(self.load_index().values(), key=lambda r: r.get("added", ""), reverse=True)

    def lookup(self, ref: str, images: dict[str, dict[str, Any]] | None = None
               ) -> tuple[dict[str, Any] | None, str | None]:
        """The record of the image *ref* names, and the name it matched
        (None when *ref* matched an id).  *ref* is a name, a name without
        its ``localhost/`` or ``docker.io/library/`` prefix, or an id prefix
        of at least 4 hex digits."""
        if images is None:
            images = self.load_index()
        if not ref:
            return None, None
        candidates = [ref]
        try:
            from .reference import local_name, parse

            name = local_name(ref)
            candidates = [name]
            if not parse(ref).registry:
                hub = "docker.io/" + name if "/" in parse(ref).repository else "docker.io/library/" + name
                candidates += ["localhost/" + name, hub]
        except XcError:
            pass
        for c in candidates:
            for rec in images.values():
                if c in rec.get("names", ()):
                    return rec, c
        h = ref[7:] if ref.startswith("sha256:") else ref
        if len(h) >= 4 and _HEX.issuperset(h):
            found = [r for i, r in images.items() if i.startswith(h)]
            if len(found) == 1:
                return found[0], None
            if len(found) > 1:
                raise ImageError(f"image id prefix {ref!r} is ambiguous ({len(found)} images)")
        return None, None

    def resolve(self, ref: str, images: dict[str, dict[str, Any]] | None = None) -> dict[str, Any] | None:
        return self.lookup(ref, images)[0]

    def get(self, ref: str) -> dict[str, Any]:
        rec = self.resolve(ref)
        if rec is None:
            raise ImageError(f"image {ref!r} not found (xc image ls; xc image import FILE; xc pull REF)")
        return rec

    def blob_path(self, digest: str) -> str:
        return os.path.join(self.blobs, hex_of(digest))

    def read_blob(self, digest: str) -> bytes:
        try:
            with open(self.blob_path(digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is missing from the store {self.root}") from None

    def config(self, rec: dict[str, Any]) -> dict[str, Any]:
        return json.loads(self.read_blob(rec["config"]))  # type: ignore[no-any-return]

    def layer_dir(self, diff_id: str) -> str:
        """The directory a layer is unpacked in (its root is ``diff/`` inside)."""
        return os.path.join(self.layers, hex_of(diff_id))

    def has_layer(self, diff_id: str) -> bool:
        return os.path.isdir(os.path.join(self.layer_dir(diff_id), "diff"))

    # -- changes -------------------------------------------------------------

    @contextmanager
    def transaction(self, kind: str) -> Iterator["Transaction"]:
        """A work area for one import; removed whatever happens.  (A
        rootless user's import runs in the store's user namespace:
        :func:`as_owner`.)"""
        if os.geteuid() != 0:
            raise ImageError("importing or pulling images as an unprivileged user: call it through "
                             "imagestore.as_owner")
        form = self.layer_form()
        self.ensure()
        self.gc_tmp()
        path = os.path.join(self.tmp, f"{kind}-{_self_tag()}-{os.urandom(4).hex()}")
        os.mkdir(path, 0o700)
        tx = Transaction(self, path, form)
        try:
            yield tx
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def untag(self, name: str, images: dict[str, dict[str, Any]]) -> None:
        for rec in images.values():
            if name in rec.get("names", ()):
                rec["names"].remove(name)

    def remove(self, ref: str, *, in_use: Callable[[str], list[str]], force: bool = False) -> list[str]:
        """Remove the name *ref*, or the image *ref* (an id) with all its
        names; an image left without names is deleted with the layers and
        blobs no other image uses.  Refused while a container uses it.
        Returns what was done, one line each."""
        done: list[str] = []
        with self.lock():
            images = self.load_index()
            rec, name = self.lookup(ref, images)
            if rec is None:
                raise ImageError(f"image {ref!r} not found")
            names = rec.get("names", [])
            if name is not None and len(names) > 1 and not force:
                names.remove(name)
                self._save_index(images)
                return [f"untagged {name}"]
            users = in_use(rec["id"])
            if users:
                raise ImageError(f"image {ref!r} is used by container(s) {', '.join(users)} (xc rm them first)")
            for n in names:
                done.append(f"untagged {n}")
            del images[rec["id"]]
            self._save_index(images)
            done.append(f"deleted {rec['id']}")
            done += self._collect(images)
        return done

    def _collect(self, images: dict[str, dict[str, Any]]) -> list[str]:
        """Delete layers and blobs no image refers to (under the lock)."""
        done = []
        layers = {hex_of(d) for r in images.values() for d in r.get("layers", ())}
        blobs = {hex_of(r[k]) for r in images.values() for k in ("config", "manifest") if r.get(k)}
        for h in _listdir(self.layers):
            if h not in layers:
                _rmtree_layer(os.path.join(self.layers, h))
                done.append(f"deleted layer sha256:{h}")
        for h in _listdir(self.blobs):
            if h not in blobs:
                try:
                    os.unlink(os.path.join(self.blobs, h))
                except FileNotFoundError:
                    pass
        templates = os.path.join(self.root, "templates")  # runtemplate.py: HEX.json, HEX.init/ per image
        for n in _listdir(templates):
            if n.split(".")[0] not in images:
                p = os.path.join(templates, n)
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
                except IsADirectoryError:
                    shutil.rmtree(p, ignore_errors=True)
        return done

    def prune(self, *, in_use: Callable[[str], list[str]]) -> list[str]:
        """Delete images without names that no container uses, unreferenced
        layers and blobs, partial downloads and the work areas of dead
        processes."""
        done = []
        with self.lock():
            images = self.load_index()
            for i, rec in list(images.items()):
                if not rec.get("names") and not in_use(i):
                    del images[i]
                    done.append(f"deleted {i}")
            self._save_index(images)
            done += self._collect(images)
            part = os.path.join(self.tmp, "partial")
            for n in _listdir(part):
                os.unlink(os.path.join(part, n))
                done.append(f"deleted partial download {n}")
        done += self.gc_tmp()
        return done

    def gc_tmp(self) -> list[str]:
        """Remove the work areas of processes that are gone."""
        done = []
        for n in _listdir(self.tmp):
            bits = n.split("-")
            if len(bits) < 4 or not bits[1].isdigit() or not bits[2].isdigit():
                continue
            if not _process_alive(int(bits[1]), int(bits[2])):
                shutil.rmtree(os.path.join(self.tmp, n), ignore_errors=True)
                done.append(f"deleted work area {n}")
        return done


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _rmtree_layer(path: str) -> None:
    # Rename first so that a half-removed layer is never mistaken for one.
    doomed = f"{path}.removing-{os.getpid()}"
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


class Transaction:
    """One import's work area: layers are unpacked and verified here, then
    committed to the store together with the image's blobs and names."""

    def __init__(self, store: ImageStore, path: str, form: Any = None) -> None:
        self.store = store
        self.path = path
        self.form = form
        self.layers: dict[str, str] = {}  # diff-id -> its unpacked directory here
        self.blobs: dict[str, bytes] = {}
        self._n = 0

    def new_dir(self, what: str) -> str:
        self._n += 1
        d = os.path.join(self.path, f"{what}-{self._n}")
        os.mkdir(d, 0o700)
        return d

    def needs_layer(self, diff_id: str) -> bool:
        return diff_id not in self.layers and not self.store.has_layer(diff_id)

    def add_blob(self, data: bytes, expect: str | None = None, what: str = "blob") -> str:
        digest = sha256_bytes(data)
        if expect is not None and digest != expect:
            raise ImageError(f"{what}: digest mismatch: expected {expect}, got {digest}")
        self.blobs[digest] = data
        return digest

    def unpack_layer(self, blob: Any, *, compression: str | None, diff_id: str,
                     blob_digest: str | None = None, what: str = "layer") -> int:
        """Unpack the layer *blob* (a reader) here, checking its blob digest
        (when known) and its diff-id; return the bytes of file data."""
        from .layer import HashingReader, LayerError, apply_layer, decompressed, sniff_compression

        hex_of(diff_id, f"{what}: diff-id")
        layer = self.new_dir("layer")
        diff = os.path.join(layer, "diff")
        os.mkdir(diff, 0o755)
        raw = HashingReader(blob)
        src: Any = raw
        if compression is None:
            src = _Peek(raw, 4)
            compression = sniff_compression(src.head)
        try:
            plain = HashingReader(decompressed(src, compression))
            stats = apply_layer(plain, diff, self.form)  # type: ignore[arg-type]
            plain.drain()
            raw.drain()
        except LayerError as e:
            raise LayerError(f"{what}: {e}") from None
        if blob_digest is not None and raw.digest() != blob_digest:
            raise ImageError(f"{what}: blob digest mismatch: expected {blob_digest}, got {raw.digest()}")
        if plain.digest() != diff_id:
            raise ImageError(f"{what}: uncompressed digest {plain.digest()} does not match "
                             f"the config's rootfs.diff_ids entry {diff_id}")
        import json as stdjson

        info = {"diff_id": diff_id, "blob": blob_digest or raw.digest(), "compression": compression,
                "size": stats.bytes, "entries": stats.entries, "whiteouts": stats.whiteouts,
                "opaque_dirs": stats.opaque_dirs}
        if stats.devices_skipped or stats.owners_recorded:
            info.update(devices_skipped=stats.devices_skipped, owners_recorded=stats.owners_recorded)
        with open(os.path.join(layer, "layer.json"), "w") as f:
            stdjson.dump(info, f)
        self.layers[diff_id] = layer
        if stats.warnings:
            from . import log

            for w in stats.warnings[:5]:
                log.warning(f"{what}: {w}")
            if len(stats.warnings) > 5:
                log.warning(f"{what}: ... and {len(stats.warnings) - 5} more like these")
        return stats.bytes

    def commit(self, records: list[dict[str, Any]]) -> None:
        """Move the verified layers and blobs into the store and index
        *records* (each: id, names, config, manifest, layers, ...)."""
        st = self.store
        with st.lock():
            for diff_id, path in self.layers.items():
                dest = st.layer_dir(diff_id)
                try:
                    os.rename(path, dest)
                except OSError:
                    if not st.has_layer(diff_id):
                        raise
                    # Another import committed the same layer first.
            for rec in records:
                for d in rec["layers"]:
                    if not st.has_layer(d):
                        raise ImageError(f"layer {d} vanished from the store during the import; retry")
            for digest, data in self.blobs.items():
                p = st.blob_path(digest)
                if not os.path.exists(p):
                    _write_atomic(p, data)
            images = st.load_index()
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            for rec in records:
                for n in rec["names"]:
                    st.untag(n, images)
                old = images.get(rec["id"])
                if old is not None:
                    rec["names"] = old.get("names", []) + [n for n in rec["names"] if n not in old.get("names", [])]
                    rec["added"] = old.get("added", now)
                else:
                    rec["added"] = now
                images[rec["id"]] = rec
            st._save_index(images)


class _Peek:
    """A reader that has read its first *n* bytes ahead (``head``)."""

    def __init__(self, f: Any, n: int) -> None:
        self._f = f
        self.head = f.read(n)
        self._buf = self.head

    def read(self, n: int = -1) -> bytes:
        if self._buf:
            if n < 0:
                data, self._buf = self._buf + self._f.read(), b""
                return data  # type: ignore[no-any-return]
            data, self._buf = self._buf[:n], self._buf[n:]
            return data  # type: ignore[no-any-return]
        return self._f.read(n)  # type: ignore[no-any-return]
