#!/usr/bin/env python3
"""Images: what running from a stored image and pulling one cost.

(a) start-to-exit of a /bin/true container, interleaved (all with
    --network host: a network namespace is another experiment's cost):
    bundle   `xc-runtime run --bundle B` of a prepared bundle (the image's
             rootfs already unpacked, the config `xc run` would write), the
             native runtime (src/xcontainers/xc-runtime);
    cold     `xc run --rm IMAGE /bin/true`, the first run after the image
             was imported (removed and imported again before each one);
    bundle-cold  the bundle run as the first command after the same
             re-import: a first command after a quiet spell pays the
             kernel's wait for an RCU grace period at its first cgroup
             move (cgroup v1 here), 10-20 ms, whatever it runs;
    warm     the same command again (xc's native entry point, the image's
             run template: docs/architecture.md, "xc's native run");
    bridge   the same without --network host: the default network, a bridge
             (xc0 and 10.88.0.0/16 unless XC_BRIDGE/XC_SUBNET say otherwise;
             made by the first run, Python's, in the warm-up): a namespace,
             a veth pair and an address per container;
    python   the same command on the Python command line (XC_NATIVE=0), as
             every `xc run` was before the native entry point;
    rootfs   `xc run --rm DIR /bin/true` of the same rootfs as a directory
             (copied into the bundle: the way before images; Python).
    Also the image steps alone, in one process (find the image, mount the
    overlay, turn the image config into the OCI config, unmount, remove):
    what images add to `xc run` whatever the rest costs.
(b) pull + unpack of a ~100 MB image (files from this machine's /usr) from
    a docker-registry on 127.0.0.1, interleaved:
    xc       `xc pull` into an empty store;
    skopeo   `skopeo copy docker://... oci:DIR` + `umoci unpack`.

    bench/images.py [-n REPS] [--pull-reps N] [--mb 100] [--base PKG] [--json FILE]

--base PKG (another build's src/xcontainers, e.g. a worktree's) adds
warm-base to (a): the same warm `xc run` by that build's `xc`, on the same
store, in the same rotation: an A/B of a change to the native run.

A benchmark, not a test: it asserts nothing about the numbers.  Needs root,
busybox-static, podman, skopeo, umoci and docker-registry (make setup).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "src"))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PKG = os.path.join(ROOT, "src", "xcontainers")
# The entry points as installed (Makefile): the native programs.
XC = os.path.join(PKG, "xc")
XC_RUNTIME = os.path.join(PKG, "xc-runtime")


def _run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr.decode()[-500:]}")
    return dt


def _summary(xs: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(xs) * 1000, "min_ms": min(xs) * 1000, "max_ms": max(xs) * 1000,
            "n": len(xs)}


def _busybox_rootfs(dest: str) -> None:
    bb = "/bin/busybox"
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    shutil.copy2(bb, os.path.join(dest, "bin/busybox"))
    for a in subprocess.run([bb, "--list-full"], capture_output=True, text=True, check=True).stdout.split():
        p = os.path.join(dest, a)
        if a != "bin/busybox" and not os.path.lexists(p):
            os.makedirs(os.path.dirname(p), exist_ok=True)
            os.symlink("/bin/busybox", p)
    with open(os.path.join(dest, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(dest, "etc/group"), "w") as f:
        f.write("root:x:0:\n")
    os.chmod(os.path.join(dest, "tmp"), 0o1777)


def _podman(top: str, *args: str) -> None:
    subprocess.run(["podman", "--root", f"{top}/podman", "--runroot", f"{top}/podman-run", "--storage-driver",
                    "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none", *args],
                   check=True, capture_output=True)


def bench_run(top: str, reps: int, base: str | None = None) -> dict[str, object]:
    rootfs = os.path.join(top, "rootfs")
    _busybox_rootfs(rootfs)
    subprocess.run(["tar", "-C", rootfs, "-cf", f"{top}/rootfs.tar", "."], check=True)
    _podman(top, "import", f"{top}/rootfs.tar", "bench/bb:1")
    _podman(top, "save", "--format", "docker-archive", "-o", f"{top}/bb.tar", "bench/bb:1")
    env = {**os.environ, "XC_STORAGE": f"{top}/storage", "XC_BUNDLES": f"{top}/bundles", "XC_ROOT": f"{top}/state"}
    subprocess.run([XC, "image", "import", f"{top}/bb.tar"], env=env, check=True, capture_output=True)
    # The prepared bundle: the config `xc run` writes for the image, a plain copy of the rootfs.
    subprocess.run([XC, "run", "--network", "host", "--name", "cfg", "bench/bb:1", "/bin/true"], env=env,
                   check=True, capture_output=True)
    with open(f"{top}/bundles/cfg/config.json") as f:
        cfg = json.load(f)
    bundle = os.path.join(top, "bundle")
    os.makedirs(bundle)
    cfg_bundle = f"{top}/bundles/cfg"
    for n in os.listdir(cfg_bundle):  # the files it bind-mounts (/etc/resolv.conf, hosts, hostname)
        if os.path.isfile(os.path.join(cfg_bundle, n)) and n not in ("config.json", "xc-bundle.json"):
            shutil.copy2(os.path.join(cfg_bundle, n), bundle)
    for m in cfg.get("mounts", []):
        if m.get("source", "").startswith(cfg_bundle + "/"):
            m["source"] = bundle + m["source"][len(cfg_bundle):]
    subprocess.run([XC, "rm", "cfg"], env=env, check=True)
    shutil.copytree(rootfs, os.path.join(bundle, "rootfs"), symlinks=True)
    cfg["root"]["path"] = "rootfs"
    for ns in cfg["linux"]["namespaces"]:  # (none has a path with --network host; kept for safety)
        ns.pop("path", None)
    cfg.get("hooks", {}).clear()
    cfg["linux"]["cgroupsPath"] = "/xc/bench-images"
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    image = [XC, "run", "--rm", "--network", "host", "bench/bb:1", "/bin/true"]
    bundle_run = [XC_RUNTIME, "--root", f"{top}/state", "run", "--bundle", bundle, "bench-images"]
    cmds = {
        "bundle": (bundle_run, env),
        "cold": (image, env),
        "bundle-cold": (bundle_run, env),
        "warm": (image, env),
        "python": (image, {**env, "XC_NATIVE": "0"}),
        "rootfs": ([XC, "run", "--rm", "--network", "host", rootfs, "/bin/true"], env),
    }
    cmds["bridge"] = ([XC, "run", "--rm", "bench/bb:1", "/bin/true"], env)
    if base:
        cmds["warm-base"] = ([os.path.join(base, "xc"), *image[1:]], env)
        cmds["bridge-base"] = ([os.path.join(base, "xc"), *cmds["bridge"][0][1:]], env)
    times: dict[str, list[float]] = {k: [] for k in cmds}

    def reimport() -> None:
        subprocess.run([XC, "image", "rm", "bench/bb:1"], env=env, check=True, capture_output=True)
        subprocess.run([XC, "image", "import", f"{top}/bb.tar"], env=env, check=True, capture_output=True)
        # The import's writes (the layer's files, the index, the template)
        # go to disk now, not during the next command, whichever it is.
        os.sync()

    def native(c: list[str], e: dict[str, str]) -> None:
        p = subprocess.run(c, env={**e, "XC_DEBUG": "1"}, capture_output=True, text=True)
        if "native path: run" not in p.stderr:
            raise SystemExit(f"{' '.join(c)} did not take the native path: {p.stderr}")

    native(image, env)
    if base:
        native(cmds["warm-base"][0], env)
    for _ in range(2):  # warm up
        for c, e in cmds.values():
            _run(c, e)
    native(cmds["bridge"][0], env)  # (the bridge is made now)
    for i in range(reps):
        for first in ("cold", "bundle-cold"):
            reimport()
            c, e = cmds[first]
            times[first].append(_run(c, e))
        # The others back to back in a rotating order: a run's leftover work (a Python run's
        # exit, the native remover, the kernel's deferred frees) lands on
        # whichever command comes next.  (A pause between runs instead lets
        # this VM's vCPUs idle, and every command then takes 2-4x longer.)
        # (A rotation keeps who follows whom: warm and warm-base go side by
        # side, in turn first.)
        pair = ["warm", "warm-base", "bridge", "bridge-base"] if base else ["warm", "bridge"]
        rest = ["bundle", *(pair[:: -1 if i % 2 else 1]), "python", "rootfs"]
        for k in [*rest[i % len(rest):], *rest[:i % len(rest)]]:
            c, e = cmds[k]
            times[k].append(_run(c, e))
    # The image steps alone, in-process.
    code = (
        "import os, time, shutil\n"
        "from xcontainers import imagerun\n"
        "from xcontainers.defaults import default_spec\n"
        "from xcontainers.imagestore import ImageStore\n"
        f"b = {top!r} + '/bundles/steps'\n"
        "ts = []\n"
        f"for i in range({reps}):\n"
        "    t = time.perf_counter()\n"
        "    imagerun.gc(os.path.dirname(b))\n"
        "    rec = imagerun.find('bench/bb:1')\n"
        "    os.mkdir(b)\n"
        f"    root = imagerun.mount_rootfs(rec, b, {top!r} + '/state')\n"
        "    spec = default_spec(['/bin/true'])\n"
        "    imagerun.apply_config(spec, ImageStore().config(rec), root, cmd=['/bin/true'], env=[])\n"
        "    imagerun.remove_bundle(b)\n"
        "    ts.append(time.perf_counter() - t)\n"
        "print(' '.join(str(x) for x in ts))\n")
    out = subprocess.run([os.path.join(VENV_BIN, "python"), "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    steps = [float(x) for x in out.split()]
    res: dict[str, object] = {k: _summary(v) for k, v in times.items()}
    res["image_steps"] = _summary(steps)
    return res


# -- (b) pull ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _big_rootfs(dest: str, mb: int) -> tuple[int, int]:
    """Regular files and symlinks from /usr/share and /usr/lib, in a fixed
    order, until *mb* MB."""
    total = n = 0
    for top in ("/usr/share", "/usr/lib"):
        for dp, dns, fns in os.walk(top):
            dns.sort()
            for f in sorted(fns):
                p = os.path.join(dp, f)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if st.st_size > 20 << 20:
                    continue
                t = os.path.join(dest, p.lstrip("/"))
                os.makedirs(os.path.dirname(t), exist_ok=True)
                if os.path.islink(p):
                    os.symlink(os.readlink(p), t)
                elif os.path.isfile(p):
                    shutil.copy2(p, t)
                    total += st.st_size
                else:
                    continue
                n += 1
                if total >= mb << 20:
                    return n, total
    return n, total


def bench_pull(top: str, reps: int, mb: int) -> dict[str, object]:
    registry = shutil.which("docker-registry")
    if not registry:
        raise SystemExit("docker-registry is not installed (make setup)")
    rootfs = os.path.join(top, "big")
    files, size = _big_rootfs(rootfs, mb)
    # An image of two layers, by tar (GNU tar's format) and skopeo.
    layout = os.path.join(top, "layout")
    subprocess.run(["umoci", "init", "--layout", layout], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:1"], check=True)
    unpacked = os.path.join(top, "umoci-build")
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:1", unpacked], check=True, capture_output=True)
    for part in ("usr/share",):
        os.makedirs(os.path.join(unpacked, "rootfs", os.path.dirname(part)), exist_ok=True)
        shutil.copytree(os.path.join(rootfs, part), os.path.join(unpacked, "rootfs", part), symlinks=True)
    subprocess.run(["umoci", "repack", "--image", f"{layout}:1", unpacked], check=True)
    shutil.rmtree(unpacked)
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:1", unpacked], check=True, capture_output=True)
    if os.path.isdir(os.path.join(rootfs, "usr/lib")):
        shutil.copytree(os.path.join(rootfs, "usr/lib"), os.path.join(unpacked, "rootfs/usr/lib"), symlinks=True)
    subprocess.run(["umoci", "repack", "--image", f"{layout}:1", unpacked], check=True)
    shutil.rmtree(unpacked)
    port = _free_port()
    data = os.path.join(top, "registry")
    with open(os.path.join(top, "registry.yml"), "w") as f:
        json.dump({"version": 0.1, "log": {"level": "error"}, "storage": {"filesystem": {"rootdirectory": data}},
                   "http": {"addr": f"127.0.0.1:{port}"}}, f)
    log = open(os.path.join(top, "registry.log"), "w")
    proc = subprocess.Popen([registry, "serve", os.path.join(top, "registry.yml")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("docker-registry did not start")
                time.sleep(0.05)
        ref = f"127.0.0.1:{port}/bench/big:1"
        subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:1",
                        f"docker://{ref}"], check=True)
        compressed = sum(os.path.getsize(os.path.join(data, dp, f)) for dp, _, fs in os.walk(data) for f in fs
                         if f == "data")
        times: dict[str, list[float]] = {"xc": [], "skopeo+umoci": []}
        for i in range(reps):
            env = {**os.environ, "XC_STORAGE": f"{top}/pull-store-{i}"}
            times["xc"].append(_run([XC, "pull", "-q", ref], env))
            shutil.rmtree(env["XC_STORAGE"])
            oci, bundle = f"{top}/pull-oci-{i}", f"{top}/pull-bundle-{i}"
            t = time.perf_counter()
            subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                            f"oci:{oci}:1"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["umoci", "unpack", "--image", f"{oci}:1", bundle], check=True, stdout=subprocess.DEVNULL)
            times["skopeo+umoci"].append(time.perf_counter() - t)
            shutil.rmtree(oci)
            shutil.rmtree(bundle)
    finally:
        proc.terminate()
        proc.wait()
        log.close()
    res: dict[str, object] = {k: _summary(v) for k, v in times.items()}
    res["image"] = {"files": files, "bytes": size, "compressed_bytes_in_registry": compressed, "layers": 2}
    res["ratio_xc_to_skopeo_umoci"] = statistics.median(times["xc"]) / statistics.median(times["skopeo+umoci"])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--reps", type=int, default=20, help="repetitions of (a)")
    ap.add_argument("--pull-reps", type=int, default=5, help="repetitions of (b)")
    ap.add_argument("--mb", type=int, default=100, help="the size of (b)'s image, in MB of files")
    ap.add_argument("--only", choices=("run", "pull"), help="run one part only")
    # (a) runs with --network host: a network namespace is another experiment's cost (docs/network.md).
    ap.add_argument("--json", help="write the results here as JSON")
    ap.add_argument("--base", help="another build's src/xcontainers: its warm `xc run` as warm-base in (a)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root")
    # Every `xc` command would otherwise compile its modules anew when the
    # environment says PYTHONDONTWRITEBYTECODE (this workplace's sessions do).
    import compileall

    compileall.compile_dir(os.path.join(ROOT, "src", "xcontainers"), quiet=1)
    top = tempfile.mkdtemp(prefix="xc-bench-images-")
    results: dict[str, object] = {}
    try:
        if a.only != "pull":
            results["run"] = bench_run(os.path.join(top, "run"), a.reps, a.base)
            r = results["run"]
            print(f"(a) /bin/true start to exit, {a.reps} interleaved runs, median (min-max) ms:")
            for k in ("bundle", "warm", *(["warm-base"] if a.base else []), "bridge",
                      *(["bridge-base"] if a.base else []), "python", "rootfs", "bundle-cold", "cold",
                      "image_steps"):
                s = r[k]  # type: ignore[index]
                print(f"    {k:<12} {s['median_ms']:7.2f} ({s['min_ms']:.2f}-{s['max_ms']:.2f})")
            for k, base in (("warm", "bundle"), *([("warm", "warm-base"), ("bridge", "bridge-base")] if a.base else []),
                            ("bridge", "warm"), ("python", "bundle"), ("cold", "bundle-cold")):
                m, b = r[k]["median_ms"], r[base]["median_ms"]  # type: ignore[index]
                what = ("the other build's" if base.endswith("-base") else "--network host" if base == "warm"
                        else "xc-runtime run of the bundle")
                print(f"    xc run IMAGE ({k}) - {what} ({base}): {m - b:+.2f} ms ({m / b:.2f}x)")
            print(f"    (the image steps alone, in Python: {r['image_steps']['median_ms']:.1f} ms)")  # type: ignore[index]
        if a.only != "run":
            os.makedirs(os.path.join(top, "pull"))
            results["pull"] = p = bench_pull(os.path.join(top, "pull"), a.pull_reps, a.mb)
            img = p["image"]  # type: ignore[index]
            print(f"(b) pull + unpack of {img['files']} files, {img['bytes'] / 1e6:.0f} MB "  # type: ignore[index]
                  f"({img['compressed_bytes_in_registry'] / 1e6:.0f} MB compressed, 2 layers), "  # type: ignore[index]
                  f"{a.pull_reps} interleaved runs, median (min-max) s:")
            for k in ("xc", "skopeo+umoci"):
                s = p[k]  # type: ignore[index]
                print(f"    {k:<13} {s['median_ms'] / 1000:6.2f} ({s['min_ms'] / 1000:.2f}-{s['max_ms'] / 1000:.2f})")
            print(f"    xc / (skopeo + umoci) = {p['ratio_xc_to_skopeo_umoci']:.2f}")
        if a.json:
            results["command"] = " ".join(sys.argv)
            with open(a.json, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        with open("/proc/self/mountinfo") as f:
            left = [line.split()[4] for line in f if line.split()[4].startswith(top)]
        for m in reversed(left):  # only if a run above failed half-way
            subprocess.run(["umount", "-l", m])
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
