"""Containers from stored images: an overlay root filesystem per container,
and the image's config turned into the container's OCI config.

A container of an image gets, in its bundle directory::

    xc-bundle.json   who made the bundle (pid and start time of the `xc`
                     process), the state root its container lives in, and
                     the image it uses
    overlay/upper/   the container's writes
    overlay/work/    overlayfs's work directory
    rootfs/          an overlay mount: lowerdir = the image's layers in the
                     store (top layer first), upperdir/workdir above

so the layers exist once on disk however many containers use them.  The
mount is made in the host's mount namespace before the container is
created; `xc rm` (and `xc run --rm`) unmounts it and removes the bundle.

A bundle whose container no longer exists (no state under the recorded
state root) and whose maker is gone -- an `xc` killed with SIGKILL between
mounting and creating, or between deleting and unmounting -- is stale:
:func:`gc` (run by `xc run`, `xc rm`, `xc ps` and `xc system prune`)
unmounts and removes it.

**Rootless** (:func:`rootless_overlay`), nothing is mounted on the host:
the bundle gets the same ``overlay/upper``, ``overlay/work`` and an empty
``rootfs/``, and the config the annotation ``org.xcontainers.rootfs.overlay``
(rootfs.py), so the container's init mounts the overlay at its root inside
the container's own user and mount namespaces -- the kernel's overlayfs
with ``userxattr`` (the store's opaque directories are
``user.overlay.opaque``), or fuse-overlayfs where the kernel refuses (or
``XC_ROOTLESS_OVERLAY=fuse``; a store whose whiteouts are ``.wh.`` files
always uses it).  The mount goes with the container; `xc rm` and the stale
collector only remove directories (in the store's user namespace when the
container left files of its subordinate ids).  The image's /etc/passwd and
/etc/group (for ``User``) are read from the layers with overlayfs's rules
(:class:`LayerView`); a missing WorkingDir is made by the runtime inside.

The lower directories are given to overlayfs relative to the store's
``layers/`` directory (the mount is made with that as the working
directory, as Docker's overlay2 driver does), which keeps the option string
within the page the kernel accepts for ~55 layers.

Image config -> OCI config follows image-spec ``conversion.md``: Env
(the image's variables win over our defaults, ``-e`` over both),
Entrypoint + Cmd (a command given to ``xc run`` replaces Cmd,
``--entrypoint`` replaces Entrypoint and drops Cmd), WorkingDir (made if
missing, as Docker does), User (names resolved in the image's /etc/passwd
and /etc/group), and the annotations ``org.opencontainers.image.*`` for
os, architecture, author, created, stopSignal, exposedPorts, plus the
image's labels.  Labels under ``org.xcontainers.`` are dropped (with a
warning): they would let an image switch off or reshape the X-LibOS, which
is the operator's decision.
"""

from __future__ import annotations

import errno
import os
import shutil
from typing import Any

from . import _json as json
from .errors import XcError

__all__ = ["MARKER", "find", "mount_rootfs", "rootless_overlay", "LayerView", "write_marker", "remove_bundle",
           "gc", "in_use", "apply_config", "OVERLAY_DIR"]

MARKER = "xc-bundle.json"
OVERLAY_DIR = "overlay"
_OPT_LIMIT = 4095


def _store() -> Any:
    from .imagestore import ImageStore

    return ImageStore()


_found: dict[str, dict[str, Any] | None] = {}


def find(ref: str) -> dict[str, Any] | None:
    """The stored image *ref* names, or None (looked up once per process)."""
    if ref not in _found:
        st = _store()
        _found[ref] = st.resolve(ref) if os.path.exists(st.index_path) else None
    return _found[ref]


def write_marker(bundle: str, state_root: str, image: str | None) -> None:
    from .state import process_start_time

    pid = os.getpid()
    data = json.dumps({"owner_pid": pid, "owner_start": process_start_time(pid) or 0,
                       "state_root": os.path.abspath(state_root), "image": image})
    # whole or not at all: a parallel `xc run` reads every marker
    tmp = os.path.join(bundle, f".{MARKER}.tmp")
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, os.path.join(bundle, MARKER))


def _read_marker(bundle: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(bundle, MARKER), "rb") as f:
            return json.loads(f.read())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def _overlay_dirs(bundle: str) -> tuple[str, str, str]:
    """The bundle's rootfs and the overlay's upper and work directories
    (paths overlayfs's mount options can carry)."""
    rootfs = os.path.join(bundle, "rootfs")
    upper = os.path.join(bundle, OVERLAY_DIR, "upper")
    work = os.path.join(bundle, OVERLAY_DIR, "work")
    for p in (upper, work):
        if "," in p or ":" in p:
            raise XcError(f"{p}: overlayfs paths may not contain ',' or ':' (set XC_BUNDLES elsewhere)")
    return rootfs, upper, work


def mount_rootfs(rec: dict[str, Any], bundle: str, state_root: str, volatile: bool = False,
                 init_layer: bool = True) -> str:
    """Mount the image's layers with a fresh upper layer at BUNDLE/rootfs.
    *volatile* (for a container removed when it exits, as podman does for
    `--rm`): overlayfs's ``volatile`` option, no sync of the upper layer
    (fsync in the container, and at the unmount: ~0.7 ms of this host's
    ~0.8 ms umount).  *init_layer*: the image's mount-target layer on top
    of its layers, if it has one (runtemplate.py)."""
    from . import kernel, runtemplate
    from .imagestore import ImageError, _need_root, hex_of

    _need_root("running a container of a stored image")
    st = _store()
    st.check_root_store()
    rootfs, upper, work = _overlay_dirs(bundle)
    with st.lock(exclusive=False):
        # The marker first: from here on `xc image rm` sees the image in use.
        write_marker(bundle, state_root, rec["id"])
        lowers = [f"{hex_of(d)}/diff" for d in reversed(rec["layers"])]
        for d in rec["layers"]:
            if not st.has_layer(d):
                raise ImageError(f"image {rec['id'][:12]}: layer {d} is missing from the store "
                                 "(xc image rm it and import it again)")
        if not lowers:
            empty = os.path.join(st.layers, "empty")
            os.makedirs(empty, 0o755, exist_ok=True)
            lowers = ["empty"]
        if init_layer and os.path.isdir(runtemplate.init_layer_path(st.root, rec["id"])):
            lowers.insert(0, f"../{runtemplate.DIRNAME}/{rec['id']}.init")
        os.makedirs(upper, 0o755)
        os.mkdir(work, 0o700)
        os.mkdir(rootfs, 0o755)
        opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}" + (",volatile" if volatile else "")
        if len(opts) > _OPT_LIMIT:
            raise ImageError(f"image {rec['id'][:12]} has {len(lowers)} layers: too many for one overlay "
                             "mount here")
        cwd = os.open(".", os.O_PATH | os.O_CLOEXEC)
        try:
            os.chdir(st.layers)
            kernel.mount("overlay", rootfs, "overlay", 0, opts)
        except OSError as e:
            raise XcError(f"mounting the overlay root filesystem at {rootfs}: {e.strerror}") from None
        finally:
            os.fchdir(cwd)
            os.close(cwd)
    return rootfs


def rootless_overlay(rec: dict[str, Any], bundle: str, state_root: str) -> tuple[dict[str, str], "LayerView"]:
    """For an unprivileged user: the bundle's upper, work and (empty) rootfs
    directories, and the annotations that make the container's init mount
    the image's layers at its root (see the module's doc); with a view of
    the layers for reading the image's user database."""
    from .imagestore import ImageError, hex_of
    from .rootfs import OVERLAY

    st = _store()
    form = st.rootless_form()
    rootfs, upper, work = _overlay_dirs(bundle)
    with st.lock(exclusive=False):
        write_marker(bundle, state_root, rec["id"])
        for d in rec["layers"]:
            if not st.has_layer(d):
                raise ImageError(f"image {rec['id'][:12]}: layer {d} is missing from the store "
                                 "(xc image rm it and import it again)")
        lowers = [f"{hex_of(d)}/diff" for d in reversed(rec["layers"])]
        if not lowers:
            os.makedirs(os.path.join(st.layers, "empty"), 0o755, exist_ok=True)
            lowers = ["empty"]
    os.makedirs(upper, 0o755)
    os.mkdir(work, 0o700)
    os.mkdir(rootfs, 0o755)
    data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},userxattr"
    if len(data) > _OPT_LIMIT:
        raise ImageError(f"image {rec['id'][:12]} has {len(lowers)} layers: too many for one overlay mount here")
    driver = os.environ.get("XC_ROOTLESS_OVERLAY", "auto")
    if driver not in ("auto", "kernel", "fuse"):
        raise XcError(f"XC_ROOTLESS_OVERLAY={driver!r}: expected auto, kernel or fuse")
    if form.get("whiteouts") == "files":
        driver = "fuse"  # the kernel's overlayfs knows no .wh. files
    ann = {OVERLAY: data, OVERLAY + ".dir": st.layers, OVERLAY + ".driver": driver}
    return ann, LayerView([os.path.join(st.layers, lo) for lo in lowers])


class LayerView:
    """Lookups in the merged view of image layers without mounting them,
    by overlayfs's rules: the topmost layer holding a name decides what it
    is; below a directory, lower layers' directories merge until an opaque
    one, a whiteout or a non-directory; a whiteout (device 0/0, or a
    ``.wh.NAME`` file) hides the name in every layer below.  Symlinks are
    followed within the view."""

    _OPAQUE_XATTRS = ("user.overlay.opaque", "trusted.overlay.opaque")

    def __init__(self, lowers: list[str]) -> None:
        self.lowers = lowers  # top layer first

    def read(self, path: str, limit: int = 4 << 20) -> bytes | None:
        """The contents of the regular file *path* (absolute, in the view),
        or None if there is none (or it cannot be read)."""
        host = self.resolve(path)
        if host is None:
            return None
        try:
            fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            import stat

            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return os.read(fd, limit)
        finally:
            os.close(fd)

    def resolve(self, path: str) -> str | None:
        """The host path of what *path* names in the view (symlinks followed)."""
        import stat

        todo = path.split("/")
        done: list[str] = []
        host = self.lowers[0] if self.lowers else None
        links = 0
        while todo:
            name = todo.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                done = done[:-1]
                continue
            hit = self._top(done + [name])
            if hit is None:
                return None
            host, mode = hit
            if stat.S_ISLNK(mode):
                links += 1
                if links > 40:
                    return None
                target = os.readlink(host)
                if target.startswith("/"):
                    done = []
                todo = target.split("/") + todo
                continue
            done.append(name)
        return host

    def _top(self, parts: list[str]) -> tuple[str, int] | None:
        """The topmost entry of *parts* (whose directories are real
        directories in the view), as (host path, st_mode)."""
        import stat

        layers = list(self.lowers)
        top: tuple[str, int] | None = None
        for i, name in enumerate(parts):
            top = None
            merged = []
            for d in layers:
                p = os.path.join(d, name)
                try:
                    st = os.lstat(p)
                except FileNotFoundError:
                    if os.path.lexists(os.path.join(d, ".wh." + name)):
                        break
                    continue
                except OSError:
                    return None  # not a directory, or not ours to look into
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    break  # a whiteout
                if top is None:
                    top = (p, st.st_mode)
                if not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(top[1]):
                    break
                merged.append(p)
                if self._opaque(p):
                    break
            if top is None:
                return None
            if i < len(parts) - 1:
                if not stat.S_ISDIR(top[1]):
                    return None
                layers = merged
        return top

    def _opaque(self, path: str) -> bool:
        for name in self._OPAQUE_XATTRS:
            try:
                if os.getxattr(path, name, follow_symlinks=False) == b"y":
                    return True
            except OSError:
                pass
        return os.path.lexists(os.path.join(path, ".wh..wh..opq"))


def _unmount(path: str) -> None:
    from . import kernel

    try:
        kernel.umount2(path, 0)
    except OSError as e:
        if e.errno == errno.EBUSY:
            kernel.umount2(path, kernel.MNT_DETACH)
        elif e.errno not in (errno.EINVAL, errno.ENOENT):
            raise


def remove_bundle(bundle: str) -> None:
    """Unmount the bundle's overlay root (if any) and remove the bundle."""
    if os.geteuid() != 0:
        _remove_rootless(bundle)
        return
    rootfs = os.path.join(bundle, "rootfs")
    if os.path.isdir(os.path.join(bundle, OVERLAY_DIR)):
        for _ in range(8):
            if not os.path.ismount(rootfs):
                break
            _unmount(rootfs)
        if os.path.ismount(rootfs):
            raise XcError(f"{rootfs}: still mounted; not removing the bundle")
        from .points import mark

        mark("unmounted")
    shutil.rmtree(bundle, ignore_errors=True)


def _remove_rootless(bundle: str) -> None:
    """Remove a rootless container's bundle.  Its root was mounted inside
    the container, so there is nothing to unmount; but the container may
    have left files of its other ids (chown to a subordinate id) or
    directories the user cannot enter, and overlayfs leaves
    ``work/work`` mode 000.  What the user cannot remove is removed in a
    user namespace with the container's id maps."""
    from .rootless import container_id_maps, in_own_userns, run_in_userns

    work = os.path.join(bundle, OVERLAY_DIR, "work", "work")
    try:
        os.chmod(work, 0o700)
    except OSError:
        pass
    try:
        shutil.rmtree(bundle)
        return
    except FileNotFoundError:
        if not os.path.lexists(bundle):
            return
    except OSError:
        pass
    if in_own_userns():
        shutil.rmtree(bundle, ignore_errors=True)
        return
    uid_maps, gid_maps = container_id_maps()
    run_in_userns(uid_maps, gid_maps, shutil.rmtree, bundle, ignore_errors=True)
    if os.path.lexists(bundle):
        raise XcError(f"{bundle}: could not remove all of it")


def _stale(bundle: str, cid: str) -> bool:
    m = _read_marker(bundle)
    if m is None:
        return False
    if os.path.isdir(os.path.join(m.get("state_root", ""), cid)):
        return False
    from .state import process_start_time

    pid = int(m.get("owner_pid", 0))
    return not (pid and process_start_time(pid) == m.get("owner_start"))


def trash_dir(bundles: str) -> str:
    """Where xc's native `xc run --rm` moves a container's unmounted bundle
    for a child process to remove after the exit status is reported
    (src/native/xc/bundle.c): ``.xc-trash`` beside *bundles*, entries
    ``ID.PID-START`` (PID and start time of that child)."""
    return os.path.join(os.path.dirname(os.path.normpath(bundles)), ".xc-trash")


def _gc_trash(bundles: str) -> None:
    from .state import process_start_time

    trash = trash_dir(bundles)
    try:
        names = os.listdir(trash)
    except OSError:
        return
    for n in names:
        pid, _, start = n.rpartition(".")[2].partition("-")
        if pid.isdigit() and start.isdigit() and process_start_time(int(pid)) == int(start):
            continue  # its remover is at work
        shutil.rmtree(os.path.join(trash, n), ignore_errors=True)


def gc(bundles: str) -> list[str]:
    """Remove the stale bundles under *bundles* (see the module's doc), and
    the bundles in trash_dir() whose remover is gone; return the ids of the
    stale bundles."""
    _gc_trash(bundles)
    try:
        names = os.listdir(bundles)
    except FileNotFoundError:
        return []
    done = []
    for cid in names:
        b = os.path.join(bundles, cid)
        if _stale(b, cid):
            try:
                remove_bundle(b)
                done.append(cid)
            except (OSError, XcError):
                pass
    return done


def remove_stale(bundles: str, cid: str) -> bool:
    """Remove the bundle of *cid* if it is stale (for `xc rm` of a container
    whose state is gone)."""
    b = os.path.join(bundles, cid)
    if os.path.isdir(b) and _stale(b, cid):
        remove_bundle(b)
        return True
    return False


def in_use(bundles: str, image_id: str) -> list[str]:
    """The containers (bundle ids) whose root filesystem uses *image_id*."""
    out = []
    for cid in sorted(os.listdir(bundles)) if os.path.isdir(bundles) else []:
        m = _read_marker(os.path.join(bundles, cid))
        if m is not None and m.get("image") == image_id:
            out.append(cid)
    return out


# -- image config -> OCI runtime config ----------------------------------------


def _read_db(rootfs: str | LayerView, path: str) -> list[list[str]]:
    if isinstance(rootfs, LayerView):
        data = rootfs.read(path)
        lines = data.decode("utf-8", errors="replace").splitlines() if data else []
        return [line.split(":") for line in lines if line.strip() and not line.startswith("#")]
    from .securejoin import secure_join

    try:
        with open(secure_join(rootfs, path), encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def resolve_user(rootfs: str | LayerView, user: str) -> dict[str, Any]:
    """``process.user`` for the image's ``User`` (``name``, ``uid``,
    ``name:group``, ``uid:gid`` ...), resolved in the image's files."""
    u, _, g = user.partition(":")
    passwd = _read_db(rootfs, "/etc/passwd")
    groups = _read_db(rootfs, "/etc/group")
    entry = None
    for p in passwd:
        if len(p) >= 4 and (p[0] == u or (u.isdigit() and p[2] == u)):
            entry = p
            break
    if entry is not None:
        uid, gid, uname = int(entry[2]), int(entry[3]) if entry[3].isdigit() else 0, entry[0]
    elif u.isdigit():
        uid, gid, uname = int(u), 0, None
    else:
        raise XcError(f"the image's user {u!r} is not in its /etc/passwd")
    out: dict[str, Any] = {"uid": uid, "gid": gid}
    if g:
        for grp in groups:
            if len(grp) >= 3 and (grp[0] == g or (g.isdigit() and grp[2] == g)):
                out["gid"] = int(grp[2])
                break
        else:
            if not g.isdigit():
                raise XcError(f"the image's group {g!r} is not in its /etc/group")
            out["gid"] = int(g)
    elif uname is not None:
        extra = sorted({int(grp[2]) for grp in groups if len(grp) >= 4 and grp[2].isdigit()
                        and uname in grp[3].split(",") and int(grp[2]) != out["gid"]})
        if extra:
            out["additionalGids"] = extra
    return out


def _merge_env(*lists: list[str]) -> list[str]:
    out: dict[str, str] = {}
    for lst in lists:
        for kv in lst:
            k, sep, v = kv.partition("=")
            if not sep:
                if k in os.environ:
                    out[k] = f"{k}={os.environ[k]}"
                continue
            out[k] = kv
    return list(out.values())


def apply_config(spec: dict[str, Any], cfg: dict[str, Any], rootfs: str | LayerView, *, cmd: list[str],
                 env: list[str], entrypoint: str | None = None, image: str = "") -> list[str]:
    """Fill *spec* from the image config *cfg*; return warnings.  *rootfs*
    is the mounted root, or (rootless) a view of the layers: then a missing
    WorkingDir is left to the runtime, which makes process.cwd inside."""
    c = cfg.get("config") or cfg.get("Config") or {}
    warnings = []
    proc = spec["process"]
    image_env = list(c.get("Env") or [])
    names = {kv.partition("=")[0] for kv in image_env}
    defaults = [kv for kv in proc["env"] if kv.partition("=")[0] not in names]
    proc["env"] = _merge_env(image_env, defaults, env)
    if entrypoint is not None:
        ep = [entrypoint] if entrypoint else []
        args = ep + cmd
    else:
        args = list(c.get("Entrypoint") or []) + (cmd or list(c.get("Cmd") or []))
    if not args:
        raise XcError(f"image {image!r} has no command (no Entrypoint or Cmd): give one after the image")
    proc["args"] = args
    wd = c.get("WorkingDir") or "/"
    if not wd.startswith("/"):
        raise XcError(f"image {image!r}: WorkingDir {wd!r} is not absolute")
    proc["cwd"] = wd
    if wd != "/" and isinstance(rootfs, str):
        from .securejoin import secure_join

        os.makedirs(secure_join(rootfs, wd), 0o755, exist_ok=True)
    if c.get("User"):
        proc["user"] = resolve_user(rootfs, c["User"])
    ann: dict[str, str] = {}
    for key, field in (("os", "os"), ("architecture", "architecture"), ("variant", "variant"),
                       ("os.version", "os.version"), ("author", "author"), ("created", "created")):
        if cfg.get(field):
            ann[f"org.opencontainers.image.{key}"] = str(cfg[field])
    if cfg.get("os.features"):
        ann["org.opencontainers.image.os.features"] = ",".join(cfg["os.features"])
    if c.get("StopSignal"):
        ann["org.opencontainers.image.stopSignal"] = str(c["StopSignal"])
    if c.get("ExposedPorts"):
        ann["org.opencontainers.image.exposedPorts"] = ",".join(sorted(c["ExposedPorts"]))
    for k, v in (c.get("Labels") or {}).items():
        if k.startswith("org.xcontainers."):
            warnings.append(f"image label {k} ignored: the X-LibOS is configured by xc run's flags, "
                            "not by images")
            continue
        ann[k] = str(v)
    spec["annotations"] = {**ann, **spec.get("annotations", {})}
    return warnings
