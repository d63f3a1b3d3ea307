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

when the image is imported or pulled (in a private mount namespace of a
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
from typing import Any

from . import _json as json
from .errors import XcError

__all__ = ["FORMAT", "path", "make", "write", "write_if_missing", "write_isolated"]

FORMAT = 1
DIRNAME = "templates"


def path(store_root: str, image_id: str) -> str:
    return os.path.join(store_root, DIRNAME, f"{image_id}.json")


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
            rootfs = imagerun.mount_rootfs(rec, work, os.path.join(work, "state"))
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
