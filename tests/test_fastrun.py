"""xc's native `xc run` (src/native/xc/) against the Python one (xc_cli).

The native entry point runs a stored image with the common flags itself
and hands everything else to Python.  Each behaviour here runs both ways --
natively, and with XC_NATIVE=0 (the Python command line, in-process Python
runtime) -- and must give the same result: output, exit code, environment,
working directory, user, hostname, /etc/hosts, the mounts the container
sees, the LibOS on or off, and the bundle's config.json byte for byte.
XC_DEBUG=1 tells which path took a command.  Then: what falls back, the run
templates, and kill -9 of `xc run` at every named point on both paths
(nothing may be left: bundle, trash, overlay mount, state, cgroup, network
namespace, process).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, need_root
from imagelib import XC, LayerBuilder, Xc, image_config, mounts, podman_images, sha, tar_dir, write_oci_layout
from xcontainers import libos_abi

pytestmark = pytest.mark.root

NATIVE = str(ROOT / "src" / "xcontainers" / "xc")


class Cli(Xc):
    """Xc with a choice of path: native (as installed) or python (XC_NATIVE=0)."""

    def run(self, path: str, *args: str, input: str | None = None, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        e = {**self.env, "XC_DEBUG": "1", **(env or {})}
        if path == "python":
            e["XC_NATIVE"] = "0"
        stdin: dict[str, Any] = {"stdin": subprocess.DEVNULL} if input is None else {"input": input.encode()}
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            rc = subprocess.run([NATIVE, *args], stdout=out, stderr=err, timeout=120, env=e, **stdin).returncode
            out.seek(0)
            err.seek(0)
            p = subprocess.CompletedProcess([NATIVE, *args], rc, out.read(), err.read())
        took = "native" if re.search(r"^xc: debug: native path: run ", p.stderr, re.M) else "python"
        assert took == path, f"xc {' '.join(args)} took the {took} path: {p.stderr}"
        p.stderr = "".join(ln + "\n" for ln in p.stderr.splitlines() if not ln.startswith("xc: debug: "))
        if check:
            assert p.returncode == 0, f"xc {' '.join(args)} failed ({p.returncode}): {p.stderr}"
        return p

    def path_of(self, *args: str) -> tuple[str, str]:
        """Which path `xc ARGS` takes, and why (the debug line)."""
        p = subprocess.run([NATIVE, *args], capture_output=True, text=True, timeout=120,
                           env={**self.env, "XC_DEBUG": "1"}, stdin=subprocess.DEVNULL)
        m = re.search(r"^xc: debug: (native|python) path: (.*)$", p.stderr, re.M)
        assert m, p.stderr
        return m.group(1), m.group(2)

    @property
    def trash(self) -> Path:
        return self.bundles.parent / ".xc-trash"


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The busybox test image (Env, WorkingDir /work that the image lacks,
    Cmd), and one with a User, an Entrypoint, labels (one the X-LibOS must
    ignore) and a WorkingDir under a missing parent."""
    need_root()
    base = tmp_path_factory.mktemp("frimg")
    out = podman_images(base)
    bb = LayerBuilder().tree(out["rootfs"]).bytes()
    cfg = image_config([sha(bb)], User="nobody", Entrypoint=["sh", "-c"], Cmd=["id; pwd"],
                       WorkingDir="/srv/app/data", Env=["PATH=/bin:/usr/bin", "A=image", "B=image"],
                       Labels={"org.example.l": "v", "org.xcontainers.libos": "off"})
    write_oci_layout(base / "user", [bb], config=cfg)
    out["user"] = tar_dir(base / "user", base / "user.tar")
    return out


@pytest.fixture
def cli(tmp_path: Path, archives: dict[str, Path]) -> Any:
    x = Cli(tmp_path / "xc")
    x("image", "import", str(archives["docker"]))
    x("image", "import", str(archives["user"]), "--name", "fr/user:1")
    yield x
    x.cleanup()
    _wait_trash_empty(x)


def _ls(d: Path) -> list[str]:
    return os.listdir(d) if d.exists() else []


def _wait_trash_empty(x: Cli, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while x.trash.exists() and os.listdir(x.trash) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not x.trash.exists() or os.listdir(x.trash) == [], os.listdir(x.trash)


# -- the same results both ways ------------------------------------------------------------

PROBE = ("echo args: \"$0\" \"$@\"; env | sort; echo cwd: $(pwd); id; hostname; echo ---hosts; cat /etc/hosts;"
         " echo ---resolv; cat /etc/resolv.conf; echo ---hostname; cat /etc/hostname; echo ---mounts;"
         " awk '{print $2, $3}' /proc/mounts; echo ---status; grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status;"
         " echo ---net; ip -o link | cut -d: -f2; cat /proc/sys/net/ipv4/ping_group_range 2>&1;"
         " echo ---cgroup; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null; ls /")

CASES = [
    ["--rm", "--network", "host", "xctest/bb:1"],
    ["--rm", "--network", "none", "xctest/bb:1", "sh", "-c", PROBE, "zero", "one"],
    ["--rm", "--network", "host", "--hostname", "box", "-e", "GREETING=bye", "-e", "NEW=1", "-e", "HOME",
     "-e", "UNSET_HERE", "xctest/bb:1", "sh", "-c", PROBE],
    ["--rm", "--network=none", "--no-libos", "-m", "64m", "--pids-limit", "32", "xctest/bb:1", "sh", "-c", PROBE],
    ["--rm", "--network", "none", "--no-abom", "--name", "NAME", "localhost/xctest/bb:1", "sh", "-c", PROBE],
    ["--rm", "--network", "host", "fr/user:1"],
    ["--rm", "--network", "host", "-e", "A=run", "fr/user:1", PROBE],
    ["--rm", "--network", "none", "--entrypoint", "", "fr/user:1", "sh", "-c", "pwd; id"],
    ["--rm", "--network", "none", "--entrypoint", "/bin/echo", "fr/user:1", "a", "b"],
    ["--rm", "--network", "host", "xctest/bb:1", "sh", "-c", "echo out; echo err >&2; exit 7"],
    ["--rm", "--network", "host", "xctest/bb:1", "sh", "-c", "kill -9 $$"],
    ["--rm", "--stats", "--network", "none", "xctest/bb:1", "sh", "-c", "echo hi; ls / >/dev/null; exit 3"],
    ["--rm", "--stats", "--no-libos", "--network", "none", "xctest/bb:1", "true"],
]


def _normalize(text: str, cid: str) -> str:
    return text.replace(cid, "CID").replace(cid[:12], "CID")


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c)[:60] for c in CASES])
def test_same_results_both_ways(cli, args):
    results = {}
    for path in ("native", "python"):
        cid = f"fr-{path[:3]}-{uuid.uuid4().hex[:6]}"
        a = [x if x != "NAME" else cid for x in args]
        if "--name" not in a:
            a = ["--name", cid, *a]
        p = cli.run(path, "run", *a, check=False, env={"HOME": "/home/tester"})
        results[path] = (p.returncode, _normalize(p.stdout, cid), _normalize(p.stderr, cid))
    assert results["native"] == results["python"]
    assert not _ls(cli.bundles)
    _wait_trash_empty(cli)
    assert not mounts(cli.bundles, cli.trash)


def test_stdin_reaches_the_program(cli):
    for path in ("native", "python"):
        p = cli.run(path, "run", "--rm", "-i", "--network", "host", "xctest/bb:1", "cat", input="typed\n")
        assert p.stdout == "typed\n"


@pytest.mark.parametrize("network", ["host", "none"])
def test_the_bundle_is_the_same_byte_for_byte(cli, network):
    """Without --rm the bundle stays: config.json, the DNS files and the
    marker of both paths are the same but for the container's id and the
    maker's pid."""
    files = {}
    for path in ("native", "python"):
        cid = f"keep-{path[:3]}-{uuid.uuid4().hex[:6]}"
        cli.run(path, "run", "--name", cid, "--network", network, "-e", "X=1", "--pids-limit", "9",
                "fr/user:1", "true")
        b = cli.bundles / cid
        files[path] = {n: _normalize((b / n).read_text(), cid) for n in
                       ("config.json", "hosts", "hostname", "resolv.conf")}
        marker = json.loads((b / "xc-bundle.json").read_text())
        files[path]["marker"] = [k for k in marker] + [marker["state_root"], marker["image"]]
        # the WorkingDir; the mount targets are in the image's mount-target layer, on top of its own
        assert sorted(os.listdir(b / "overlay/upper")) == ["srv"]
        assert re.search(r"lowerdir=\.\./templates/[0-9a-f]{64}\.init:", " ".join(mounts(b))), mounts(b)
        assert (b / "overlay/upper/srv/app/data").is_dir()
        assert os.path.ismount(b / "rootfs")
        assert "volatile" not in " ".join(mounts(b))
        assert re.search(rf"^{cid}.*\bstopped\b", cli("ps").stdout, re.M)
        cli("rm", cid)
        assert not b.exists()
    assert files["native"] == files["python"]


def test_detached_both_ways(cli):
    for path in ("native", "python"):
        p = cli.run(path, "run", "-d", "--network", "none", "xctest/bb:1", "sleep", "60")
        cid = p.stdout.strip()
        assert re.fullmatch(r"[0-9a-f]{12}", cid), p.stdout
        st = json.loads((cli.root / cid / "state.json").read_text())
        assert st["status"] == "running"
        r = cli("exec", cid, "hostname")
        assert r.stdout == f"{cid}\n"
        cli("rm", "-f", cid)
        assert not (cli.bundles / cid).exists() and not (cli.root / cid).exists()


def test_rm_containers_have_a_volatile_overlay_and_leave_nothing(cli):
    for path in ("native", "python"):
        p = cli.run(path, "run", "--rm", "--network", "host", "xctest/bb:1", "sh", "-c",
                    "grep ' / overlay' /proc/mounts")
        assert "volatile" in p.stdout, p.stdout
    assert not _ls(cli.bundles)
    _wait_trash_empty(cli)


def test_containers_share_nothing(cli):
    """Containers of one image run at the same time: each has pid, ipc, uts,
    mount, cgroup and (none) network namespaces of its own, its own cgroup,
    upper layer and LibOS statistics segment; a later one sees nothing of
    an earlier one's writes."""
    cids = [cli.run("native", "run", "-d", "--network", "none", "xctest/bb:1", "sh", "-c",
                    "touch /tmp/mark-$(hostname); sleep 60").stdout.strip() for _ in range(3)]
    try:
        pids = [json.loads((cli.root / c / "state.json").read_text())["pid"] for c in cids]
        for ns in ("pid", "ipc", "uts", "mnt", "cgroup", "net"):
            ids = [os.readlink(f"/proc/{p}/ns/{ns}") for p in pids] + [os.readlink(f"/proc/self/ns/{ns}")]
            assert len(set(ids)) == len(ids), (ns, ids)
        groups = [open(f"/proc/{p}/cgroup").read() for p in pids]
        assert all(f"/xc/{c}" in g for c, g in zip(cids, groups))
        fd = libos_abi.XC_STATS_FD  # the LibOS's statistics memfd
        stats = [os.readlink(f"/proc/{p}/fd/{fd}") for p in pids]
        assert all(s.startswith("/memfd:") for s in stats)
        assert len({os.stat(f"/proc/{p}/fd/{fd}").st_ino for p in pids}) == 3
        time.sleep(0.3)
        for c in cids:
            assert os.listdir(cli.bundles / c / "overlay/upper/tmp") == [f"mark-{c}"]
    finally:
        for c in cids:
            cli("rm", "-f", c)
    p = cli.run("native", "run", "--rm", "--network", "none", "xctest/bb:1", "ls", "/tmp")
    assert p.stdout == ""


def test_parallel_runs(cli):
    def one(i: int) -> str:
        return cli.run("native", "run", "--rm", "--network", "none", "xctest/bb:1", "hostname").stdout

    with ThreadPoolExecutor(6) as ex:
        names = list(ex.map(one, range(12)))
    assert len(set(names)) == 12
    assert not _ls(cli.bundles)
    _wait_trash_empty(cli)
    assert not cli.root.exists() or os.listdir(cli.root) == []


# -- xc rm -------------------------------------------------------------------------------------


def test_rm_both_ways(cli):
    """`xc rm` natively and on Python: a stopped container, a running one
    without -f (Python's refusal), with -f, one that does not exist; the
    same output and exit status, nothing left."""
    results = {}
    for path in ("native", "python"):
        env = {"XC_NATIVE": "0"} if path == "python" else {}
        stopped, running = (f"rm{k}-{path[:3]}-{uuid.uuid4().hex[:6]}" for k in "sr")
        cli.run(path, "run", "--name", stopped, "--network", "none", "xctest/bb:1", "true")
        cli.run(path, "run", "-d", "--name", running, "--network", "none", "xctest/bb:1", "sleep", "60")
        out = []
        for args, took in ((["rm", stopped], path), (["rm", running], "python"), (["rm", "-f", running], path),
                           (["rm", "--force", "nosuch-" + stopped], "python")):
            p = subprocess.run([NATIVE, *args], capture_output=True, text=True, timeout=60,
                               env={**cli.env, "XC_DEBUG": "1", **env}, stdin=subprocess.DEVNULL)
            assert re.search(rf"^xc: debug: {took} path: ", p.stderr, re.M), (args, p.stderr)
            err = "".join(ln + "\n" for ln in p.stderr.splitlines() if not ln.startswith("xc: debug: "))
            out.append((p.returncode, p.stdout, _normalize(_normalize(err, stopped), running)))
        for c in (stopped, running):
            assert not (cli.bundles / c).exists() and not (cli.root / c).exists()
            assert not _cgroups_named(c) and not _processes_of(c)
        results[path] = out
    assert results["native"] == results["python"]
    assert [r[0] for r in results["native"]] == [0, 1, 0, 1]


def test_stop_both_ways(cli):
    """`xc stop` natively and on Python: a container that exits on SIGTERM,
    one whose init ignores it (killed after -t), then a stop of a stopped
    one (Python's refusal, on both)."""
    results = {}
    for path in ("native", "python"):
        env = {"XC_NATIVE": "0"} if path == "python" else {}
        deaf, polite = (cli.run("native", "run", "-d", "--network", "none", "xctest/bb:1", "sh", "-c", c).stdout.strip()
                        for c in ("sleep 60", 'trap "exit 0" TERM; while :; do sleep 0.1; done'))
        time.sleep(0.3)  # (the trap set)
        out = []
        for args, took in ((["stop", "-t", "1", deaf], path), (["stop", "--time=5", polite], path),
                           (["stop", polite], "python")):
            t = time.monotonic()
            p = subprocess.run([NATIVE, *args], capture_output=True, text=True, timeout=60,
                               env={**cli.env, "XC_DEBUG": "1", **env}, stdin=subprocess.DEVNULL)
            took_s = time.monotonic() - t
            assert re.search(rf"^xc: debug: {took} path: ", p.stderr, re.M), (args, p.stderr)
            err = "".join(ln + "\n" for ln in p.stderr.splitlines() if not ln.startswith("xc: debug: "))
            out.append((p.returncode, p.stdout, _normalize(err, polite), took_s >= 1 if args[1] == "-t" else None))
        for c in (deaf, polite):
            assert re.search(rf"^{c} +0 +stopped ", cli("ps").stdout, re.M)
            cli("rm", c)
        results[path] = out
    assert results["native"] == results["python"]
    assert [r[0] for r in results["native"]] == [0, 0, 1] and results["native"][0][3]


def test_ps_both_ways(cli):
    """`xc ps` natively prints what Python prints: each container by id, its
    pid (0 once stopped), status and creation time."""
    running = cli.run("native", "run", "-d", "--network", "none", "xctest/bb:1", "sleep", "60").stdout.strip()
    stopped = f"ps-{uuid.uuid4().hex[:6]}"
    cli.run("python", "run", "--name", stopped, "--network", "none", "xctest/bb:1", "true")
    try:
        out = {}
        for path in ("native", "python"):
            p = subprocess.run([NATIVE, "ps"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                               env={**cli.env, "XC_DEBUG": "1", **({"XC_NATIVE": "0"} if path == "python" else {})})
            assert p.returncode == 0 and re.search(rf"^xc: debug: {path} path: ", p.stderr, re.M), p.stderr
            out[path] = p.stdout
        assert out["native"] == out["python"]
        pid = json.loads((cli.root / running / "state.json").read_text())["pid"]
        assert re.search(rf"^{running} +{pid} +running ", out["native"], re.M), out
        assert re.search(rf"^{stopped} +0 +stopped ", out["native"], re.M), out
    finally:
        cli("rm", "-f", running)
        cli("rm", stopped)


@pytest.mark.parametrize("point", ["killed", "cgroup-removed", "deleted"])
def test_kill9_of_native_rm_then_rm_again(cli, point):
    cid = f"k9rm-{point}-{uuid.uuid4().hex[:6]}"
    cli.run("native", "run", "-d", "--name", cid, "--network", "none", "xctest/bb:1", "sleep", "60")
    p = subprocess.run([NATIVE, "rm", "-f", cid], env={**cli.env, "XC_FAULT": point}, capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == -9, p.stderr
    r = cli("rm", "-f", cid, check=False)
    assert r.returncode == 0 or "does not exist" in r.stderr, r.stderr
    cli("ps")
    _assert_nothing_left(cli, cid)


# -- what goes to Python ---------------------------------------------------------------------

FALLBACKS = [
    (["run", "--rm", "--network", "slirp4netns", "xctest/bb:1", "true"], "--network slirp4netns"),
    (["run", "--rm", "-t", "--network", "host", "xctest/bb:1", "true"], "run flag -t"),
    (["run", "--rm", "--network", "host", "-p", "8080:80", "xctest/bb:1", "true"], "-p with --network host"),
    (["run", "--rm", "--network", "host", "--libos", "trace=stderr", "xctest/bb:1", "true"], "--libos"),
    (["run", "--rm", "--network", "host", "--det", "xctest/bb:1", "true"], "run flag --det"),
    (["run", "--rm", "-de", "X=1", "--network", "host", "xctest/bb:1", "true"], "run flag -de"),
    (["run", "--rm", "--network", "host", "busybox", "true"], "not in the store"),
    (["run", "--rm", "--network", "host", "true"], "not in the store"),
    (["ps", "-a"], "ps argument -a"),
    (["stop", "-t", "1e1", "x"], "stop --time 1e1"),
    (["exec", "x", "true"], "the exec command"),
    (["rm", "-f", "a", "b"], "rm argument b"),
    (["rm", "-rf", "a"], "rm argument -rf"),
    (["--help"], "the --help command"),
]


@pytest.mark.parametrize("args,why", FALLBACKS, ids=[" ".join(a)[:50] for a, _ in FALLBACKS])
def test_what_falls_back(cli, args, why):
    path, reason = cli.path_of(*args)
    assert path == "python" and why in reason, reason


def test_fallback_when_not_root_or_forced(cli):
    assert cli.path_of("run", "--rm", "--network", "host", "xctest/bb:1", "true")[0] == "native"
    for var in ("XC_NATIVE", "XC_RUNTIME_NATIVE"):
        p = subprocess.run([NATIVE, "run", "--rm", "--network", "host", "xctest/bb:1", "true"], capture_output=True,
                           text=True, env={**cli.env, "XC_DEBUG": "1", var: "0"})
        assert f"python path: {var}=0" in p.stderr and p.returncode == 0


def test_bad_input_is_one_line_and_leaves_nothing(cli):
    for args, want in ((["--name", "bad/id"], "invalid container id"),
                       (["-m", "lots"], "invalid size"),
                       (["--entrypoint", ""], "has no command")):
        extra = ["true"] if want != "has no command" else []
        p = subprocess.run([NATIVE, "run", "--rm", "--network", "host", *args, "xctest/bb:1", *extra],
                           capture_output=True, text=True, env=cli.env, stdin=subprocess.DEVNULL)
        err = p.stderr.strip()
        assert p.returncode != 0 and len(err.splitlines()) == 1 and want in err, (args, err)
        assert not _ls(cli.bundles) and not mounts(cli.bundles)


def test_name_taken(cli):
    cli.run("native", "run", "--name", "taken", "--network", "host", "xctest/bb:1", "true")
    p = subprocess.run([NATIVE, "run", "--rm", "--name", "taken", "--network", "host", "xctest/bb:1", "true"],
                       capture_output=True, text=True, env={**cli.env, "XC_DEBUG": "1"})
    assert p.returncode == 1 and "python path: the bundle" in p.stderr and "already exists" in p.stderr
    cli("rm", "taken")


# -- run templates --------------------------------------------------------------------------------


def _template(cli: Cli, ref: str) -> Path:
    rec = json.loads(cli("image", "inspect", ref).stdout)
    return cli.store / "templates" / f"{rec['id']}.json"


def test_templates_written_at_import_and_first_run_and_removed_with_the_image(cli):
    t = _template(cli, "xctest/bb:1")
    assert t.exists()
    # The image lacks the mount targets: its mount-target layer has them, /etc as the image's.
    init = t.with_suffix(".init")
    assert sorted(os.listdir(init / "etc")) == ["hostname", "hosts", "resolv.conf"]
    assert all((init / "etc" / n).stat().st_mode == 0o100755 for n in os.listdir(init / "etc"))
    tpl = json.loads(t.read_text())
    assert tpl["format"] == 1 and tpl["mkdirs"] == [["work", 0o755]] and tpl["cmd"][0] == "sh"
    assert json.loads(_template(cli, "fr/user:1").read_text())["mkdirs"] == [
        ["srv", 0o777], ["srv/app", 0o777], ["srv/app/data", 0o755]]
    # Without a template (an image imported before templates): Python runs it and writes one.
    t.unlink()
    path, why = cli.path_of("run", "--rm", "--network", "host", "xctest/bb:1", "true")
    assert path == "python" and "no run template" in why
    assert t.exists()
    assert cli.path_of("run", "--rm", "--network", "host", "xctest/bb:1", "true")[0] == "native"
    # A template of another format is not read.
    tpl["format"] = 99
    t.write_text(json.dumps(tpl))
    path, why = cli.path_of("run", "--rm", "--network", "host", "xctest/bb:1", "true")
    assert path == "python" and "another format" in why
    cli("image", "rm", "xctest/bb:1")
    assert not t.exists() and not init.exists()


def test_stats_names_are_the_same_in_python_and_c():
    from xcontainers import libos, libos_abi

    c = (ROOT / "src/native/xc/stats.c").read_text()
    body = c[c.index("verdicts[] = {"):].split("};")[0]
    assert tuple(re.findall(r'"([a-z0-9-]+)"', body)) == libos_abi.ABOM_VERDICT_NAMES
    assert '"forwarded", "translated", "special", "emulated", "refused"' in c and libos.HOW == (
        "forwarded", "translated", "special", "emulated", "refused")


def test_format_is_the_same_in_python_and_c():
    from xcontainers import runtemplate

    h = (ROOT / "src/native/xc/xc.h").read_text()
    assert re.search(rf"#define XC_TEMPLATE_FORMAT {runtemplate.FORMAT}\b", h)


def test_an_image_apply_config_refuses_gets_no_template(cli, archives, tmp_path):
    bb = LayerBuilder().tree(archives["rootfs"]).bytes()
    for name, cfg in (("noenv:1", dict(Env=["PATH=/bin", "FROM_RUN"])), ("nouser:1", dict(User="nosuchuser"))):
        write_oci_layout(tmp_path / name, [bb], config=image_config([sha(bb)], **cfg))
        cli("image", "import", str(tar_dir(tmp_path / name, tmp_path / f"{name}.tar")), "--name", name)
        assert not _template(cli, name).exists()
        path, why = cli.path_of("run", "--rm", "--network", "host", name, "true")
        assert path == "python" and "no run template" in why
    p = cli.run("python", "run", "--rm", "--network", "host", "nouser:1", "true", check=False)
    assert p.returncode == 1 and "nosuchuser" in p.stderr


def test_stale_bundle_sends_the_run_to_python_which_collects_it(cli):
    code = ("import os, signal\n"
            "from xcontainers import imagerun\n"
            f"b = {str(cli.bundles / 'stale')!r}\n"
            "os.makedirs(b)\n"
            f"imagerun.mount_rootfs(imagerun.find('xctest/bb:1'), b, {str(cli.root)!r})\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    assert cli.python(code).returncode == -9
    path, why = cli.path_of("run", "--rm", "--network", "host", "xctest/bb:1", "true")
    assert path == "python" and "stale" in why
    assert not (cli.bundles / "stale").exists() and not mounts(cli.bundles)
    assert cli.path_of("run", "--rm", "--network", "host", "xctest/bb:1", "true")[0] == "native"


# -- kill -9 at every point ---------------------------------------------------------------------------

# point -> who dies there: X the xc process, C a container-side process, R the bundle's remover
POINTS = {"mounted": "X", "configured": "X", "config": "X", "reserved": "X", "cgroup": "X", "namespaces": "C",
          "joined": "X", "mounts": "C", "init": "C", "created": "X", "released": "X", "exec": "C",
          "started": "X", "exited": "X", "killed": "X", "cgroup-removed": "X", "deleted": "X",
          "unmounted": "X", "removing": "R"}


def _cgroups_named(name: str) -> list[str]:
    found = []
    for base, dirs, _ in os.walk("/sys/fs/cgroup"):
        if base.count("/") > 6:
            dirs[:] = []
            continue
        found += [os.path.join(base, d) for d in dirs if d == name]
    return found


def _processes_of(cid: str) -> list[str]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            if cid.encode() in cmd.split(b"\0"):
                out.append(f"{pid} {cmd!r}")
    return out


def _assert_nothing_left(cli: Cli, cid: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        left = {
            "bundle": (cli.bundles / cid).exists(),
            "trash": os.listdir(cli.trash) if cli.trash.exists() else [],
            "mounts": mounts(cli.bundles, cli.trash),
            "state": (cli.root / cid).exists(),
            "cgroups": _cgroups_named(cid),
            "processes": _processes_of(cid),
        }
        if not any(left.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not any(left.values()), f"left behind by {cid}: {left}"


@pytest.mark.parametrize("path", ["native", "python"])
@pytest.mark.parametrize("point", list(POINTS))
def test_kill9_at_each_point_leaves_nothing(cli, path, point):
    if path == "python" and point == "removing":
        pytest.skip("the Python path removes the bundle itself (no remover process)")
    cid = f"k9-{point}-{uuid.uuid4().hex[:6]}"
    env = {**cli.env, "XC_FAULT": point, **({"XC_NATIVE": "0"} if path == "python" else {})}
    with tempfile.TemporaryFile() as err:
        rc = subprocess.run([XC, "run", "--rm", "--name", cid, "--network", "none", "-m", "64m", "xctest/bb:1",
                             "true"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                            timeout=120).returncode
        err.seek(0)
        msg = err.read().decode(errors="replace")
    who = POINTS[point]
    if who == "X":
        assert rc == -9, f"xc was to die at {point}: rc {rc}, {msg}"
    elif who == "C":
        assert rc == (137 if point == "exec" else 1), (rc, msg)
    else:
        assert rc == 0, msg
    # What a user does after losing an `xc`: rm -f the container, and any
    # xc command collects the rest (here `xc ps`).
    r = cli("rm", "-f", cid, check=False)
    assert r.returncode == 0 or "does not exist" in r.stderr or "not found" in r.stderr, r.stderr
    cli("ps")
    _assert_nothing_left(cli, cid)


def test_rootless_stays_on_the_python_path(cli):
    """Not root: the Python command line (rootless mode) takes every command."""
    p = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", NATIVE, "run", "--rm",
                        "--network", "host", "xctest/bb:1", "true"], capture_output=True, text=True, timeout=120,
                       env={**cli.env, "XC_DEBUG": "1", "HOME": "/nonexistent"}, stdin=subprocess.DEVNULL)
    assert "xc: debug: python path: not root (rootless mode)" in p.stderr, p.stderr
    assert "native path" not in p.stderr
