"""Making test images on this machine, without downloads.

* :class:`LayerBuilder` writes a layer tar with Python's tarfile: any entry
  a real layer may hold (whiteouts, opaque markers, hard links, devices,
  xattrs) and the hostile ones a layer must not hold (``../``, absolute
  names, writes through symlinks, hard links out).
* :func:`write_oci_layout` assembles an OCI image layout (``oci:`` as skopeo
  and umoci read it) from layer tars and a config; :func:`tar_dir` packs a
  directory into an archive (``oci-archive:``).
* :class:`Podman` runs podman on a store of its own (in a tmp dir, vfs
  driver) to ``import`` a rootfs tar and ``save`` it in both formats.
* :func:`tree` lists a directory tree for comparisons; :func:`snapshot`
  what an import or a run could leave behind (store files, mounts, tmp).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from conftest import ROOT

DIFF_TIME = 1_600_000_000


# xc as installed: the native entry point (src/xcontainers/xc, which runs what it
# can itself and hands the rest to xc_cli), else the venv's console script.
_XC_NATIVE = ROOT / "src" / "xcontainers" / "xc"
XC = str(_XC_NATIVE) if os.access(_XC_NATIVE, os.X_OK) else str(ROOT / ".venv/bin/xc")


class Xc:
    """The `xc` command line with its own store, bundles and state root."""

    def __init__(self, base: Path) -> None:
        self.store = base / "storage"
        self.bundles = base / "bundles"
        self.root = base / "state"
        self.env = {**os.environ, "XC_STORAGE": str(self.store), "XC_BUNDLES": str(self.bundles),
                    "XC_ROOT": str(self.root), "PYTHONPATH": str(ROOT / "src")}

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        # Files, not pipes: a detached container keeps its stdio open.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            rc = subprocess.run([XC, *args], stdout=out, stderr=err, timeout=timeout, env=self.env,
                                stdin=subprocess.DEVNULL).returncode
            out.seek(0)
            err.seek(0)
            p = subprocess.CompletedProcess([XC, *args], rc, out.read(), err.read())
        if check:
            assert p.returncode == 0, f"xc {' '.join(args)} failed ({p.returncode}): {p.stderr}"
        return p

    def fails(self, *args: str, want: str) -> str:
        p = self(*args, check=False)
        assert p.returncode != 0, f"xc {' '.join(args)} should have failed: {p.stdout}"
        err = p.stderr.strip()
        assert len(err.splitlines()) == 1, f"not a one-line error: {err!r}"
        assert want in err, f"{want!r} not in {err!r}"
        assert "Traceback" not in p.stderr
        return err

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / ".venv/bin/python"), "-c", code], capture_output=True, text=True,
                              timeout=60, env=self.env)

    def layer_dirs(self) -> list[str]:
        d = self.store / "layers"
        return sorted(os.listdir(d)) if d.exists() else []

    def cleanup(self) -> None:
        """Whatever a test left: containers, then mounts."""
        for cid in os.listdir(self.root) if self.root.exists() else []:
            self("rm", "-f", cid, check=False)
        for m in mounts(self.bundles):
            subprocess.run(["umount", "-l", m.split()[0]])


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class LayerBuilder:
    """A layer tar built entry by entry (no checks: hostile layers too)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _add(self, ti: tarfile.TarInfo, data: bytes | None = None) -> "LayerBuilder":
        if not ti.mtime:
            ti.mtime = DIFF_TIME
        self.tf.addfile(ti, io.BytesIO(data) if data is not None else None)
        return self

    def dir(self, name: str, mode: int = 0o755, uid: int = 0, gid: int = 0, **kw: Any) -> "LayerBuilder":
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid = tarfile.DIRTYPE, mode, uid, gid
        for k, v in kw.items():
            setattr(ti, k, v)
        return self._add(ti)

    def file(self, name: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0,
             xattrs: dict[str, bytes] | None = None, mtime: float = 0) -> "LayerBuilder":
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.uid, ti.gid, ti.mtime = len(data), mode, uid, gid, mtime
        if xattrs:
            ti.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()}
        return self._add(ti, data)

    def symlink(self, name: str, target: str) -> "LayerBuilder":
        ti = tarfile.TarInfo(name)
        ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, target, 0o777
        return self._add(ti)

    def hardlink(self, name: str, target: str) -> "LayerBuilder":
        ti = tarfile.TarInfo(name)
        ti.type, ti.linkname = tarfile.LNKTYPE, target
        return self._add(ti)

    def device(self, name: str, kind: bytes, major: int = 0, minor: int = 0, mode: int = 0o666) -> "LayerBuilder":
        ti = tarfile.TarInfo(name)
        ti.type, ti.devmajor, ti.devminor, ti.mode = kind, major, minor, mode
        return self._add(ti)

    def whiteout(self, path: str) -> "LayerBuilder":
        d, _, base = path.rpartition("/")
        return self.file(f"{d}/.wh.{base}" if d else f".wh.{base}")

    def opaque(self, dirpath: str) -> "LayerBuilder":
        return self.file(f"{dirpath}/.wh..wh..opq")

    def tree(self, root: Path, arcname: str = ".") -> "LayerBuilder":
        self.tf.add(str(root), arcname=arcname, recursive=True)
        return self

    def bytes(self) -> bytes:
        self.tf.close()
        return self.buf.getvalue()


def image_config(diff_ids: list[str], **config: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "created": "2024-01-02T03:04:05Z", "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "xc tests"} for _ in diff_ids],
    }
    platform = config.pop("platform", None)
    if platform:
        cfg["os"], cfg["architecture"] = platform
    cfg["config"].update(config)
    return cfg


def write_oci_layout(dest: Path, layers: list[bytes], *, compress: str = "gzip", ref: str = "latest",
                     config: dict[str, Any] | None = None, layer_media_type: str | None = None,
                     index_platforms: list[tuple[str, str]] | None = None,
                     blob_hook: Any = None) -> dict[str, Any]:
    """An OCI image layout of *layers* (uncompressed tars).  *index_platforms*
    wraps the manifest in an image index with those platforms (the first
    being the real image).  *blob_hook(kind, data)* may alter a blob after
    its descriptor was computed (to test verification)."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes, kind: str) -> str:
        d = sha(data)
        if blob_hook is not None:
            data = blob_hook(kind, data)
        (blobs / d[7:]).write_bytes(data)
        return d

    diff_ids = [sha(layer) for layer in layers]
    cfg = config or image_config(diff_ids)
    cfg_bytes = json.dumps(cfg).encode()
    ldescs = []
    for layer in layers:
        if compress == "gzip":
            blob, mt = gzip.compress(layer, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
        elif compress == "zstd":
            import zstandard

            blob, mt = zstandard.ZstdCompressor().compress(layer), "application/vnd.oci.image.layer.v1.tar+zstd"
        else:
            blob, mt = layer, "application/vnd.oci.image.layer.v1.tar"
        ldescs.append({"mediaType": layer_media_type or mt, "digest": put(blob, "layer"), "size": len(blob)})
    cdesc = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg_bytes, "config"),
             "size": len(cfg_bytes)}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": cdesc, "layers": ldescs}).encode()
    mdesc: dict[str, Any] = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "digest": put(manifest, "manifest"), "size": len(manifest)}
    top = dict(mdesc)
    if index_platforms:
        entries = []
        for os_, arch in index_platforms:
            entries.append({**mdesc, "platform": {"os": os_, "architecture": arch}})
        idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": entries}).encode()
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": put(idx, "index"),
               "size": len(idx)}
    top["annotations"] = {"org.opencontainers.image.ref.name": ref}
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return {"config": cdesc["digest"], "manifest": mdesc["digest"], "diff_ids": diff_ids,
            "layers": [d["digest"] for d in ldescs]}


def tar_dir(src: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w") as tf:
        for p in sorted(src.rglob("*")):
            tf.add(str(p), arcname=str(p.relative_to(src)), recursive=False)
    return dest


def skopeo(*args: str) -> None:
    r = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"skopeo {' '.join(args)}: {r.stderr}"


class Podman:
    """podman on a store of its own (a tmp dir, the vfs driver)."""

    def __init__(self, root: Path) -> None:
        self.args = ["podman", "--root", str(root / "storage"), "--runroot", str(root / "run"),
                     "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none"]

    def __call__(self, *args: str) -> str:
        r = subprocess.run([*self.args, *args], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"podman {' '.join(args)}: {r.stderr}"
        return r.stdout


def podman_images(base: Path) -> dict[str, Path]:
    """The busybox rootfs, imported by podman with an Env, a WorkingDir and
    a Cmd, saved as docker-archive and as oci-archive."""
    from conftest import build_busybox_rootfs

    rootfs = build_busybox_rootfs(base / "rootfs")
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(base / "rootfs.tar"), "."], check=True)
    pm = Podman(base)
    pm("import", "--change", "ENV GREETING=hello", "--change", "WORKDIR /work",
       "--change", 'CMD ["sh", "-c", "echo $GREETING from $(pwd)"]', str(base / "rootfs.tar"), "xctest/bb:1")
    pm("save", "--format", "docker-archive", "-o", str(base / "bb-docker.tar"), "xctest/bb:1")
    pm("save", "--format", "oci-archive", "-o", str(base / "bb-oci.tar"), "xctest/bb:1")
    return {"rootfs": rootfs, "docker": base / "bb-docker.tar", "oci": base / "bb-oci.tar"}


def tree(root: Path, *, mtimes: bool = True) -> dict[str, tuple[Any, ...]]:
    """path -> (type, mode, uid, gid, size or target or rdev, mtime) of
    everything under *root* (not *root* itself)."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            m = st.st_mode
            if stat.S_ISLNK(m):
                extra: Any = os.readlink(p)
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                extra = (os.major(st.st_rdev), os.minor(st.st_rdev))
            elif stat.S_ISDIR(m):
                extra = None
            else:
                extra = st.st_size
            mt = int(st.st_mtime) if mtimes and not stat.S_ISDIR(m) and not stat.S_ISLNK(m) else None
            out[os.path.relpath(p, root)] = (stat.S_IFMT(m), stat.S_IMODE(m), st.st_uid, st.st_gid, extra, mt)
    return out


def mounts(*under: Path) -> list[str]:
    """Mount points (with their options) that lie under, or name, one of
    *under* (all mounts without it).  Other people's containers come and go
    on this machine: a snapshot looks at ours only."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if not under or any(str(u) in line for u in under):
                fields = line.split()
                out.append(f"{fields[4]} {fields[-1]}")
    return sorted(out)


def files(root: Path) -> list[str]:
    """Every path under *root*, with its type and size (what an import may leave)."""
    if not root.exists():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            size = "" if stat.S_ISDIR(st.st_mode) else st.st_size
            out.append(f"{os.path.relpath(p, root)} {stat.S_IFMT(st.st_mode):o} {size}")
    return sorted(out)


def snapshot(store: Path, bundles: Path, extra: list[Path] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {"store": files(store), "bundles": files(bundles), "mounts": mounts(store, bundles, *extra),
            **{str(p): files(p) for p in extra}}


def copy_layout(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest
