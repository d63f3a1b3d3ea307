"""Building the container's filesystem view inside its mount namespace.

Runs in the container's init process, after it has its own mount namespace
and before it drops privileges.  The steps follow the OCI runtime spec and
runc's order:

1. Make ``/`` a slave (or what ``linux.rootfsPropagation`` says), so nothing
   mounted from here on propagates back to the host.  If the annotation
   ``org.xcontainers.rootfs.overlay`` gives an overlay's mount data, mount
   that overlay at ``root.path`` now, in the container's own mount (and,
   rootless, user) namespace: see :func:`mount_overlay`.
2. Bind the rootfs onto itself: pivot_root needs a mount point.
3. Mount each ``mounts[]`` entry at its destination resolved *inside* the
   rootfs (symlinks cannot lead out of it, see :mod:`securejoin`); bind
   mounts get their flags by a second remount, as the kernel ignores them
   on the first.
4. Create the default devices and the /dev symlinks, unless /dev is the
   host's own.
5. (createContainer hooks run here, in the container's namespaces.)
6. pivot_root into the rootfs and lazily detach the old root.
7. Apply sysctls, mask paths, make paths and the root read-only.
"""

from __future__ import annotations

import errno
import os
import stat
from . import kernel
from .errors import SetupError
from .kernel import MS

CLONE_NEWNS = kernel.CLONE.NEWNS
from .securejoin import secure_join
from .spec import Mount, Spec

__all__ = ["prepare", "pivot", "finish", "parse_options", "mount_overlay", "DEFAULT_DEVICES", "OVERLAY"]

# The annotation whose value is the mount data of an overlay to mount at
# root.path inside the container ("lowerdir=A:B,upperdir=U,workdir=W");
# OVERLAY + ".dir": where relative paths in it start (default: the bundle);
# OVERLAY + ".driver": "auto" (the kernel's overlayfs, else fuse-overlayfs),
# "kernel" or "fuse".
OVERLAY = "org.xcontainers.rootfs.overlay"

# option -> (flags to clear, flags to set)
_FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    "defaults": (0, 0),
    "ro": (0, MS.RDONLY),
    "rw": (MS.RDONLY, 0),
    "suid": (MS.NOSUID, 0),
    "nosuid": (0, MS.NOSUID),
    "dev": (MS.NODEV, 0),
    "nodev": (0, MS.NODEV),
    "exec": (MS.NOEXEC, 0),
    "noexec": (0, MS.NOEXEC),
    "sync": (0, MS.SYNCHRONOUS),
    "async": (MS.SYNCHRONOUS, 0),
    "dirsync": (0, MS.DIRSYNC),
    "remount": (0, MS.REMOUNT),
    "mand": (0, MS.MANDLOCK),
    "nomand": (MS.MANDLOCK, 0),
    "atime": (MS.NOATIME, 0),
    "noatime": (0, MS.NOATIME),
    "diratime": (MS.NODIRATIME, 0),
    "nodiratime": (0, MS.NODIRATIME),
    "relatime": (0, MS.RELATIME),
    "norelatime": (MS.RELATIME, 0),
    "strictatime": (0, MS.STRICTATIME),
    "nostrictatime": (MS.STRICTATIME, 0),
    "lazytime": (0, MS.LAZYTIME),
    "nolazytime": (MS.LAZYTIME, 0),
    "nosymfollow": (0, MS.NOSYMFOLLOW),
    "symfollow": (MS.NOSYMFOLLOW, 0),
    "bind": (0, MS.BIND),
    "rbind": (0, MS.BIND | MS.REC),
}
_PROPAGATION: dict[str, int] = {
    "private": MS.PRIVATE,
    "rprivate": MS.PRIVATE | MS.REC,
    "shared": MS.SHARED,
    "rshared": MS.SHARED | MS.REC,
    "slave": MS.SLAVE,
    "rslave": MS.SLAVE | MS.REC,
    "unbindable": MS.UNBINDABLE,
    "runbindable": MS.UNBINDABLE | MS.REC,
}
# Options that only steer the runtime and never reach the kernel.
_RUNTIME_OPTIONS = {"tmpcopyup", "notmpcopyup", "z", "Z", "U", "copy-symlink", "idmap", "ridmap"}

# path, type, major, minor, mode
DEFAULT_DEVICES: tuple[tuple[str, str, int, int, int], ...] = (
    ("/dev/null", "c", 1, 3, 0o666),
    ("/dev/zero", "c", 1, 5, 0o666),
    ("/dev/full", "c", 1, 7, 0o666),
    ("/dev/random", "c", 1, 8, 0o666),
    ("/dev/urandom", "c", 1, 9, 0o666),
    ("/dev/tty", "c", 5, 0, 0o666),
)
_DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)


def parse_options(options: list[str]) -> tuple[int, int, list[str], bool]:
    """(mount flags, propagation flags, data options, copy-up) of an option list."""
    flags = 0
    prop = 0
    data: list[str] = []
    copyup = False
    for o in options:
        if o in _FLAG_OPTIONS:
            clear, set_ = _FLAG_OPTIONS[o]
            flags = (flags & ~clear) | set_
        elif o in _PROPAGATION:
            prop |= _PROPAGATION[o]
        elif o in _RUNTIME_OPTIONS:
            copyup = copyup or o == "tmpcopyup"
        else:
            data.append(o)
    return flags, prop, data, copyup


def _fail(what: str, e: OSError) -> SetupError:
    return SetupError(f"{what}: {e.strerror}")


def _mkdir_p(path: str, mode: int = 0o755) -> None:
    try:
        os.makedirs(path, mode, exist_ok=True)
    except FileExistsError:
        pass


def _ensure_target(dest: str, source_is_dir: bool) -> None:
    """Create the mount point: a directory, or an empty file for a file bind."""
    if os.path.lexists(dest):
        return
    if source_is_dir:
        _mkdir_p(dest)
    else:
        _mkdir_p(os.path.dirname(dest))
        os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o755))


def _statvfs_flags(path: str) -> int:
    """Mount flags of the mount at *path* that a bind remount must keep."""
    f = os.statvfs(path).f_flag
    out = 0
    for st_bit, ms in ((1, MS.RDONLY), (2, MS.NOSUID), (4, MS.NODEV), (8, MS.NOEXEC),
                       (1024, MS.NOATIME), (2048, MS.NODIRATIME), (4096, MS.RELATIME)):
        if f & st_bit:
            out |= ms
    return out


def _mount_one(spec: Spec, m: Mount, rootfs: str, cgroup_mounts: list[tuple[str, str, str]]) -> None:
    flags, prop, data, copyup = parse_options(m.options)
    typ = m.type or ""
    is_bind = bool(flags & MS.BIND) or typ == "bind"
    dest = secure_join(rootfs, m.destination)
    where = f"mount {m.destination}"
    try:
        if is_bind:
            src = m.source or ""
            if not src.startswith("/"):
                src = os.path.join(spec.bundle, src)
            try:
                st = os.stat(src)
            except OSError as e:
                raise _fail(f"{where}: bind source {src}", e) from None
            _ensure_target(dest, stat.S_ISDIR(st.st_mode))
            kernel.mount(src, dest, None, MS.BIND | (flags & MS.REC), None)
            extra = flags & ~(MS.BIND | MS.REC | MS.REMOUNT)
            if extra:
                keep = _statvfs_flags(dest) & (MS.NOSUID | MS.NODEV | MS.NOEXEC)
                kernel.mount(None, dest, None, MS.BIND | MS.REMOUNT | extra | keep, None)
        elif typ == "cgroup" or typ == "cgroup2":
            _mount_cgroup(spec, dest, flags, cgroup_mounts)
        else:
            _mkdir_p(dest)
            if copyup and typ == "tmpfs":
                _tmpfs_copyup(m, dest, flags, ",".join(data))
            else:
                try:
                    kernel.mount(m.source or typ, dest, typ, flags, ",".join(data) or None)
                except PermissionError:
                    if not (typ == "sysfs" and flags & MS.RDONLY and spec.has_namespace("user")):
                        raise
                    _bind_host_sys(dest, flags)
        if prop:
            kernel.mount(None, dest, None, prop, None)
    except OSError as e:
        raise _fail(where, e) from None


def _bind_host_sys(dest: str, flags: int) -> None:
    """A read-only sysfs a user namespace may not mount (it needs a network
    namespace of its own): bind the host's /sys read-only instead, as crun
    and later runc do.  (Debian's runc 1.1 refuses such a config.)"""
    kernel.mount("/sys", dest, None, MS.BIND | MS.REC, None)
    keep = _statvfs_flags(dest)
    kernel.mount(None, dest, None, MS.BIND | MS.REMOUNT | MS.RDONLY | keep | (flags & ~MS.RDONLY), None)


def _tmpfs_copyup(m: Mount, dest: str, flags: int, data: str) -> None:
    """Mount a tmpfs over *dest* that starts with dest's current contents."""
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp(prefix=".xc-copyup-", dir="/tmp")
    try:
        kernel.mount("tmpfs", tmp, "tmpfs", flags & ~MS.RDONLY, data or None)
        try:
            shutil.copytree(dest, tmp, symlinks=True, dirs_exist_ok=True)
            kernel.mount(tmp, dest, None, MS.MOVE, None)
        except BaseException:
            kernel.umount2(tmp, kernel.MNT_DETACH)
            raise
        if flags & MS.RDONLY:
            kernel.mount(None, dest, None, MS.REMOUNT | MS.RDONLY | flags, data or None)
    finally:
        os.rmdir(tmp)


def _mount_cgroup(spec: Spec, dest: str, flags: int, cgroup_mounts: list[tuple[str, str, str]]) -> None:
    """Mount the container's cgroups at *dest* (usually /sys/fs/cgroup).

    With a cgroup namespace the kernel roots a fresh cgroup mount at the
    container's own cgroup; without one we bind the container's directories.
    """
    _mkdir_p(dest)
    own_ns = spec.has_namespace("cgroup")
    if len(cgroup_mounts) == 1 and cgroup_mounts[0][0] == "":
        _, hostdir, _ = cgroup_mounts[0]
        if own_ns:
            kernel.mount("cgroup2", dest, "cgroup2", flags, None)
        else:
            kernel.mount(hostdir, dest, None, MS.BIND | MS.REC, None)
            kernel.mount(None, dest, None, MS.BIND | MS.REMOUNT | flags, None)
        return
    kernel.mount("tmpfs", dest, "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, "mode=755")
    for name, hostdir, opts in cgroup_mounts:
        if not opts:
            # The cgroup2 hierarchy of a hybrid host: runc leaves it out of
            # a v1 container's view, and so do we.
            continue
        sub = os.path.join(dest, name)
        _mkdir_p(sub)
        if own_ns:
            kernel.mount("cgroup", sub, "cgroup", flags, opts)
        else:
            kernel.mount(hostdir, sub, None, MS.BIND | MS.REC, None)
            kernel.mount(None, sub, None, MS.BIND | MS.REMOUNT | flags, None)


def _dev_is_bind(spec: Spec) -> bool:
    for m in spec.mounts:
        if m.destination.rstrip("/") == "/dev":
            flags, _, _, _ = parse_options(m.options)
            return bool(flags & MS.BIND) or m.type == "bind"
    return False


def _create_devices(spec: Spec, rootfs: str) -> None:
    in_userns = spec.has_namespace("user")
    wanted: dict[str, tuple[str, int, int, int, int, int]] = {}
    for path, typ, major, minor, mode in DEFAULT_DEVICES:
        wanted[path] = (typ, major, minor, mode, 0, 0)
    for d in spec.devices:
        mode = d.get("fileMode", 0o666)
        wanted[d["path"]] = (d["type"], d.get("major", 0), d.get("minor", 0), mode,
                             d.get("uid", 0), d.get("gid", 0))
    old = os.umask(0)
    try:
        for path, (typ, major, minor, mode, uid, gid) in wanted.items():
            dest = secure_join(rootfs, path)
            _mkdir_p(os.path.dirname(dest))
            if in_userns:
                _ensure_target(dest, False)
                kernel.mount(path, dest, None, MS.BIND, None)
                continue
            kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[typ]
            try:
                os.unlink(dest)
            except FileNotFoundError:
                pass
            os.mknod(dest, kind | (mode & 0o7777), os.makedev(major, minor))
            os.chown(dest, uid, gid)
    except OSError as e:
        raise _fail("creating devices", e) from None
    finally:
        os.umask(old)
    for target, link in _DEV_SYMLINKS:
        dest = secure_join(rootfs, link)
        if not os.path.lexists(dest):
            os.symlink(target, dest)
    ptmx = secure_join(rootfs, "/dev/ptmx")
    if os.path.isdir(secure_join(rootfs, "/dev/pts")):
        if os.path.lexists(ptmx):
            os.unlink(ptmx)
        os.symlink("pts/ptmx", ptmx)
    if os.path.isdir(secure_join(rootfs, "/proc")) and not os.path.lexists(secure_join(rootfs, "/dev/core")):
        os.symlink("/proc/kcore", secure_join(rootfs, "/dev/core"))


def prepare(spec: Spec, cgroup_mounts: list[tuple[str, str, str]]) -> None:
    """Steps 1-4: everything before the createContainer hooks and pivot_root."""
    rootfs = spec.root_path
    prop = _PROPAGATION.get(spec.rootfs_propagation or "rslave", MS.SLAVE | MS.REC)
    try:
        kernel.mount(None, "/", None, prop, None)
        if OVERLAY in spec.annotations:
            mount_overlay(spec)
        kernel.mount(rootfs, rootfs, None, MS.BIND | MS.REC, None)
    except OSError as e:
        raise _fail(f"rootfs {rootfs}", e) from None
    for m in spec.mounts:
        _mount_one(spec, m, rootfs, cgroup_mounts)
    if not _dev_is_bind(spec):
        _create_devices(spec, rootfs)


def mount_overlay(spec: Spec) -> None:
    """Mount the overlay the annotation OVERLAY describes at root.path.

    Since Linux 5.11 a user namespace that owns the mount namespace may
    mount overlayfs (the layers' own xattrs then are ``user.overlay.*``), so
    a rootless container's root can be an overlay of shared, read-only
    image layers with a private upper directory, made and gone with the
    container's mount namespace.  Where the kernel refuses, fuse-overlayfs
    (Debian's package) does the same in user space: its daemon then runs
    in the container's pid namespace and ends with it."""
    data = spec.annotations[OVERLAY]
    base = spec.annotations.get(OVERLAY + ".dir") or spec.bundle
    driver = spec.annotations.get(OVERLAY + ".driver", "auto")
    if driver not in ("auto", "kernel", "fuse"):
        raise SetupError(f"annotations.{OVERLAY}.driver: {driver!r} is not auto, kernel or fuse")
    where = f"annotations.{OVERLAY}: mounting the overlay at {spec.root_path}"
    cwd = os.open(".", os.O_PATH | os.O_CLOEXEC)
    try:
        try:
            os.chdir(base)
        except OSError as e:
            raise _fail(f"annotations.{OVERLAY}.dir {base}", e) from None
        if driver != "fuse":
            try:
                kernel.mount("overlay", spec.root_path, "overlay", 0, data)
                return
            except OSError as e:
                if driver == "kernel" or e.errno not in (errno.EPERM, errno.EINVAL, errno.ENODEV):
                    raise _fail(where, e) from None
        _fuse_overlay(data, spec.root_path, where)
    finally:
        os.fchdir(cwd)
        os.close(cwd)


def _fuse_overlay(data: str, target: str, where: str) -> None:
    """Mount *target* as a FUSE filesystem served by fuse-overlayfs.

    The mount is made here, on a /dev/fuse descriptor the daemon is then
    given ("/dev/fd/N", which libfuse takes for a mounted session).  The
    daemon runs in a mount namespace of its own, a copy made before
    pivot_root: pivot_root moves the root of every process of the container's
    namespace that has the old one, and a daemon whose root became its own
    filesystem would deadlock on its first absolute path."""
    import subprocess  # preloaded (init._preload)

    try:
        fuse = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        raise _fail(f"{where} with fuse-overlayfs: /dev/fuse", e) from None
    err = os.memfd_create("fuse-overlayfs-stderr")
    try:
        try:
            kernel.mount("fuse-overlayfs", target, "fuse.fuse-overlayfs", MS.NODEV,
                         f"fd={fuse},rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other")
        except OSError as e:
            raise _fail(f"{where} with fuse-overlayfs", e) from None
        try:
            # It daemonizes once it serves (stdio to /dev/null): the call returns.
            rc = subprocess.call(["fuse-overlayfs", "-o", data, f"/dev/fd/{fuse}"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err, pass_fds=(fuse,), timeout=30,
                                 preexec_fn=lambda: kernel.unshare(CLONE_NEWNS))
        except (OSError, subprocess.SubprocessError) as e:
            rc, msg = -1, [getattr(e, "strerror", None) or str(e)]
        else:
            os.lseek(err, 0, os.SEEK_SET)
            msg = os.read(err, 4096).decode(errors="replace").strip().splitlines()
        if rc != 0:
            kernel.umount2(target, kernel.MNT_DETACH)
            raise SetupError(f"{where} with fuse-overlayfs: {msg[-1] if msg else f'exit status {rc}'}")
    finally:
        os.close(err)
        os.close(fuse)


def pivot(spec: Spec, no_pivot: bool) -> None:
    """Step 6: make the rootfs the root of the mount namespace."""
    rootfs = spec.root_path
    try:
        os.chdir(rootfs)
        if no_pivot:
            kernel.mount(rootfs, "/", None, MS.MOVE, None)
            os.chroot(".")
        else:
            kernel.pivot_root(".", ".")
            # The old root is now stacked under "."; detach it without
            # letting the unmount propagate anywhere.
            kernel.mount(None, ".", None, MS.SLAVE | MS.REC, None)
            kernel.umount2(".", kernel.MNT_DETACH)
        os.chdir("/")
    except OSError as e:
        raise _fail("pivot_root", e) from None
    if spec.rootfs_propagation in ("shared", "rshared", "private", "rprivate", "unbindable", "runbindable"):
        kernel.mount(None, "/", None, _PROPAGATION[spec.rootfs_propagation], None)


def _mask(path: str) -> None:
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        if stat.S_ISDIR(st.st_mode):
            kernel.mount("tmpfs", path, "tmpfs", MS.RDONLY, None)
        else:
            kernel.mount("/dev/null", path, None, MS.BIND, None)
    except OSError as e:
        raise _fail(f"masking {path}", e) from None


def _readonly(path: str) -> None:
    try:
        kernel.mount(path, path, None, MS.BIND | MS.REC, None)
    except FileNotFoundError:
        return
    except OSError as e:
        raise _fail(f"read-only path {path}", e) from None
    try:
        flags = _statvfs_flags(path)
        kernel.mount(None, path, None, MS.BIND | MS.REMOUNT | MS.RDONLY | MS.REC | flags, None)
    except OSError as e:
        raise _fail(f"read-only path {path}", e) from None


def write_sysctls(sysctl: dict[str, str]) -> None:
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        if ".." in path.split("/"):
            raise SetupError(f"linux.sysctl.{key}: invalid name")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            raise _fail(f"linux.sysctl.{key}", e) from None


def finish(spec: Spec) -> None:
    """Step 7: after pivot_root."""
    write_sysctls(spec.sysctl)
    for p in spec.readonly_paths:
        _readonly(p)
    for p in spec.masked_paths:
        _mask(p)
    if spec.root_readonly:
        try:
            flags = _statvfs_flags("/")
            kernel.mount(None, "/", None, MS.BIND | MS.REMOUNT | MS.RDONLY | flags, None)
        except OSError as e:
            raise _fail("root.readonly", e) from None


def console_mount(slave_path: str) -> None:
    """Bind the container's pty slave over /dev/console, as runc does."""
    try:
        if not os.path.lexists("/dev/console"):
            os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        kernel.mount(slave_path, "/dev/console", None, MS.BIND, None)
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.ENOENT):
            raise _fail("/dev/console", e) from None

