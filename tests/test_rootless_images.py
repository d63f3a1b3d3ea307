"""Images for rootless `xc`: import, pull and run stored images as a real
unprivileged user.

The users are test_rootless.py's (scripts/setup-rootless): ``xctest`` has
65536 subordinate ids in /etc/subuid and /etc/subgid, ``xcnosub`` none.
Each runs the xcontainers package copied where it can read it, with
Debian's /usr/bin/python3, and each test gives it a store, bundles and a
state root of its own (XC_STORAGE, XC_BUNDLES, XC_ROOT in a directory it
owns).  The images are the ones test_images.py uses: podman's
docker-archive and oci-archive of the busybox rootfs, and a three-layer
image with whiteouts, opaque directories, hard links, devices, setuid
files and files of other owners (Python's tarfile into an OCI layout,
converted by skopeo to a docker-archive).

What a rootless container sees of an image is compared with what root's
`xc run` shows of the same image (differential: one listing of the
container's whole root, owners as seen inside), with the overlay mounted
by the kernel and by fuse-overlayfs; the expected differences are the ones
docs/rootless.md names (device nodes skipped; one id only: every file is
root's).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROOT, build_busybox_rootfs, need_root
from imagelib import LayerBuilder, Xc, files, image_config, podman_images, sha, skopeo, tar_dir, write_oci_layout
from test_images import BAD_LAYOUTS, _bad_layout, multilayer_layers
from test_rootless import NOSUB, PYTHON, USER, Env, Res, User, _chown_tree, _rmtree, rootless_env

pytestmark = pytest.mark.root

# What the differential listing shows of every path of the container's root.
LISTING = "find / -xdev | sort | xargs stat -c '%n|%F|%a|%u:%g|%s|%h|%N'"
# Mount points of the container's own file systems and the files its
# network setup binds: not the image's.
_NOT_IMAGE = ("/proc", "/sys", "/dev", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


@pytest.fixture(scope="module")
def renv() -> Iterator[Env]:
    """As test_rootless.py's env: the users, the package where they can read
    it, launchers for xc and xc-runtime."""
    with rootless_env("xc-rlimages-", ("skopeo", "podman")) as e:
        yield e


@pytest.fixture(scope="module")
def imgs(renv: Env, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The test images, readable by the users, and the multi-layer one's layout."""
    work = tmp_path_factory.mktemp("rli")
    pm = podman_images(tmp_path_factory.mktemp("pm"))  # podman wants a short runroot
    out = renv.top / "images"
    out.mkdir()
    layout = out / "ml-layout"
    info = write_oci_layout(layout, multilayer_layers(pm["rootfs"]), ref="latest")
    skopeo("copy", f"oci:{layout}:latest", f"docker-archive:{out / 'ml-docker.tar'}:xctest/multi:1")
    tar_dir(layout, out / "ml-oci.tar")
    for name in ("docker", "oci"):
        shutil.copy(pm[name], out / f"bb-{name}.tar")
    # an image whose config names a user, a missing WorkingDir and an entrypoint
    bb = LayerBuilder().tree(pm["rootfs"]).bytes()
    ucfg = image_config([sha(bb)], User="nobody", Entrypoint=["sh", "-c"], Cmd=["id -u; id -g; pwd"],
                        WorkingDir="/made/by/runtime")
    ulayout = work / "user-layout"
    write_oci_layout(ulayout, [bb], config=ucfg)
    tar_dir(ulayout, out / "user.tar")
    subprocess.run(["chmod", "-R", "a+rX", str(out)], check=True)
    return {"docker": out / "bb-docker.tar", "oci": out / "bb-oci.tar", "ml-docker": out / "ml-docker.tar",
            "ml-oci": out / "ml-oci.tar", "user": out / "user.tar", "rootfs": pm["rootfs"], **info}


def _user_env(env: Env, user: User) -> dict[str, str]:
    return {"PATH": f"{env.bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": f"/home/{user.name}",
            "XDG_RUNTIME_DIR": str(user.run), "XDG_DATA_HOME": str(user.data), "LANG": "C.UTF-8",
            "USER": user.name, "LOGNAME": user.name}


class Space:
    """A user's own store, bundles and state root for one test."""

    def __init__(self, env: Env, user: User) -> None:
        self.env, self.user = env, user
        self.base = env.top / f"space-{user.name}-{uuid.uuid4().hex[:8]}"
        self.base.mkdir()
        os.chown(self.base, user.uid, user.gid)
        self.store = self.base / "storage"
        self.bundles = self.base / "bundles"
        self.state = self.base / "state"
        self.vars = {"XC_STORAGE": str(self.store), "XC_BUNDLES": str(self.bundles), "XC_ROOT": str(self.state)}

    def xc(self, *args: str, extra: dict[str, str] | None = None, detached: bool = False,
           timeout: float = 120) -> Res:
        kv = [f"{k}={v}" for k, v in {**self.vars, **(extra or {})}.items()]
        return self.env.as_user(self.user, "env", *kv, str(self.env.bin / "xc"), *args, detached=detached,
                                timeout=timeout)

    def ok(self, *args: str, **kw: Any) -> Res:
        r = self.xc(*args, **kw)
        assert r.rc == 0, f"xc {' '.join(args)} as {self.user.name} failed ({r.rc}): {r.err}"
        return r

    def fails(self, *args: str, want: str, **kw: Any) -> str:
        r = self.xc(*args, **kw)
        assert r.rc != 0, f"xc {' '.join(args)} should have failed: {r.out}"
        err = r.err.strip()
        assert len(err.splitlines()) == 1, f"not a one-line error: {err!r}"
        assert want in err, f"{want!r} not in {err!r}"
        return err

    def popen(self, *args: str, extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen([str(self.env.bin / "xc"), *args], user=self.user.uid, group=self.user.gid,
                                extra_groups=[], env={**_user_env(self.env, self.user), **self.vars, **(extra or {})},
                                cwd=str(self.env.top), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        """*code* run as the user with the package on the path."""
        lib = self.env.lib  # type: ignore[attr-defined]
        return subprocess.run([PYTHON, "-I", "-c", f"import sys; sys.path.insert(0, {str(lib)!r})\n" + code],
                              user=self.user.uid, group=self.user.gid, extra_groups=[],
                              env={**_user_env(self.env, self.user), **self.vars}, cwd=str(self.env.top),
                              capture_output=True, text=True, timeout=60)

    def form(self) -> dict[str, Any]:
        return json.loads((self.store / "storage.json").read_text())  # type: ignore[no-any-return]

    def layer_dirs(self) -> list[str]:
        d = self.store / "layers"
        return sorted(os.listdir(d)) if d.exists() else []

    def containers(self) -> list[str]:
        return sorted(os.listdir(self.bundles)) if self.bundles.exists() else []

    def states(self) -> list[str]:
        return sorted(os.listdir(self.state)) if self.state.exists() else []

    def cleanup(self) -> None:
        for cid in self.states():
            self.xc("rm", "-f", cid)
        _rmtree(self.base)


@pytest.fixture
def space(renv: Env) -> Iterator[Any]:
    made: list[Space] = []

    def make(name: str = USER) -> Space:
        made.append(Space(renv, renv.user(name)))
        return made[-1]

    yield make
    for s in made:
        s.cleanup()


def _mine(uid: int, *tokens: str) -> list[str]:
    """Live processes of *uid* whose command line names one of *tokens*
    (other engineers run xctest's containers on this machine too)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{pid}")
            stat_line = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if st.st_uid == uid and stat_line[stat_line.rindex(")") + 2] not in "ZX" and any(t in cmd for t in tokens):
            out.append(f"{pid} {cmd}")
    return out


def _wait_gone(uid: int, *tokens: str, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = _mine(uid, *tokens)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _du(path: Path) -> int:
    return int(subprocess.run(["du", "-s", "--block-size=1", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


# -- import and run ----------------------------------------------------------------


@pytest.mark.parametrize("who", [USER, NOSUB])
def test_import_both_formats_and_run(space, imgs, who):
    """podman's docker-archive and oci-archive: one image, one layer, the
    image's Env/WorkingDir/Cmd; with and without the X-LibOS."""
    sp = space(who)
    out = sp.ok("image", "import", str(imgs["docker"])).out
    assert "localhost/xctest/bb:1" in out
    out2 = sp.ok("image", "import", str(imgs["oci"]), "--name", "bb-oci:2").out
    assert out.split()[1] == out2.split()[1]
    assert len(sp.layer_dirs()) == 1
    form = sp.form()
    assert form["rootless"] and form["uid"] == sp.user.uid
    assert form["whiteouts"] == "chardev" and form["opaque"] == "user.overlay.opaque"
    assert form["owners"] == ("ids" if who == USER else "xattr")
    ls = sp.ok("image", "ls").out
    assert "localhost/xctest/bb:1" in ls and "bb-oci:2" in ls
    for extra in ([], ["--no-libos"]):
        r = sp.ok("run", "--rm", "--network", "none", *extra, "xctest/bb:1")
        assert r.out == "hello from /work\n", r.err
        r = sp.ok("run", "--rm", "--network", "none", *extra, "-e", "GREETING=bye", "bb-oci:2", "sh", "-c",
                  "echo $GREETING; pwd; id -u; awk '/^Seccomp:/ {print $2}' /proc/self/status")
        assert r.out.split() == ["bye", "/work", "0", "0" if extra else "2"], r.err
    assert sp.containers() == [] and sp.states() == []
    # The store is the user's, mode 0700: its layers hold the images' setuid files.
    st = os.stat(sp.store)
    assert (st.st_uid, st.st_mode & 0o777) == (sp.user.uid, 0o700)


def _listing(text: str) -> dict[str, str]:
    """path -> "type|mode|owner|size|links|%N" (size and links of
    directories dropped: they depend on the file system serving them)."""
    out = {}
    for line in text.splitlines():
        name, kind, mode, owner, size, links, target = line.split("|", 6)
        if name in _NOT_IMAGE or name.startswith(tuple(p + "/" for p in _NOT_IMAGE)):
            continue
        if kind == "directory":
            size = links = "-"
        out[name] = "|".join((kind, mode, owner, size, links, target))
    return out


def _diff(a: dict[str, str], b: dict[str, str]) -> str:
    return "\n".join(f"{k}: {a.get(k)} != {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))[:3000]


@pytest.fixture(scope="module")
def root_view(imgs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What root's `xc run` shows of the multi-layer image."""
    x = Xc(tmp_path_factory.mktemp("root-xc"))
    try:
        x("image", "import", str(imgs["ml-docker"]))
        r = x("run", "--rm", "--network", "none", "xctest/multi:1", "sh", "-c", LISTING)
        return _listing(r.stdout)
    finally:
        x.cleanup()


VIEWS = [(USER, "auto", "chardev"), (USER, "fuse", "chardev"), (USER, "auto", "files"),
         (NOSUB, "auto", "chardev"), (NOSUB, "fuse", "chardev")]


@pytest.mark.parametrize("who,driver,whiteouts", VIEWS, ids=["-".join(v) for v in VIEWS])
def test_multilayer_view_matches_root(space, imgs, root_view, who, driver, whiteouts):
    """The container's whole root, as a rootless container sees it, against
    root's `xc run` of the same image: whiteouts, opaque directories, hard
    links, setuid/setgid/sticky modes, owners.  Expected differences: the
    two device nodes are skipped (with a warning), and a user without
    subordinate ids sees every file as root's."""
    if driver == "fuse" or whiteouts == "files":
        if shutil.which("fuse-overlayfs") is None:
            pytest.skip("fuse-overlayfs is not installed (make setup installs it)")
    sp = space(who)
    if whiteouts == "files":
        # A store made where the kernel refuses the whiteout device: the form
        # the store records decides (imagestore.py).
        sp.store.mkdir(mode=0o700)
        sp.store.joinpath("storage.json").write_text(json.dumps({
            "version": 1, "rootless": True, "uid": sp.user.uid, "owners": "ids", "whiteouts": "files",
            "opaque": "user.overlay.opaque", "devices": False, **_maps(sp)}))
        _chown_tree(sp.store, sp.user.uid, sp.user.gid)
    r = sp.ok("image", "import", str(imgs["ml-docker"]))
    assert "dev2/null: device node 1:3 skipped" in r.err and "dev2/loop: device node 7:0 skipped" in r.err
    second = sp.store / "layers" / imgs["diff_ids"][1][7:] / "diff"
    assert os.getxattr(second / "a", "user.overlay.opaque") == b"y"
    if whiteouts == "files":
        assert (second / "etc/.wh.old").is_file() and (second / "a/.wh..wh..opq").is_file()
    else:
        wh = os.lstat(second / "etc/old")
        assert wh.st_rdev == 0 and oct(wh.st_mode)[:4] == "0o20"
    if who == USER:
        # On disk: the ids of the user's range (container id N = host start + N - 1).
        start = sp.form()["uid_maps"][1]["hostID"]
        st = os.stat(second / "own/f")
        assert (st.st_uid, st.st_gid) == (start + 1233, start + 5677)
        assert os.stat(second / "usr/bin/suid").st_uid == sp.user.uid  # container root
    else:
        st = os.stat(second / "own/f")
        assert (st.st_uid, st.st_gid) == (sp.user.uid, sp.user.gid)
        assert os.getxattr(second / "own/f", "user.containers.override_stat") == b"1234:5678:0644"
    r = sp.ok("run", "--rm", "--network", "none", "xctest/multi:1", "sh", "-c",
              LISTING + "; awk '$5 == \"/\" {print $(NF-2)}' /proc/self/mountinfo >&2",
              extra={"XC_ROOTLESS_OVERLAY": driver})
    fstype = r.err.split()[-1]
    assert fstype == ("fuse.fuse-overlayfs" if driver == "fuse" or whiteouts == "files" else "overlay"), r.err
    got = _listing(r.out)
    want = dict(root_view)
    assert want.pop("/dev2/null").startswith("character special file|666|0:0")
    assert want.pop("/dev2/loop").startswith("block special file|660|0:0")
    if who == NOSUB:
        want = {k: "|".join(f if i != 2 else "0:0" for i, f in enumerate(v.split("|"))) for k, v in want.items()}
    assert got == want, _diff(got, want)
    assert got["/usr/bin/suid"].startswith("regular file|4755|")
    assert sp.containers() == []


def _maps(sp: Space) -> dict[str, Any]:
    from xcontainers.rootless import SUBGID, SUBUID, subid_ranges

    (us, un), (gs, gn) = subid_ranges(SUBUID, sp.user.uid, sp.user.name)[0], \
        subid_ranges(SUBGID, sp.user.uid, sp.user.name)[0]
    return {"uid_maps": [{"containerID": 0, "hostID": sp.user.uid, "size": 1},
                         {"containerID": 1, "hostID": us, "size": min(un, 65536)}],
            "gid_maps": [{"containerID": 0, "hostID": sp.user.gid, "size": 1},
                         {"containerID": 1, "hostID": gs, "size": min(gn, 65536)}]}


def test_image_config_user_and_workdir(space, imgs):
    """User resolved in the image's /etc/passwd read from the layers,
    Entrypoint + Cmd, a WorkingDir the runtime makes inside."""
    sp = space(USER)
    sp.ok("image", "import", str(imgs["user"]), "--name", "user:1")
    r = sp.ok("run", "--rm", "--network", "none", "user:1")
    assert r.out.split() == ["65534", "65534", "/made/by/runtime"], r.err
    r = sp.ok("run", "--rm", "--network", "none", "--entrypoint", "echo", "user:1", "plain")
    assert r.out == "plain\n"
    # Without subordinate ids only container root exists: the image's user
    # cannot be mapped, and the runtime says so.
    nosub = space(NOSUB)
    nosub.ok("image", "import", str(imgs["user"]), "--name", "user:1")
    nosub.fails("run", "--rm", "--network", "none", "user:1", want="process.user.uid: 65534 is not mapped")
    assert nosub.containers() == [] and nosub.states() == []


# -- networks ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["none", "host", "slirp4netns", "pasta"])
@pytest.mark.parametrize("libos", ["libos", "nolibos"])
def test_networks(space, imgs, mode, libos):
    if mode in ("slirp4netns", "pasta") and shutil.which(mode) is None:
        pytest.skip(f"{mode} is not installed (make setup installs it)")
    sp = space(USER)
    sp.ok("image", "import", str(imgs["docker"]))
    extra = ["--no-libos"] if libos == "nolibos" else []
    r = sp.xc("run", "--rm", "--network", mode, *extra, "xctest/bb:1", "sh", "-c",
              "echo $GREETING; ip -o link | grep -v ': lo:' | wc -l")
    assert r.rc == 0, r.err
    hello, links = r.out.split()
    assert hello == "hello"
    if mode == "none":
        assert links == "0"
    else:
        assert int(links) >= 1  # tap0 of the user-mode stack, or the host's interfaces
    assert sp.containers() == []


@pytest.mark.parametrize("mode", ["slirp4netns", "pasta"])
def test_published_port(space, imgs, mode):
    """A port of a detached container of an image, published on the host's
    loopback by the user-mode stack."""
    import socket

    if shutil.which(mode) is None:
        pytest.skip(f"{mode} is not installed (make setup installs it)")
    sp = space(USER)
    sp.ok("image", "import", str(imgs["docker"]))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sp.ok("run", "-d", "--name", "web", "--network", mode, "-p", f"{port}:80", "xctest/bb:1", "sh", "-c",
          "echo $GREETING-from-image | nc -l -p 80", detached=True)
    data = b""
    deadline = time.monotonic() + 15
    while not data and time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                data = c.recv(100)
        except OSError:
            time.sleep(0.1)
    sp.ok("rm", "-f", "web")
    assert data == b"hello-from-image\n"
    assert not _wait_gone(sp.user.uid, str(sp.base))
    assert sp.containers() == [] and sp.states() == []


# -- sharing, removal ----------------------------------------------------------------


def test_two_containers_share_the_layers(space, imgs):
    sp = space(USER)
    sp.ok("image", "import", str(imgs["docker"]))
    layers = sp.layer_dirs()
    size = _du(sp.store)
    for name in ("share-a", "share-b"):
        sp.ok("run", "-d", "--name", name, "--network", "none", "xctest/bb:1", "sleep", "600", detached=True)
    assert sp.layer_dirs() == layers and _du(sp.store) == size
    store_bb = sp.store / "layers" / layers[0] / "diff/bin/busybox"
    # Both roots show the store's own file (overlayfs reports the lower
    # layer's inode for an unmodified file when all layers share a file system).
    for name in ("share-a", "share-b"):
        r = sp.ok("exec", name, "stat", "-c", "%i", "/bin/busybox")
        assert int(r.out) == os.stat(store_bb).st_ino
    # Writes go to each container's upper layer.
    sp.ok("exec", "share-a", "sh", "-c", "echo mine > /etc/mine; rm /bin/ls; mkdir -p /home/u/deep")
    r = sp.ok("exec", "share-b", "sh", "-c", "test -e /etc/mine || echo no-mine; test -e /bin/ls && echo ls")
    assert r.out.split() == ["no-mine", "ls"]
    upper = sp.bundles / "share-a/overlay/upper"
    assert (upper / "etc/mine").read_text() == "mine\n"
    # What a container with CAP_CHOWN leaves: files of its user 1000 (a
    # subordinate id on the host) in a directory only that id may enter.
    start = sp.form()["uid_maps"][1]["hostID"]
    (upper / "home/u/deep/f").write_text("x\n")
    _chown_tree(upper / "home/u", start + 999, start + 999)
    os.chmod(upper / "home/u", 0o700)
    assert not (store_bb.parent.parent / "etc/mine").exists() and (store_bb.parent / "ls").exists()
    sp.fails("image", "rm", "xctest/bb:1", want="is used by container(s) share-a, share-b")
    for name in ("share-a", "share-b"):
        sp.ok("rm", "-f", name)
    # The user could not remove /home/u (a subordinate id's, mode 0700) on
    # its own: xc rm did, in a user namespace.
    assert sp.containers() == [] and sp.states() == []
    assert not _wait_gone(sp.user.uid, str(sp.base), "sleep 600")
    out = sp.ok("image", "rm", "xctest/bb:1").out
    assert "deleted layer" in out
    assert sp.layer_dirs() == [] and os.listdir(sp.store / "blobs/sha256") == []


@pytest.mark.parametrize("driver", ["kernel", "fuse"])
def test_kill9_of_xc_then_rm_or_gc_leaves_nothing(space, imgs, driver):
    """The overlay is mounted inside the container's namespaces: an `xc`
    killed by SIGKILL leaves a running container (`xc rm -f` removes it, and
    with it the fuse-overlayfs daemon), or a bundle whose container never
    existed (the next `xc` command removes it)."""
    if driver == "fuse" and shutil.which("fuse-overlayfs") is None:
        pytest.skip("fuse-overlayfs is not installed (make setup installs it)")
    sp = space(USER)
    sp.ok("image", "import", str(imgs["docker"]))
    before_mounts = _mounts_under(sp.base)
    p = sp.popen("run", "--name", "k9", "--network", "none", "xctest/bb:1", "sleep", "601",
                 extra={"XC_ROOTLESS_OVERLAY": driver})
    deadline = time.monotonic() + 30
    while "running" not in sp.xc("ps").out:
        assert time.monotonic() < deadline and p.poll() is None, "the container did not start"
        time.sleep(0.1)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert "running" in sp.xc("ps").out
    if driver == "fuse":
        assert [p for p in _mine(sp.user.uid, str(sp.base)) if "fuse-overlayfs" in p], \
            "the fuse daemon serves the container's root"
    assert _mounts_under(sp.base) == before_mounts, "nothing of the container is mounted on the host"
    sp.ok("rm", "-f", "k9")
    assert not _wait_gone(sp.user.uid, str(sp.base), "sleep 601")
    assert sp.containers() == [] and sp.states() == []
    # xc killed after preparing the bundle, before the container existed.
    code = ("import os, signal\n"
            "from xcontainers import imagerun\n"
            f"b = {str(sp.bundles / 'k9b')!r}\n"
            "os.makedirs(b)\n"
            f"imagerun.rootless_overlay(imagerun.find('xctest/bb:1'), b, {str(sp.state)!r})\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    r = sp.python(code)
    assert r.returncode == -9, r.stderr
    assert sp.containers() == ["k9b"]
    sp.ok("ps")
    assert sp.containers() == []
    r = sp.python(code.replace("k9b", "k9c"))
    assert r.returncode == -9
    sp.ok("rm", "k9c")
    assert sp.containers() == []


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f if str(path) in line)


# -- pull -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry(imgs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from test_registry import Registry

    reg = Registry(tmp_path_factory.mktemp("registry"))
    try:
        reg.push(f"docker-archive:{imgs['docker']}", "test/busybox:oci", "--format", "oci")
        reg.push(f"docker-archive:{imgs['ml-docker']}", "test/multi:v2s2", "--format", "v2s2")
        yield reg
    finally:
        reg.stop()


@pytest.mark.parametrize("who", [USER, NOSUB])
def test_pull_and_run(space, registry, who):
    sp = space(who)
    ref = f"{registry.host}/test/busybox:oci"
    r = sp.ok("pull", ref)
    rec = json.loads(sp.ok("image", "inspect", ref).out)
    assert rec["id"] == r.out.strip()
    assert sp.ok("run", "--rm", "--network", "none", ref).out == "hello from /work\n"
    r = sp.ok("pull", "-q", f"{registry.host}/test/multi:v2s2")
    assert "device node 1:3 skipped" in r.err
    r = sp.ok("run", "--rm", "--network", "none", f"{registry.host}/test/multi:v2s2", "sh", "-c",
              "cat /etc/old; ls /data; stat -c '%a %u:%g' /own/f")
    assert r.out.split() == ["back", "y", "z", "644", "1234:5678" if who == USER else "0:0"], r.err
    assert os.listdir(sp.store / "tmp") in ([], ["partial"])
    sp.fails("pull", f"{registry.host}/test/nothing:1", want="test/nothing")
    assert os.listdir(sp.store / "tmp") in ([], ["partial"])


# -- bad input leaves the user's store as it was -------------------------------------


def _snapshot(sp: Space, outside: Path) -> dict[str, Any]:
    return {"store": files(sp.store), "bundles": files(sp.bundles), "outside": files(outside),
            "mounts": _mounts_under(sp.base)}


BAD_CASES = [(USER, c) for c in sorted(BAD_LAYOUTS)] + [(USER, "owner-out-of-range")] + \
    [(NOSUB, c) for c in ("dotdot", "symlink", "hardlink-out", "blob-digest", "overlay-xattr")]


@pytest.mark.parametrize("who,case", BAD_CASES, ids=[f"{w}-{c}" for w, c in BAD_CASES])
def test_bad_archive_leaves_the_store_as_it_was(space, imgs, who, case):
    sp = space(who)
    sp.ok("image", "import", str(imgs["docker"]))
    work = sp.base / "bad"
    work.mkdir()
    outside = sp.base / "outside"  # the user's: an escape would succeed here
    outside.mkdir()
    (outside / "target").write_text("keep\n")
    if case == "owner-out-of-range":
        ok = LayerBuilder().dir("etc").file("etc/hello", b"hi\n").bytes()
        write_oci_layout(work / "layout", [ok, LayerBuilder().file("big-uid", b"x", uid=70000).bytes()])
        bad, want = tar_dir(work / "layout", work / "bad.tar"), "owner 70000:0 is not among the ids the store maps"
    else:
        bad, want = _bad_layout(work, case, outside), BAD_LAYOUTS[case]
    for d in (work, outside):
        _chown_tree(d, sp.user.uid, sp.user.gid)
    before = _snapshot(sp, outside)
    sp.fails("image", "import", str(bad), "--name", "bad:1", want=want)
    assert _snapshot(sp, outside) == before
    assert not (sp.base / "escaped").exists() and not Path("/tmp/through").exists()
    sp.fails("run", "--rm", "--network", "none", "bad:1", want="image 'bad:1' not found")


def test_corrupt_archives_and_dead_work_areas(space, imgs):
    sp = space(USER)
    sp.ok("image", "import", str(imgs["oci"]))
    outside = sp.base / "outside"
    outside.mkdir()
    junk = sp.base / "junk.tar"
    junk.write_bytes(os.urandom(50_000))
    data = imgs["docker"].read_bytes()
    cut = sp.base / "cut.tar"
    cut.write_bytes(data[: len(data) // 2])
    for p in (outside, junk, cut):
        os.chown(p, sp.user.uid, sp.user.gid)
    before = _snapshot(sp, outside)
    sp.fails("image", "import", str(junk), want="not a readable tar archive")
    sp.fails("image", "import", str(cut), want=str(cut))
    sp.fails("image", "import", str(sp.base / "missing.tar"), want="no such file")
    assert _snapshot(sp, outside) == before
    # The work area of an import killed half-way, with files of a
    # subordinate id in a directory the user cannot enter: the next change
    # of the store removes it (in the store's user namespace).
    start = sp.form()["uid_maps"][1]["hostID"]
    dead = sp.store / "tmp/import-999999-1-dead"
    (dead / "layer-1/diff/locked").mkdir(parents=True)
    (dead / "layer-1/diff/locked/f").write_text("x")
    _chown_tree(dead, start + 99, start + 99)
    os.chmod(dead / "layer-1/diff/locked", 0o700)
    out = sp.ok("system", "prune").out
    assert "import-999999-1-dead" in out
    assert os.listdir(sp.store / "tmp") in ([], ["partial"])


# -- stores of the other kind ------------------------------------------------------


def test_root_and_rootless_stores_are_kept_apart(space, imgs, tmp_path):
    sp = space(USER)
    sp.ok("image", "import", str(imgs["docker"]))
    x = Xc(tmp_path / "root")
    x.store = sp.store
    x.env["XC_STORAGE"] = str(sp.store)
    x.fails("image", "import", str(imgs["oci"]), want="was made by uid")
    x.fails("run", "--rm", "--network", "none", "xctest/bb:1", want="was made by uid")
    # A store root made, handed to a user: refused, not misread.
    other = space(USER)
    rootx = Xc(tmp_path / "root2")
    rootx("image", "import", str(imgs["docker"]))
    shutil.copytree(rootx.store, other.store, symlinks=True)
    _chown_tree(other.store, other.user.uid, other.user.gid)
    other.fails("image", "import", str(imgs["oci"]), want="holds layers unpacked by root")
    other.fails("run", "--rm", "--network", "none", "xctest/bb:1", want="holds layers unpacked by root")
    assert other.containers() == []
    # Another user's store.
    nosub = space(NOSUB)
    nosub.vars["XC_STORAGE"] = str(sp.store)
    r = nosub.xc("image", "ls")
    assert r.rc != 0  # mode 0700: not even readable


# -- reading the image's files without mounting it -----------------------------------


def test_layer_view_follows_overlay_rules(tmp_path):
    """imagerun.LayerView (how rootless `xc run` reads /etc/passwd) against
    the kernel's overlayfs mounting the same layers."""
    from xcontainers.imagerun import LayerView

    need_root()
    low, mid, top = (tmp_path / n for n in ("low", "mid", "top"))
    for d in (low, mid, top):
        d.mkdir()
    for d in ("etc", "gone", "opq", "link", "real"):
        (low / d).mkdir()
    (low / "etc/passwd").write_text("low\n")
    (low / "etc/group").write_text("group-low\n")
    (low / "gone/f").write_text("gone\n")
    (low / "opq/hidden").write_text("hidden\n")
    (low / "real/passwd").write_text("via-link\n")
    (mid / "etc").mkdir()
    (mid / "etc/passwd").write_text("mid\n")
    os.mknod(mid / "gone", 0o020000, os.makedev(0, 0))  # whiteout of a directory
    (mid / "opq").mkdir()
    os.setxattr(mid / "opq", "trusted.overlay.opaque", b"y")
    (mid / "opq/kept").write_text("kept\n")
    (top / "link").mkdir()
    os.symlink("../real", top / "link/to")  # relative, through the merged view
    os.symlink("/etc/passwd", top / "abs")
    (top / "etc").mkdir()
    os.mknod(top / "etc/group", 0o020000, os.makedev(0, 0))
    view = LayerView([str(top), str(mid), str(low)])
    got = {p: view.read(p) for p in ("/etc/passwd", "/etc/group", "/gone/f", "/opq/hidden", "/opq/kept",
                                     "/link/to/passwd", "/abs", "/../etc/passwd", "/nothing")}
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={top}:{mid}:{low}", str(mnt)], check=True)
    try:
        want = {}
        for p in got:
            q = mnt / p.lstrip("/").replace("../", "")
            # absolute symlinks resolve in the view, as inside the container
            if p == "/abs":
                q = mnt / "etc/passwd"
            want[p] = q.read_bytes() if q.exists() else None
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    assert got == want
    assert got["/etc/passwd"] == b"mid\n" and got["/gone/f"] is None and got["/opq/hidden"] is None

