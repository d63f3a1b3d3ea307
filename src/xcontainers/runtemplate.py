"""Run templates: what `xc run IMAGE` takes from a stored image, worked out
once, so that xc's native entry point can run the image without Python.

A container's config.json is the default config (`defaults.default_spec`,
with xc's own changes: a writable root, a cgroup namespace) filled from the
image's config by :func:`imagerun.apply_config`: its Env merged with our
defaults, Entrypoint and Cmd, WorkingDir (made in the container's upper
layer when the image lacks it), User resolved in the image's /etc/passwd
and /etc/group, its annotations.  None of that depends on the container:
images and their layers never change (an image's id is the digest of its
config, which names its layers' digests).  So, for an image of the store,
this module writes ``STORAGE/templates/HEX.json`` (HEX: the image id)::

    {"format": FORMAT, "image": ID,
     "spec": the config for the image, as xc_cli._bundle builds it, with
             placeholders for what each container gets (args, hostname,
             cgroupsPath; env holds the image's and the default variables),
     "entrypoint": [...], "cmd": [...],   the image's, for process.args
     "mkdirs": [[PATH, MODE], ...],        directories apply_config makes in
                                           a fresh container (the WorkingDir
                                           and its missing parents), relative
                                           to the rootfs, in order
     "warnings": [...]}                     what xc run says about the image

and, when the image lacks any of /etc/resolv.conf, /etc/hosts and
/etc/hostname (the files every container gets bind-mounted there), its
*mount-target layer* ``STORAGE/templates/HEX.init/``: ``etc/`` with the
image's /etc's mode, owner and times, and an empty file (mode 0755, root's,
as the runtime would create the target) for each missing name.  Every run
of the image mounts it as the topmost lower layer (``imagerun.mount_rootfs``,
src/native/xc/bundle.c), as Docker's per-container init layer does, so no
container copies /etc up and creates the targets in its own upper layer
(about 5 new inodes each, and the copy-up).  It is made once, in a
directory renamed into place (a reader sees all of it or none).  An image
whose /etc is not a plain directory or carries extended attributes gets
none; its runs create the targets as before.

These are written when the image is imported or pulled (in a private mount namespace of a
child process, on an overlay of the image with a throw-away upper layer in
the store's ``tmp/``), and at the first Python `xc run` of an image that has
none (on that run's fresh rootfs, before apply_config touches it).  An image
apply_config refuses (a relative WorkingDir, an unknown User, an Env entry
without ``=``, whose value would come from the environment of each run) gets
no template: its runs stay on the Python path, which gives the error.

The native path (src/native/xc/) takes a template only if its ``format`` is
the FORMAT it was built with: bump FORMAT (here and XC_TEMPLATE_FORMAT in
src/native/xc/xc.h) whenever default_spec, xc_cli._bundle or apply_config
change what they write.  tests/test_fastrun.py compares the config.json of
both paths byte for byte.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from . import _json as json
from .errors import XcError

__all__ = ["FORMAT", "path", "init_layer_path", "make", "write", "write_init_layer", "write_if_missing",
           "write_isolated"]

FORMAT = 1
DIRNAME = "templates"


def path(store_root: str, image_id: str) -> str:
    return os.path.join(store_root, DIRNAME, f"{image_id}.json")


def init_layer_path(store_root: str, image_id: str) -> str:
    return os.path.join(store_root, DIRNAME, f"{image_id}.init")


MOUNT_TARGETS = ("resolv.conf", "hosts", "hostname")


def write_init_layer(store_root: str, image_id: str, rootfs: str) -> bool:
    """Make the image's mount-target layer from *rootfs* (its layers merged,
    without that layer), if it needs one and has none; whether it has one."""
    dest = init_layer_path(store_root, image_id)
    if os.path.isdir(dest):
        return True
    etc = os.path.join(rootfs, "etc")
    try:
        st: os.stat_result | None = os.lstat(etc)
    except FileNotFoundError:
        st = None
    if st is not None and (not stat.S_ISDIR(st.st_mode) or os.listxattr(etc, follow_symlinks=False)):
        return False
    missing = [n for n in MOUNT_TARGETS if st is None or not os.path.lexists(os.path.join(etc, n))]
    if not missing:
        return False
    os.makedirs(os.path.dirname(dest), 0o700, exist_ok=True)
    tmp = f"{dest}.{os.getpid()}.tmp"
    try:
        os.mkdir(tmp, 0o700)
        layer_etc = os.path.join(tmp, "etc")
        os.mkdir(layer_etc, 0o755)
        for n in missing:
            target = os.path.join(layer_etc, n)
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o755))
            os.chmod(target, 0o755)
        if st is None:
            os.chmod(layer_etc, 0o755)
        else:
            os.chown(layer_etc, st.st_uid, st.st_gid)
            os.chmod(layer_etc, stat.S_IMODE(st.st_mode))
            os.utime(layer_etc, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.chmod(tmp, 0o755)
        os.rename(tmp, dest)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def _missing_dirs(rootfs: str, wd: str) -> list[list[Any]]:
    """What os.makedirs(secure_join(rootfs, wd), 0o755) would make, in order:
    the leaf with mode 0o755, missing parents with 0o777 (both under the
    umask of the run)."""
    from .securejoin import secure_join

    if wd == "/" or not wd.startswith("/"):
        return []
    full = secure_join(rootfs, wd)
    rel = os.path.relpath(full, rootfs)
    if rel == ".":
        return []
    parts = rel.split("/")
    out: list[list[Any]] = []
    for i in range(len(parts)):
        sub = "/".join(parts[: i + 1])
        if out or not os.path.lexists(os.path.join(rootfs, sub)):
            out.append([sub, 0o777])
    if out:
        out[-1][1] = 0o755
    return out


def make(rec: dict[str, Any], rootfs: str, image: str = "") -> dict[str, Any]:
    """The template of the stored image *rec*, from *rootfs*: a fresh overlay
    of its layers (an empty upper layer).  Raises XcError (or OSError) for an
    image apply_config refuses."""
    from . import imagerun
    from .imagestore import ImageStore
    from .xc_cli import new_spec

    cfg = ImageStore().config(rec)
    c = cfg.get("config") or cfg.get("Config") or {}
    env = c.get("Env") or []
    if any("=" not in kv for kv in env):
        raise XcError("an Env entry without '=' takes its value from each run's environment")
    mkdirs = _missing_dirs(rootfs, c.get("WorkingDir") or "/")
    spec = new_spec(["true"], terminal=False, hostname="")
    spec["linux"]["cgroupsPath"] = ""
    spec["annotations"] = {}
    warnings = imagerun.apply_config(spec, cfg, rootfs, cmd=["true"], env=[], image=image or rec["id"])
    return {"format": FORMAT, "image": rec["id"], "spec": spec,
            "entrypoint": list(c.get("Entrypoint") or []), "cmd": list(c.get("Cmd") or []),
            "mkdirs": mkdirs, "warnings": warnings}


def write(store_root: str, tpl: dict[str, Any]) -> None:
    """Write *tpl* (a new file renamed into place: readers see all or nothing)."""
    d = os.path.join(store_root, DIRNAME)
    os.makedirs(d, 0o700, exist_ok=True)
    dest = path(store_root, tpl["image"])
    tmp = f"{dest}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(tpl))
    os.rename(tmp, dest)


def write_if_missing(rec: dict[str, Any], rootfs: str, image: str = "") -> None:
    """At a Python `xc run` of *rec*, on its fresh *rootfs* (before
    apply_config): write the image's template if it has none.  Best effort:
    an image apply_config refuses gets none, and this run reports why."""
    from .imagestore import ImageStore

    st = ImageStore()
    if os.geteuid() != 0 or os.path.exists(path(st.root, rec["id"])):
        return
    try:
        write_init_layer(st.root, rec["id"], rootfs)
        write(st.root, make(rec, rootfs, image))
    except (XcError, OSError, ValueError, KeyError, TypeError):
        pass


def write_isolated(rec: dict[str, Any]) -> bool:
    """After an import or pull: write *rec*'s template from an overlay of
    its layers mounted in a child's private mount namespace (it vanishes
    with the child, whatever happens), on a work area of the store's tmp/
    (removed by the next store operation if the child is killed).  Returns
    whether a template was written."""
    from . import imagerun, kernel
    from .imagestore import ImageStore, _self_tag

    if os.geteuid() != 0:
        return False
    st = ImageStore()
    st.ensure()
    pid = os.fork()
    if pid == 0:
        code = 1
        work = ""
        try:
            kernel.unshare(kernel.CLONE.NEWNS)
            kernel.mount(None, "/", None, kernel.MS.REC | kernel.MS.PRIVATE, None)
            work = os.path.join(st.tmp, f"template-{_self_tag()}-{os.urandom(4).hex()}")
            os.mkdir(work, 0o700)
            rootfs = imagerun.mount_rootfs(rec, work, os.path.join(work, "state"), init_layer=False)
            write_init_layer(st.root, rec["id"], rootfs)
            tpl = make(rec, rootfs)
            write(st.root, tpl)
            code = 0
        except BaseException:  # noqa: BLE001 - no template; the runs report the cause
            pass
        finally:
            try:
                if work:
                    kernel.umount2(os.path.join(work, "rootfs"), kernel.MNT_DETACH)
            except OSError:
                pass
            if work:
                import shutil

                shutil.rmtree(work, ignore_errors=True)
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0
