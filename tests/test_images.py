"""Images: `xc image import/ls/rm`, containers on overlay roots, layer rules.

Test images are made here from real tools and the busybox rootfs: podman
(on a store of its own) imports a rootfs tar and saves it as docker-archive
and oci-archive; multi-layer images with whiteouts, opaque directories,
hard links, devices and xattrs are written with Python's tarfile into an
OCI layout, which skopeo converts to a docker-archive (proving the format
is real) and umoci unpacks as the reference for what the layers mean.
Every test uses its own store, bundles and state root (tmp dirs).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import need_root
from imagelib import (XC, LayerBuilder, Xc, image_config, mounts, podman_images, sha, skopeo, snapshot,
                      tar_dir, tree, write_oci_layout)

pytestmark = pytest.mark.root


@pytest.fixture
def xcli(tmp_path: Path) -> Any:
    need_root()
    x = Xc(tmp_path / "xc")
    yield x
    x.cleanup()


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The busybox rootfs as podman-made docker-archive and oci-archive."""
    need_root()
    return podman_images(tmp_path_factory.mktemp("podman-images"))


def multilayer_layers(rootfs: Path) -> list[bytes]:
    """Three layers exercising layer.md: whiteouts, opaque dirs, links,
    devices, setuid/setgid, ownership, mtimes, xattrs."""
    base = (LayerBuilder().tree(rootfs)
            .dir("a").dir("a/b").dir("a/b/c").file("a/b/c/bar", b"bar\n").file("a/keep", b"gone\n")
            .file("etc/old", b"old\n").file("etc/keep", b"keep\n")
            .dir("data").file("data/x", b"x\n").file("data/z", b"z\n")
            .dir("srv", mode=0o1777).bytes())
    second = (LayerBuilder()
              .dir("etc").whiteout("etc/old")
              .dir("a").opaque("a").dir("a/b").dir("a/b/c").file("a/b/c/foo", b"foo\n")
              .file("usr/bin/suid", b"#!/bin/sh\n", mode=0o4755)
              .dir("shared", mode=0o2775, uid=1000, gid=1000)
              .dir("hl").file("hl/new", b"same inode\n").hardlink("hl/link", "hl/new")
              .dir("lnk").symlink("lnk/etc", "/etc").symlink("lnk/up", "../../../../outside")
              .dir("dev2").device("dev2/null", tarfile_type("chr"), 1, 3)
              .device("dev2/loop", tarfile_type("blk"), 7, 0, mode=0o660)
              .device("dev2/fifo", tarfile_type("fifo"), mode=0o640)
              .dir("x", mtime=1_234_567_000)
              .file("x/attr", b"with xattr\n", xattrs={"user.xc.test": b"hello"}, mtime=1_234_567_890)
              .file("own/f", b"owned\n", uid=1234, gid=5678)
              .bytes())
    third = (LayerBuilder()
             .dir("data").whiteout("data/x").file("data/y", b"y\n")
             .file("etc/old", b"back\n")
             .dir("a/b/c").whiteout("a/b/c/foo")
             .bytes())
    return [base, second, third]


def tarfile_type(kind: str) -> bytes:
    return {"chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}[kind]


@pytest.fixture(scope="session")
def multilayer(tmp_path_factory: pytest.TempPathFactory, images: dict[str, Path]) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("multilayer")
    layout = base / "layout"
    info = write_oci_layout(layout, multilayer_layers(images["rootfs"]), ref="latest",
                            config=None)
    ociarch = tar_dir(layout, base / "ml-oci.tar")
    # skopeo reads the layout and writes a docker-archive: the layout is real.
    skopeo("copy", f"oci:{layout}:latest", f"docker-archive:{base / 'ml-docker.tar'}:xctest/multi:1")
    # umoci applies the layers (deleting what whiteouts name): the reference.
    ref = base / "umoci"
    r = subprocess.run(["umoci", "unpack", "--image", f"{layout}:latest", str(ref)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return {"layout": layout, "oci": ociarch, "docker": base / "ml-docker.tar", "reference": ref / "rootfs",
            **info}


# -- import, list, run ---------------------------------------------------------


def test_import_both_formats_run_and_list(xcli, images):
    out = xcli("image", "import", str(images["docker"])).stdout
    assert "localhost/xctest/bb:1" in out
    out2 = xcli("image", "import", str(images["oci"]), "--name", "bb-oci:2").stdout
    # The same config digest: one image with two names, one layer on disk.
    assert out.split()[1] == out2.split()[1]
    assert len(xcli.layer_dirs()) == 1
    ls = xcli("image", "ls").stdout
    assert "localhost/xctest/bb:1" in ls and "bb-oci:2" in ls and "busybox (built in)" in ls
    assert xcli("images").stdout == ls
    recs = json.loads(xcli("image", "ls", "--json").stdout)
    assert len(recs) == 1 and sorted(recs[0]["names"]) == ["bb-oci:2", "localhost/xctest/bb:1"]
    # The image's Env, WorkingDir and Cmd make the container's process.
    r = xcli("run", "--rm", "xctest/bb:1")
    assert r.stdout == "hello from /work\n", r.stderr
    r = xcli("run", "--rm", "-e", "GREETING=bye", "bb-oci:2", "sh", "-c", "echo $GREETING; pwd; echo $PATH")
    assert r.stdout.splitlines() == ["bye", "/work", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    # --rm took the container's mount and bundle away.
    assert not mounts(xcli.bundles)
    assert os.listdir(xcli.bundles) == []


def test_builtin_busybox_and_rootfs_dirs_still_work(xcli, images):
    r = xcli("run", "--rm", "busybox", "sh", "-c", "echo builtin")
    assert r.stdout == "builtin\n"
    r = xcli("run", "--rm", str(images["rootfs"]), "sh", "-c", "echo dir")
    assert r.stdout == "dir\n"
    xcli.fails("run", "--rm", "nosuch/image:1", want="image 'nosuch/image:1' not found")


def test_multilayer_matches_umoci_and_layers_are_in_overlay_form(xcli, multilayer):
    xcli("image", "import", str(multilayer["docker"]))
    layers = xcli.layer_dirs()
    assert layers == sorted(d[7:] for d in multilayer["diff_ids"])
    # The layers as overlayfs wants them.
    second = xcli.store / "layers" / multilayer["diff_ids"][1][7:] / "diff"
    wh = os.lstat(second / "etc/old")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert os.getxattr(second / "a", "trusted.overlay.opaque") == b"y"
    assert not (second / "a/.wh..wh..opq").exists() and not (second / "etc/.wh.old").exists()
    assert os.getxattr(second / "x/attr", "user.xc.test") == b"hello"
    assert os.readlink(second / "lnk/up") == "../../../../outside"
    assert os.stat(second / "hl/new").st_ino == os.stat(second / "hl/link").st_ino
    # The merged view of a container's root equals umoci's unpacked rootfs.
    cid = xcli("run", "-d", "xctest/multi:1", "sleep", "60").stdout.strip()
    merged = xcli.bundles / cid / "rootfs"
    assert os.path.ismount(merged)
    got, want = tree(merged), tree(multilayer["reference"])
    # The mount points of the DNS files every container gets (docs/network.md)
    # are made in its own upper layer, as Docker's init layer holds them.
    for name in ("etc/hostname", "etc/hosts", "etc/resolv.conf"):
        if name not in want:
            got.pop(name, None)
    assert got == want, _diff(got, want)
    assert os.stat(merged / "hl/new").st_ino == os.stat(merged / "hl/link").st_ino
    assert os.getxattr(merged / "x/attr", "user.xc.test") == b"hello"
    # ... and so does what the container sees.
    r = xcli("exec", cid, "sh", "-c",
             "ls /a/b/c | wc -l; cat /etc/old; ls /data; stat -c '%a %u:%g' /usr/bin/suid /shared /own/f /srv;"
             "stat -c '%F %t:%T' /dev2/null /dev2/loop; stat -c %F /dev2/fifo; readlink /lnk/etc; "
             "ls /a; test -e /etc/keep && echo keep")
    assert r.stdout.splitlines() == [
        "0", "back", "y", "z", "4755 0:0", "2775 1000:1000", "644 1234:5678", "1777 0:0",
        "character special file 1:3", "block special file 7:0", "fifo", "/etc", "b", "keep"], r.stderr
    xcli("rm", "-f", cid)


def _diff(got: dict[str, Any], want: dict[str, Any]) -> str:
    lines = []
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            lines.append(f"{k}: xc={got.get(k)} umoci={want.get(k)}")
    return "\n".join(lines[:40])


def test_oci_archive_zstd_layers_by_skopeo(xcli, multilayer, tmp_path):
    zlayout = tmp_path / "zstd"
    skopeo("copy", "--dest-compress-format", "zstd", f"oci:{multilayer['layout']}:latest", f"oci:{zlayout}:latest")
    idx = json.loads((zlayout / "index.json").read_text())
    manifest = json.loads((zlayout / "blobs/sha256" / idx["manifests"][0]["digest"][7:]).read_text())
    assert {d["mediaType"] for d in manifest["layers"]} == {"application/vnd.oci.image.layer.v1.tar+zstd"}
    xcli("image", "import", str(tar_dir(zlayout, tmp_path / "z.tar")), "--name", "zstd:1")
    assert xcli.layer_dirs() == sorted(d[7:] for d in multilayer["diff_ids"])
    assert xcli("run", "--rm", "zstd:1", "cat", "/etc/old").stdout == "back\n"


def test_two_containers_share_the_layers(xcli, images):
    xcli("image", "import", str(images["docker"]))
    layers_before = xcli.layer_dirs()
    size_before = _du(xcli.store)
    a = xcli("run", "-d", "--name", "share-a", "xctest/bb:1", "sleep", "60").stdout.strip()
    b = xcli("run", "-d", "--name", "share-b", "xctest/bb:1", "sleep", "60").stdout.strip()
    assert (a, b) == ("share-a", "share-b")
    assert xcli.layer_dirs() == layers_before
    assert _du(xcli.store) == size_before
    lowers = [_overlay_opts(xcli.bundles / c / "rootfs")["lowerdir"] for c in (a, b)]
    assert lowers[0] == lowers[1]
    # The lower file is the store's file itself: same device and inode
    # through both overlays' lower layer (overlayfs reports the lower's
    # inode number for an unmodified file of a single lower layer).
    store_bb = xcli.store / "layers" / layers_before[0] / "diff/bin/busybox"
    inos = {os.stat(xcli.bundles / c / "rootfs/bin/busybox").st_ino for c in (a, b)}
    assert inos == {os.stat(store_bb).st_ino}
    # Writes go to each container's upper layer only.
    xcli("exec", a, "sh", "-c", "echo mine > /etc/hostname-a; rm /bin/ls")
    assert xcli("exec", b, "sh", "-c", "ls /etc/hostname-a 2>&1; test -e /bin/ls && echo ls-here").stdout \
        .strip().endswith("ls-here")
    assert (xcli.bundles / a / "overlay/upper/etc/hostname-a").read_text() == "mine\n"
    assert not (xcli.store / "layers" / layers_before[0] / "diff/etc/hostname-a").exists()
    assert os.path.exists(store_bb.parent / "ls")
    # The image is in use: it cannot be removed.
    xcli.fails("image", "rm", "xctest/bb:1", want="is used by container(s) share-a, share-b")
    for c in (a, b):
        xcli("rm", "-f", c)
    assert not mounts(xcli.bundles)
    assert os.listdir(xcli.bundles) == []
    out = xcli("image", "rm", "xctest/bb:1").stdout
    assert "deleted" in out
    assert xcli.layer_dirs() == [] and os.listdir(xcli.store / "blobs/sha256") == []


def _du(path: Path) -> int:
    return int(subprocess.run(["du", "-s", "--block-size=1", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def _overlay_opts(mountpoint: Path) -> dict[str, str]:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == str(mountpoint):
                sep = fields.index("-")
                assert fields[sep + 1] == "overlay"
                return dict(kv.partition("=")[::2] for kv in fields[sep + 3].split(","))
    raise AssertionError(f"{mountpoint} is not mounted")


def test_image_rm_keeps_shared_layers_and_untags(xcli, images, multilayer, tmp_path):
    xcli("image", "import", str(images["docker"]))
    # A second image on top of the same base layer (podman's tar of it).
    with tarfile.open(images["docker"]) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        bb = tf.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    extra = LayerBuilder().file("extra", b"1\n").bytes()
    layout = tmp_path / "two"
    write_oci_layout(layout, [bb, extra], compress="")
    xcli("image", "import", str(tar_dir(layout, tmp_path / "two.tar")), "--name", "two:1")
    xcli("image", "import", str(tar_dir(layout, tmp_path / "two.tar")), "--name", "two:alias")
    n = len(xcli.layer_dirs())
    out = xcli("image", "rm", "two:alias").stdout
    assert out.strip() == "untagged two:alias"
    assert len(xcli.layer_dirs()) == n
    xcli("image", "rm", "two:1")
    assert len(xcli.layer_dirs()) == n - 1
    assert xcli("run", "--rm", "xctest/bb:1", "true").returncode == 0
    xcli.fails("image", "rm", "two:1", want="image 'two:1' not found")


def test_user_entrypoint_labels(xcli, images, tmp_path):
    bb = LayerBuilder().tree(images["rootfs"]).bytes()
    cfg = image_config([sha(bb)], User="nobody", Entrypoint=["sh", "-c"], Cmd=["id -u; id -g"],
                       Labels={"org.example.l": "v", "org.xcontainers.libos": "off"},
                       ExposedPorts={"80/tcp": {}}, StopSignal="SIGINT")
    layout = tmp_path / "user"
    write_oci_layout(layout, [bb], config=cfg)
    xcli("image", "import", str(tar_dir(layout, tmp_path / "u.tar")), "--name", "user:1")
    r = xcli("run", "--rm", "user:1")
    assert r.stdout.split() == ["65534", "65534"]
    assert "org.xcontainers.libos ignored" in r.stderr
    r = xcli("run", "--rm", "user:1", "grep Seccomp: /proc/self/status")
    assert r.stdout.split() == ["Seccomp:", "2"], "an image label must not turn the X-LibOS off"
    r = xcli("run", "--rm", "--entrypoint", "echo", "user:1", "plain")
    assert r.stdout == "plain\n"
    cid = xcli("run", "-d", "user:1", "sleep 60").stdout.strip()
    cfg_json = json.loads((xcli.bundles / cid / "config.json").read_text())
    ann = cfg_json["annotations"]
    assert ann["org.example.l"] == "v" and ann["org.opencontainers.image.exposedPorts"] == "80/tcp"
    assert ann["org.opencontainers.image.stopSignal"] == "SIGINT" and "org.xcontainers.libos" not in ann
    assert cfg_json["process"]["user"] == {"uid": 65534, "gid": 65534}
    xcli("rm", "-f", cid)


def test_kill9_of_xc_leaves_nothing_after_rm_or_gc(xcli, images):
    xcli("image", "import", str(images["docker"]))
    # 1. xc killed while its container runs: `xc rm -f` cleans everything.
    p = subprocess.Popen([XC, "run", "--name", "k9", "xctest/bb:1", "sleep", "60"], env=xcli.env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while "running" not in xcli("ps").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert os.path.ismount(xcli.bundles / "k9/rootfs")
    xcli("rm", "-f", "k9")
    assert not (xcli.bundles / "k9").exists()
    assert not mounts(xcli.bundles)
    # 2. xc killed after mounting, before the container existed: the next
    #    xc command (here `xc ps`) removes the stale mount and bundle.
    code = ("import os, signal\n"
            "from xcontainers import imagerun\n"
            f"b = {str(xcli.bundles / 'k9b')!r}\n"
            "os.makedirs(b)\n"
            f"imagerun.mount_rootfs(imagerun.find('xctest/bb:1'), b, {str(xcli.root)!r})\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    r = xcli.python(code)
    assert r.returncode == -9, r.stderr
    assert os.path.ismount(xcli.bundles / "k9b/rootfs")
    xcli("ps")
    assert not (xcli.bundles / "k9b").exists()
    assert not mounts(xcli.bundles)
    # 3. the same, cleaned by `xc rm ID` of the container that never was.
    r = xcli.python(code.replace("k9b", "k9c"))
    assert r.returncode == -9
    xcli("rm", "k9c")
    assert not (xcli.bundles / "k9c").exists()
    assert not mounts(xcli.bundles)


def test_system_prune(xcli, images):
    xcli("image", "import", str(images["docker"]))
    (xcli.store / "tmp/import-999999-1-dead").mkdir()
    (xcli.store / "tmp/partial").mkdir()
    (xcli.store / "tmp/partial/abc.part").write_bytes(b"x")
    out = xcli("system", "prune").stdout
    assert "import-999999-1-dead" in out and "abc.part" in out
    assert os.listdir(xcli.store / "tmp") == ["partial"] and os.listdir(xcli.store / "tmp/partial") == []
    assert len(xcli.layer_dirs()) == 1  # a named image stays


def test_snapshot_helper_sees_everything(xcli, images):
    """The bad-input tests' snapshot must see a change to any store file."""
    xcli("image", "import", str(images["docker"]))
    before = snapshot(xcli.store, xcli.bundles)
    xcli("image", "import", str(images["oci"]), "--name", "again:1")
    assert snapshot(xcli.store, xcli.bundles) != before


# -- bad input: one-line errors, nothing left behind -----------------------------


def _bad_layout(tmp: Path, case: str, outside: Path) -> Path:
    """An OCI archive that is wrong in the way *case* names."""
    ok = LayerBuilder().dir("etc").file("etc/hello", b"hi\n").bytes()
    layout = tmp / "layout"
    kw: dict[str, Any] = {}
    layers = [ok]
    if case == "blob-digest":
        def flip(kind: str, data: bytes) -> bytes:
            if kind == "layer":
                i = data.index(b"hi\n")
                return data[:i] + b"HI\n" + data[i + 3:]
            return data
        kw = {"compress": "", "blob_hook": flip}
    elif case == "diff-id":
        layers = [ok, LayerBuilder().file("second", b"2\n").bytes()]
        kw = {"config": image_config([sha(ok), "sha256:" + "ab" * 32])}
    elif case == "media-type":
        kw = {"layer_media_type": "application/vnd.example.layer.v1.tar+lz4"}
    elif case == "no-amd64":
        kw = {"index_platforms": [("linux", "arm64"), ("windows", "amd64")]}
    elif case == "arch":
        kw = {"config": image_config([sha(ok)], platform=("linux", "arm64"))}
    elif case == "dotdot":
        layers = [ok, LayerBuilder().file("../../escaped", b"x").bytes()]
    elif case == "absolute":
        layers = [ok, LayerBuilder().file(str(outside / "abs"), b"x").bytes()]
    elif case == "symlink":
        layers = [ok, LayerBuilder().symlink("lnk", str(outside)).file("lnk/through", b"x").bytes()]
    elif case == "symlink-relative":
        layers = [ok, LayerBuilder().dir("d").symlink("d/up", "../../../../../../../../..")
                  .file("d/up/tmp/through", b"x").bytes()]
    elif case == "hardlink-out":
        layers = [ok, LayerBuilder().hardlink("passwd", "../../../../etc/passwd").bytes()]
    elif case == "hardlink-abs":
        layers = [ok, LayerBuilder().hardlink("passwd", "/etc/passwd").bytes()]
    elif case == "hardlink-symlink":
        layers = [ok, LayerBuilder().symlink("s", str(outside)).hardlink("h", "s/target").bytes()]
    elif case == "overlay-xattr":
        layers = [ok, LayerBuilder().file("f", b"x", xattrs={"trusted.overlay.redirect": b"/etc"}).bytes()]
    write_oci_layout(layout, layers, **kw)
    return tar_dir(layout, tmp / "bad.tar")


BAD_LAYOUTS = {
    "blob-digest": "blob digest mismatch",
    "diff-id": "does not match the config's rootfs.diff_ids entry sha256:abab",
    "media-type": "layer media type 'application/vnd.example.layer.v1.tar+lz4': not supported",
    "no-amd64": "no linux/amd64 image in the index (it has: linux/arm64, windows/amd64)",
    "arch": "the image is for linux/arm64",
    "dotdot": "'..' would leave the layer",
    "absolute": "absolute path",
    "symlink": "'lnk' is a symlink or not a directory; refusing to write through it",
    "symlink-relative": "'d/up' is a symlink or not a directory",
    "hardlink-out": "'..' would leave the layer",
    "hardlink-abs": "absolute path",
    "hardlink-symlink": "'s' is a symlink or not a directory",
    "overlay-xattr": "xattr 'trusted.overlay.redirect' is overlayfs metadata",
}


@pytest.mark.parametrize("case", sorted(BAD_LAYOUTS))
def test_bad_archive_is_refused_and_leaves_nothing(xcli, images, tmp_path, case):
    xcli("image", "import", str(images["docker"]))  # a store that exists
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target").write_text("keep\n")
    bad = _bad_layout(tmp_path / "bad", case, outside)
    before = snapshot(xcli.store, xcli.bundles, [outside])
    passwd = Path("/etc/passwd").stat()
    err = xcli.fails("image", "import", str(bad), "--name", "bad:1", want=BAD_LAYOUTS[case])
    assert str(bad) in err or "entry" in err or "layer" in err
    assert snapshot(xcli.store, xcli.bundles, [outside]) == before
    assert Path("/etc/passwd").stat().st_nlink == passwd.st_nlink
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/through").exists()
    xcli.fails("run", "--rm", "bad:1", want="image 'bad:1' not found")


def test_corrupt_and_truncated_archives(xcli, images, tmp_path):
    xcli("image", "import", str(images["oci"]))
    before = snapshot(xcli.store, xcli.bundles)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(100_000))
    xcli.fails("image", "import", str(junk), want="not a readable tar archive")
    xcli.fails("image", "import", str(tmp_path / "missing.tar"), want="no such file")
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w") as tf:
        tf.addfile(tarfile.TarInfo("README"))
    xcli.fails("image", "import", str(empty), want="neither an OCI image layout")
    data = images["docker"].read_bytes()
    for cut in (len(data) // 2, len(data) - 3000, 700):
        t = tmp_path / f"cut{cut}.tar"
        t.write_bytes(data[:cut])
        err = xcli.fails("image", "import", str(t), want=str(t))
        assert "truncated" in err or "corrupt" in err or "not a readable tar" in err, err
    # A gzip layer cut short inside an otherwise whole layout.
    layout = tmp_path / "gz"
    write_oci_layout(layout, [LayerBuilder().file("f", os.urandom(50_000)).bytes()],
                     blob_hook=lambda kind, d: d[: len(d) // 2] + bytes(len(d) - len(d) // 2) if kind == "layer" else d)
    xcli.fails("image", "import", str(tar_dir(layout, tmp_path / "gz.tar")), want="corrupt gzip data")
    assert snapshot(xcli.store, xcli.bundles) == before


def test_missing_images(xcli):
    xcli.fails("run", "--rm", "localhost/nothing:1", want="image 'localhost/nothing:1' not found")
    xcli.fails("image", "rm", "nothing:1", want="image 'nothing:1' not found")
    xcli.fails("image", "inspect", "nothing:1", want="image 'nothing:1' not found")
    xcli.fails("image", "import", "/nonexistent.tar", want="/nonexistent.tar: no such file")


def test_layout_directory_and_gzipped_archive(xcli, images, multilayer, tmp_path):
    # An OCI layout directory (skopeo's oci:DIR) imports as it is.
    out = xcli("image", "import", str(multilayer["layout"]), "--name", "from-dir:1").stdout
    assert "from-dir:1" in out and "(3 layers)" in out
    # `docker save | gzip`.
    gz = tmp_path / "bb.tar.gz"
    subprocess.run(f"gzip -c {images['docker']} > {gz}", shell=True, check=True)
    assert "localhost/xctest/bb:1" in xcli("image", "import", str(gz)).stdout
    assert xcli("run", "--rm", "from-dir:1", "cat", "/data/y").stdout == "y\n"


def test_concurrent_imports_and_runs(xcli, images):
    procs = [subprocess.Popen([XC, "image", "import", str(images["docker" if i % 2 else "oci"])], env=xcli.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), results
    assert len(xcli.layer_dirs()) == 1 and os.listdir(xcli.store / "tmp") == []
    procs = [subprocess.Popen([XC, "run", "--rm", "xctest/bb:1", "echo", str(i)], env=xcli.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    outs = sorted(p.communicate(timeout=120)[0] for p in procs)
    assert outs == ["0\n", "1\n", "2\n", "3\n"]
    assert os.listdir(xcli.bundles) == [] and not mounts(xcli.bundles)
