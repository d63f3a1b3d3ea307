"""Applying one image layer (a tar changeset) to an empty directory, in the
form overlayfs stacks.

An OCI layer (image-spec ``layer.md``) is a tar archive of the files a
layer adds or changes, plus *whiteouts* for what it removes: an empty entry
``DIR/.wh.NAME`` removes ``DIR/NAME`` of the layers below, and
``DIR/.wh..wh..opq`` hides everything the layers below hold in ``DIR``
(an *opaque* directory).  A whiteout applies to lower layers only: a file of
the same layer is never hidden by it.

Here each layer is unpacked once into a directory of its own, and a
container's root filesystem is an overlay mount with those directories as
its lower layers.  overlayfs has its own whiteout forms, so the layer's are
converted while unpacking:

* ``.wh.NAME``      -> a character device 0/0 named ``NAME``;
* ``.wh..wh..opq``  -> the xattr ``trusted.overlay.opaque=y`` on the directory.

Other ``.wh..wh.*`` names (aufs bookkeeping) are dropped.  Everything else
is recreated with what the entry records: regular files, directories,
symlinks (stored as they are, absolute or pointing anywhere), hard links,
character and block devices, FIFOs; uid/gid (the numbers; the names are
secondary), the whole mode including setuid/setgid/sticky, mtimes and the
xattrs of PAX headers (``SCHILY.xattr.*``, ``LIBARCHIVE.xattr.*``).  Two
kinds of xattrs are refused because they would let a layer speak for
overlayfs itself: ``trusted.overlay.*`` and ``user.overlay.*``.

The archive is untrusted, so no entry may reach outside the directory:

* absolute names and names with ``..`` are refused;
* every parent directory is opened one component at a time with
  ``O_NOFOLLOW|O_DIRECTORY`` relative to its parent (``openat``), so an
  entry can never be written through a symlink that an earlier entry
  planted (``link -> /etc`` then ``link/passwd``): that is refused too;
* a hard link's target is resolved the same way, must already exist in this
  layer, and is linked without following it (``linkat`` without
  ``AT_SYMLINK_FOLLOW``);
* metadata is applied through file descriptors or with
  ``AT_SYMLINK_NOFOLLOW``, never by following a name.

Entries are applied in archive order; when an entry names a path that
exists, the two are merged if both are directories, and the old one is
removed first otherwise (``layer.md``, "Changeset over existing files").
A parent directory that the archive never lists is made ``0755 root:root``
(as Docker does).  Directory mtimes are set last, after their contents.

The caller unpacks into a fresh temporary directory and only renames it
into the store once the digests check out, so a refused archive leaves
nothing behind but that temporary directory, which the caller removes.

**Rootless forms** (:class:`LayerForm`; imagestore.py picks one per store
and records it).  An unprivileged user unpacks inside a user namespace
(rootless.run_in_userns) where it holds every capability over its own id
and, when it has a range in /etc/subuid, over 65536 more; what it cannot do
there decides the form:

* opaque directories carry ``user.overlay.opaque=y`` (``trusted.*`` needs
  CAP_SYS_ADMIN over the host; overlayfs reads ``user.overlay.*`` when
  mounted with ``userxattr``, as a user namespace mounts it, and so does
  fuse-overlayfs);
* whiteouts stay character devices 0/0: since Linux 5.8 anyone may make
  that one device (``vfs_mknod`` exempts it from CAP_MKNOD).  Where the
  kernel refuses it, whiteouts stay ``.wh.NAME`` files and opaque
  directories also keep their ``.wh..wh..opq`` file: the forms
  fuse-overlayfs reads (the kernel's overlayfs does not);
* owners: with a range, ``chown`` as the entry says (ids the maps do not
  cover are an error naming the entry); with only the user's own id, every
  file belongs to the user (container root) and an entry owned by anyone
  else records its owner in ``user.containers.override_stat``
  (``UID:GID:0MODE``, the convention of containers/storage that
  fuse-overlayfs reads with ``xattr_permissions=2``);
* device nodes cannot be made in a user namespace: they are skipped with
  a warning, as podman does (FIFOs are kept); ``trusted.*`` and other
  xattrs the namespace may not set are dropped with a warning.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO

from .errors import XcError, quoted

__all__ = [
    "LayerError",
    "LAYER_MEDIA_TYPES",
    "compression_of",
    "sniff_compression",
    "HashingReader",
    "decompressed",
    "apply_layer",
    "LayerStats",
    "LayerForm",
    "OVERRIDE_XATTR",
]


class LayerError(XcError):
    """A layer archive that is malformed, unsupported or unsafe."""


# media type -> compression ("" for a plain tar)
LAYER_MEDIA_TYPES: dict[str, str] = {
    "application/vnd.oci.image.layer.v1.tar": "",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": "",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "",
}

OVERRIDE_XATTR = "user.containers.override_stat"
_OPAQUE = ".wh..wh..opq"
_WH = ".wh."
_REFUSED_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


def compression_of(media_type: str) -> str:
    """The compression of a layer of *media_type*, or a LayerError naming it."""
    try:
        return LAYER_MEDIA_TYPES[media_type]
    except KeyError:
        raise LayerError(f"layer media type {quoted(media_type)}: not supported") from None


def sniff_compression(head: bytes) -> str:
    """The compression of a blob from its first bytes (docker-archive layers
    carry no media type)."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return ""


class HashingReader:
    """A reader that hashes (sha256) and counts every byte read through it."""

    def __init__(self, f: BinaryIO) -> None:
        import hashlib

        self._f = f
        self._h = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._h.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever is left."""
        while self.read(_CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self._h.hexdigest()


class _Decompressing:
    """A decompressing reader whose decoder errors become LayerErrors
    (gzip raises OSError and zlib.error, zstandard its own ZstdError)."""

    def __init__(self, reader: BinaryIO, compression: str) -> None:
        self._r = reader
        self._what = compression

    def read(self, n: int = -1) -> bytes:
        try:
            return self._r.read(n)
        except LayerError:
            raise
        except Exception as e:  # noqa: BLE001 -- any decoder failure is corrupt input
            raise LayerError(f"corrupt {self._what} data ({e})") from None


def decompressed(f: BinaryIO, compression: str) -> BinaryIO:
    """A reader of *f* decompressed."""
    if compression == "":
        return f
    if compression == "gzip":
        import gzip

        return _Decompressing(gzip.GzipFile(fileobj=f, mode="rb"), "gzip")  # type: ignore[arg-type,return-value]
    if compression == "zstd":
        try:
            import zstandard
        except ImportError:
            raise LayerError("zstd-compressed layers need the zstandard package "
                             "(pip install 'xcontainers[images]')") from None
        reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
        return _Decompressing(reader, "zstd")  # type: ignore[return-value]
    raise LayerError(f"unsupported layer compression {compression!r}")


@dataclass(frozen=True)
class LayerForm:
    """How a layer is laid out on disk (see the module's doc).  The default
    is root's: host ids, ``trusted.overlay.opaque``, devices made."""

    opaque_xattr: str = "trusted.overlay.opaque"
    whiteouts: str = "chardev"  # or "files": .wh.NAME and .wh..wh..opq kept as files
    owners: str = "ids"  # or "xattr": files are the caller's, owners in OVERRIDE_XATTR
    devices: bool = True  # False: device nodes skipped with a warning
    rootless: bool = False  # xattrs the user namespace may not set are dropped, not errors


@dataclass
class LayerStats:
    entries: int = 0
    bytes: int = 0
    whiteouts: int = 0
    opaque_dirs: int = 0
    devices_skipped: int = 0
    owners_recorded: int = 0
    warnings: list[str] = field(default_factory=list)


def _parts(name: str, what: str) -> list[str]:
    if name.startswith("/"):
        raise LayerError(f"{what} {name!r}: absolute path (layer entries are relative to the layer's root)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"{what} {name!r}: '..' would leave the layer")
    return parts


class _Tree:
    """Directory file descriptors of the layer being built, opened one
    component at a time without following symlinks."""

    def __init__(self, root: str) -> None:
        self.root_fd = os.open(root, _DIR_FLAGS)
        self._fds: dict[tuple[str, ...], int] = {}

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        os.close(self.root_fd)

    def trim(self) -> None:
        if len(self._fds) > 128:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def forget(self, parts: list[str]) -> None:
        key = tuple(parts)
        for k in [k for k in self._fds if k[:len(key)] == key]:
            os.close(self._fds.pop(k))

    def dir(self, parts: list[str], entry: str, create: bool = True) -> int:
        """An fd of the directory *parts*, making missing ones (0755 root:root)."""
        if not parts:
            return self.root_fd
        key = tuple(parts)
        fd = self._fds.get(key)
        if fd is not None:
            return fd
        parent = self.dir(parts[:-1], entry, create)
        name = parts[-1]
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise LayerError(f"entry {entry!r}: {'/'.join(parts)!r} does not exist in this layer") from None
            os.mkdir(name, 0o755, dir_fd=parent)
            os.chmod(name, 0o755, dir_fd=parent)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise LayerError(f"entry {entry!r}: {'/'.join(parts)!r} is a symlink or not a directory; "
                                 "refusing to write through it") from None
            raise
        self._fds[key] = fd
        return fd


def _xattrs(member: tarfile.TarInfo, stats: LayerStats, form: LayerForm) -> list[tuple[str, bytes]]:
    out = []
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            name, data = key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape")
        elif key.startswith("LIBARCHIVE.xattr."):
            import base64
            from urllib.parse import unquote

            name = unquote(key[len("LIBARCHIVE.xattr."):])
            data = base64.b64decode(value + "=" * (-len(value) % 4))
        else:
            continue
        if name.startswith(_REFUSED_XATTR_PREFIXES):
            raise LayerError(f"entry {member.name!r}: xattr {name!r} is overlayfs metadata; "
                             "a layer may not carry it")
        if name == OVERRIDE_XATTR and form.owners == "xattr":
            stats.warnings.append(f"{member.name}: xattr {name} dropped (this store records owners in it)")
            continue
        if name.startswith("user.fuseoverlayfs.") and form.rootless:
            # fuse-overlayfs's own metadata: the kernel's overlayfs would not read it, so the two
            # drivers would show the image differently
            stats.warnings.append(f"{member.name}: xattr {name} dropped (fuse-overlayfs metadata)")
            continue
        out.append((name, data))
    return out


def _set_xattrs(target: int | str, xattrs: list[tuple[str, bytes]], entry: str, stats: LayerStats,
                symlink: bool = False, form: LayerForm | None = None) -> None:
    for name, data in xattrs:
        if symlink and name.startswith("user."):
            continue  # the kernel allows no user.* xattrs on symlinks
        try:
            os.setxattr(target, name, data, follow_symlinks=not symlink)
        except OSError as e:
            if e.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
                stats.warnings.append(f"{entry}: xattr {name} not supported here, dropped")
                continue
            if form is not None and form.rootless and e.errno in (errno.EPERM, errno.EACCES):
                stats.warnings.append(f"{entry}: xattr {name} cannot be set in a user namespace, dropped")
                continue
            raise LayerError(f"entry {entry!r}: xattr {name!r}: {e.strerror}") from None


def _owner(m: tarfile.TarInfo, form: LayerForm, stats: LayerStats, *, fd: int | None = None,
           parent: int | None = None, name: str = "", symlink: bool = False) -> None:
    """Give the new entry (by *fd*, or *name* in *parent*) the entry's owner,
    in the store's form.  Before the mode is set: chown clears setuid."""
    if form.owners == "xattr":
        if (m.uid, m.gid) == (0, 0) or symlink:
            return  # the user is container root; a symlink's owner means nothing
        value = f"{m.uid}:{m.gid}:0{stat.S_IMODE(m.mode):o}".encode()
        target: int | str = fd if fd is not None else f"/proc/self/fd/{parent}/{name}"
        try:
            os.setxattr(target, OVERRIDE_XATTR, value)
        except OSError as e:
            if e.errno != errno.EPERM or fd is not None:
                raise LayerError(f"entry {m.name!r}: recording its owner: {e.strerror}") from None
            # user.* xattrs exist on files and directories only (here: a FIFO)
            stats.warnings.append(f"{m.name}: owner {m.uid}:{m.gid} not recorded (no user.* xattrs on a FIFO)")
            return
        stats.owners_recorded += 1
        return
    try:
        if fd is not None:
            os.fchown(fd, m.uid, m.gid)
        else:
            os.chown(name, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
    except OSError as e:
        if e.errno == errno.EINVAL and form.rootless:
            raise LayerError(f"entry {m.name!r}: owner {m.uid}:{m.gid} is not among the ids the store maps "
                             "(container ids 0-65536 with a range in /etc/subuid and /etc/subgid)") from None
        raise


def _mtime_ns(member: tarfile.TarInfo) -> int:
    return int(round(float(member.mtime) * 1_000_000_000))


def _remove_existing(tree: _Tree, parent: int, parts: list[str], is_dir: bool) -> None:
    """Make room for an entry: keep a directory for a directory, else remove what is there."""
    name = parts[-1]
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if is_dir:
            return
        import shutil

        tree.forget(parts)
        shutil.rmtree(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)


def _copy_data(src: BinaryIO, fd: int, size: int, entry: str) -> int:
    done = 0
    while True:
        buf = src.read(_CHUNK)
        if not buf:
            break
        view = memoryview(buf)
        while view:
            view = view[os.write(fd, view):]
        done += len(buf)
    if done != size:
        raise LayerError(f"entry {entry!r}: truncated ({done} of {size} bytes)")
    return done


def apply_layer(stream: BinaryIO, dest: str, form: LayerForm | None = None) -> LayerStats:
    """Unpack the tar *stream* (uncompressed) into the empty directory *dest*,
    in *form* (default: root's)."""
    form = form or LayerForm()
    stats = LayerStats()
    tree = _Tree(dest)
    dir_times: list[tuple[list[str], int]] = []
    try:
        try:
            tf = tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape")
        except tarfile.TarError as e:
            raise LayerError(f"not a tar archive ({e})") from None
        try:
            while True:
                member = tf.next()
                if member is None:
                    break
                tree.trim()
                stats.entries += 1
                try:
                    _apply_entry(tf, member, tree, stats, dir_times, form)
                except OSError as e:  # e.g. ENAMETOOLONG: the layer is refused, whatever the cause
                    name = member.name if len(member.name) <= 80 else member.name[:77] + "..."
                    raise LayerError(f"entry {name!r}: {e.strerror or e}") from None
        except (tarfile.TarError, EOFError) as e:
            raise LayerError(f"truncated or corrupt tar archive after {stats.entries} entries ({e})") from None
        # Directory mtimes last: creating their contents changed them.
        for parts, ns in reversed(dir_times):
            if parts:
                parent = tree.dir(parts[:-1], "/".join(parts), create=False)
                os.utime(parts[-1], ns=(ns, ns), dir_fd=parent, follow_symlinks=False)
            else:
                os.utime(tree.root_fd, ns=(ns, ns))
    finally:
        tree.close()
    return stats


def _apply_entry(tf: tarfile.TarFile, m: tarfile.TarInfo, tree: _Tree, stats: LayerStats,
                 dir_times: list[tuple[list[str], int]], form: LayerForm) -> None:
    entry = m.name
    parts = _parts(entry, "entry")
    if not parts:
        if not m.isdir():
            raise LayerError(f"entry {entry!r}: the layer's root must be a directory")
        fd = tree.root_fd
        _owner(m, form, stats, fd=fd)
        os.fchmod(fd, stat.S_IMODE(m.mode))
        _set_xattrs(fd, _xattrs(m, stats, form), entry, stats, form=form)
        dir_times.append((parts, _mtime_ns(m)))
        return
    base = parts[-1]
    if base.startswith(_WH):
        parent = tree.dir(parts[:-1], entry)
        if base == _OPAQUE:
            os.setxattr(parent, form.opaque_xattr, b"y")
            if form.whiteouts == "files":
                _whiteout_file(base, parent)
            stats.opaque_dirs += 1
        elif not base.startswith(_WH + _WH):
            hidden = base[len(_WH):]
            if hidden in ("", ".", ".."):
                raise LayerError(f"entry {entry!r}: a whiteout of nothing")
            try:
                os.stat(hidden, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                if form.whiteouts == "files":
                    _whiteout_file(base, parent)
                else:
                    # An overlayfs whiteout: a character device 0/0.
                    os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)
                stats.whiteouts += 1
            # else: the same layer holds the name; a whiteout hides lower layers only.
        return
    parent = tree.dir(parts[:-1], entry)
    if form.whiteouts == "files":
        try:  # this layer's own entry makes its earlier whiteout of the name moot
            os.unlink(_WH + base, dir_fd=parent)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise LayerError(f"entry {entry!r}: {_WH + base!r} is a directory") from None
    xattrs = _xattrs(m, stats, form)
    mode = stat.S_IMODE(m.mode)
    ns = _mtime_ns(m)
    if m.isdir():
        _remove_existing(tree, parent, parts, True)
        try:
            os.mkdir(base, 0o700, dir_fd=parent)
        except FileExistsError:
            pass
        fd = os.open(base, _DIR_FLAGS, dir_fd=parent)
        try:
            _owner(m, form, stats, fd=fd)
            os.fchmod(fd, mode)
            _set_xattrs(fd, xattrs, entry, stats, form=form)
        finally:
            os.close(fd)
        dir_times.append((parts, ns))
        return
    if (m.ischr() or m.isblk()) and not form.devices and not (m.ischr() and m.devmajor == m.devminor == 0):
        stats.devices_skipped += 1
        stats.warnings.append(f"{entry}: device node {m.devmajor}:{m.devminor} skipped "
                              "(a user namespace cannot make devices)")
        return
    _remove_existing(tree, parent, parts, False)
    if m.isreg():
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)
        try:
            src = tf.extractfile(m)
            assert src is not None
            stats.bytes += _copy_data(src, fd, m.size, entry)  # type: ignore[arg-type]
            _owner(m, form, stats, fd=fd)
            os.fchmod(fd, mode)  # after chown, which clears setuid/setgid
            _set_xattrs(fd, xattrs, entry, stats, form=form)
            os.utime(fd, ns=(ns, ns))
        finally:
            os.close(fd)
    elif m.issym():
        os.symlink(m.linkname, base, dir_fd=parent)
        _owner(m, form, stats, parent=parent, name=base, symlink=True)
        if xattrs:
            _set_xattrs(f"/proc/self/fd/{parent}/{base}", xattrs, entry, stats, symlink=True, form=form)
        os.utime(base, ns=(ns, ns), dir_fd=parent, follow_symlinks=False)
    elif m.islnk():
        target = _parts(m.linkname, f"hard link {entry!r} ->")
        if not target:
            raise LayerError(f"hard link {entry!r}: its target is the layer's root")
        tparent = tree.dir(target[:-1], entry, create=False)
        try:
            st = os.stat(target[-1], dir_fd=tparent, follow_symlinks=False)
        except FileNotFoundError:
            raise LayerError(f"hard link {entry!r} -> {m.linkname!r}: the target is not in this layer") from None
        if stat.S_ISDIR(st.st_mode):
            raise LayerError(f"hard link {entry!r} -> {m.linkname!r}: the target is a directory")
        # A hard link entry may come before its parent's cache was refreshed.
        parent = tree.dir(parts[:-1], entry)
        os.link(target[-1], base, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)
    elif m.ischr() or m.isblk() or m.isfifo():
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor) if not m.isfifo() else 0,
                 dir_fd=parent)
        _owner(m, form, stats, parent=parent, name=base)
        os.chmod(base, mode, dir_fd=parent)
        if xattrs:
            _set_xattrs(f"/proc/self/fd/{parent}/{base}", xattrs, entry, stats, form=form)
        os.utime(base, ns=(ns, ns), dir_fd=parent, follow_symlinks=False)
    else:
        raise LayerError(f"entry {entry!r}: unsupported tar entry type {m.type!r}")


def _whiteout_file(name: str, parent: int) -> None:
    """A whiteout kept as the tar names it (an empty file, fuse-overlayfs's form)."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o000, dir_fd=parent)
    os.close(fd)
