"""Differential tests: the same bundle under runc, then xc-runtime.

Each test asserts what the container observed (so a test that runc fails
is a broken test, not a runtime bug), then that xc-runtime observed the
same.
"""

from __future__ import annotations

import os
import re

import pytest

from conftest import differential

pytestmark = pytest.mark.root


def _status_field(out: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*)$", out, re.M)
    assert m, f"{name} missing in\n{out}"
    return m.group(1).strip()


def test_hostname_pid1_and_ids(runc, xc, make_bundle):
    b = make_bundle(["sh", "-c", "hostname; echo pid=$$; id; cat /proc/self/status | grep -E '^(Uid|Gid|Groups):'"])
    b.config["hostname"] = "diffhost"
    b.process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 27]}
    b.write()
    r = differential(runc, xc, b)
    assert r.out.splitlines()[0] == "diffhost"
    assert "pid=1" in r.out
    assert "uid=1000 gid=1000" in r.out
    assert re.search(r"^Groups:\s+5 27\s*$", r.out, re.M)


def test_new_network_namespace_has_loopback_up(runc, xc, make_bundle):
    """A new network namespace starts with lo down; runc brings it up, and so must we."""
    b = make_bundle(["sh", "-c", "ip -o link show; ip -o -4 addr show lo"])
    r = differential(runc, xc, b)
    assert "LOOPBACK,UP" in r.out and "inet 127.0.0.1/8" in r.out, r.out


def test_capabilities(runc, xc, make_bundle):
    b = make_bundle(["sh", "-c", "grep ^Cap /proc/self/status"])
    caps = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"]
    b.process["capabilities"] = {
        "bounding": caps, "effective": caps[:2], "permitted": caps,
        "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"],
    }
    b.write()
    r = differential(runc, xc, b)
    want_bnd = (1 << 0) | (1 << 5) | (1 << 10) | (1 << 7)
    assert int(_status_field(r.out, "CapBnd"), 16) == want_bnd
    assert int(_status_field(r.out, "CapAmb"), 16) == 1 << 5


def test_capabilities_non_root_user(runc, xc, make_bundle):
    b = make_bundle(["sh", "-c", "grep ^Cap /proc/self/status"])
    b.process["user"] = {"uid": 65534, "gid": 65534}
    b.write()
    r = differential(runc, xc, b)
    assert int(_status_field(r.out, "CapEff"), 16) == 0


def test_rlimits(runc, xc, make_bundle):
    b = make_bundle(["sh", "-c", "ulimit -n; ulimit -Hn; grep -E 'Max (open files|processes|core)' /proc/self/limits"])
    b.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 777},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
    ]
    b.write()
    r = differential(runc, xc, b)
    assert r.out.splitlines()[:2] == ["512", "777"]


def test_mount_table(runc, xc, make_bundle, tmp_path):
    src = tmp_path / "shared"
    src.mkdir()
    (src / "file").write_text("from host\n")
    b = make_bundle(["sh", "-c", "cat /mnt/data/file; cut -d' ' -f5,6 /proc/self/mountinfo; "
                                 "touch /mnt/data/x 2>&1 | sed 's/.*: //'"])
    b.config["mounts"].append({"destination": "/mnt/data", "type": "bind", "source": str(src),
                               "options": ["rbind", "ro", "nosuid"]})
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "nodev", "size=1m", "mode=1777"]})
    b.write()
    r = differential(runc, xc, b)
    assert "from host" in r.out
    assert re.search(r"^/mnt/data ro,nosuid", r.out, re.M)
    assert re.search(r"^/ ro,", r.out, re.M)
    assert "Read-only file system" in r.out


def test_masked_and_readonly_paths(runc, xc, make_bundle):
    b = make_bundle(["sh", "-c",
                     "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
                     "(echo 1 > /proc/sys/kernel/ns_last_pid) 2>&1 | sed 's/.*: //'; "
                     "grep -E ' /proc/(sys|kcore|bus) ' /proc/self/mountinfo | cut -d' ' -f5,6"])
    r = differential(runc, xc, b)
    lines = r.out.splitlines()
    assert lines[0] == "0" and lines[1] == "0"
    assert "Read-only file system" in r.out
    assert "/proc/sys ro,relatime" in r.out


def test_exit_codes(runc, xc, make_bundle):
    for script, want in (("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("kill -9 $$; echo alive", 0),
                         ("sh -c 'kill -SEGV $$'; exit $?", 139), ("trap '' TERM; kill -TERM $$; echo survived", 0)):
        b = make_bundle(["sh", "-c", script])
        r = differential(runc, xc, b)
        assert r.rc == want, script


def test_signal_from_outside(rt, make_bundle):
    """kill on a running container: pid 1 ignores TERM without a handler, dies of KILL."""
    import time

    b = make_bundle(["sleep", "1000"])
    cid = f"sig-{rt.name}"
    rt.detached("run", "--detach", "--bundle", str(b.path), cid)
    try:
        rt.cmd("kill", cid, "TERM", check=True)
        time.sleep(0.3)
        assert rt.state(cid)["status"] == "running"
        rt.cmd("kill", cid, "9", check=True)
        for _ in range(100):
            if rt.state(cid)["status"] == "stopped":
                break
            time.sleep(0.05)
        assert rt.state(cid)["status"] == "stopped"
        r = rt.cmd("kill", cid, "KILL")
        assert r.rc != 0
    finally:
        rt.cmd("delete", "--force", cid)


def test_env_cwd_umask(runc, xc, make_bundle):
    b = make_bundle(["sh", "-c", "pwd; echo $FOO; echo $HOME; umask"])
    b.process["env"].append("FOO=bar baz")
    b.process["cwd"] = "/tmp"
    b.process["user"]["umask"] = 0o27
    b.write()
    r = differential(runc, xc, b)
    assert r.out.splitlines() == ["/tmp", "bar baz", "/root", "0027"]


def test_pids_limit_stops_fork_bomb(runc, xc, make_bundle):
    # The subshell forks until the limit stops it; the loop, the counting and
    # the clean-up use only shell builtins, since no fork is left to spare
    # (and a `$(seq 60)` process, reaped but not yet uncharged from the pids
    # controller, made the count racy).
    script = ("(i=0; while [ $i -lt 60 ]; do sleep 5 & i=$((i+1)); done) 2>/dev/null; "
              "set -- /proc/[0-9]*; echo $#; kill -9 -1; wait")
    b = make_bundle(["sh", "-c", script])
    b.linux["resources"]["pids"] = {"limit": 20}
    b.write()
    r = differential(runc, xc, b)
    assert int(r.out.split()[0]) <= 20


def test_memory_limit_oom_kills(runc, xc, make_bundle):
    # Python-free memory hog: busybox's dd fills one 100 MB buffer from
    # /dev/zero.  It volunteers as the OOM killer's victim, and it is the only
    # process that allocates: with a pipeline (head | tail) the writer could
    # trigger a second OOM while the killed reader was still exiting, and the
    # kernel then chose pid 1 under runc as under xc.  (-1000 for the rest
    # would need CAP_SYS_RESOURCE, which this host's root may lack.)
    script = ("sh -c 'echo 1000 > /proc/self/oom_score_adj; "
              "exec dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null'; "
              "echo status=$?")
    b = make_bundle(["sh", "-c", script])
    b.linux["resources"]["memory"] = {"limit": 32 * 1024 * 1024, "swap": 32 * 1024 * 1024}
    b.write()
    r = differential(runc, xc, b)
    assert "status=137" in r.out


def test_sysctl(runc, xc, make_bundle):
    b = make_bundle(["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax"])
    b.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096"}
    b.write()
    r = differential(runc, xc, b)
    assert r.out.split() == ["1", "4096"]


def test_domainname(xc, make_bundle):
    # runc 1.1.5 predates the spec's domainname field and ignores it, so
    # this one is checked against the spec alone.
    b = make_bundle(["cat", "/proc/sys/kernel/domainname"])
    b.config["domainname"] = "example.test"
    b.write()
    r = xc.run(b)
    assert (r.rc, r.out) == (0, "example.test\n")


def test_user_namespace(runc, xc, make_bundle, busybox_rootfs):
    import shutil
    import tempfile

    # The container's root is host uid 100000: its rootfs must be reachable
    # for that uid, which pytest's private tmp directory is not.
    top = tempfile.mkdtemp(prefix="xc-userns-")
    try:
        os.chmod(top, 0o755)
        shutil.copytree(busybox_rootfs, os.path.join(top, "rootfs"), symlinks=True)
        b = make_bundle(["sh", "-c", "id -u; cat /proc/self/uid_map; grep -c . /proc/self/gid_map; touch /x; ls -ln /x"])
        b.config["root"] = {"path": os.path.join(top, "rootfs"), "readonly": False}
        b.linux["namespaces"].append({"type": "user"})
        b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        b.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        # sysfs needs a network namespace owned by the user namespace; drop it.
        b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
        b.write()
        os.chown(os.path.join(top, "rootfs"), 100000, 100000)
        r = differential(runc, xc, b)
        assert r.out.split()[:5] == ["0", "0", "100000", "65536", "1"]
        assert os.stat(os.path.join(top, "rootfs", "x")).st_uid == 100000
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_no_new_privileges_and_seccomp(runc, xc, make_bundle):
    b = make_bundle(["sh", "-c", "grep NoNewPrivs /proc/self/status; mkdir /tmp/x 2>&1 | sed 's/.*: //'; "
                                 "grep Seccomp: /proc/self/status"])
    b.process["noNewPrivileges"] = True
    b.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []})
    b.write()
    r = differential(runc, xc, b)
    assert "NoNewPrivs:\t1" in r.out
    assert "Operation not permitted" in r.out
    assert "Seccomp:\t2" in r.out


def test_seccomp_without_no_new_privileges(runc, xc, make_bundle):
    # The X-Kernel always sets no_new_privs under the LibOS (its filter needs
    # it), so the runtime's own path for this case is checked without it.
    b = make_bundle(["sh", "-c", "grep -E 'NoNewPrivs|Seccomp:' /proc/self/status; uname -n"])
    b.config["annotations"] = {"org.xcontainers.libos": "off"}
    b.process["noNewPrivileges"] = False
    b.linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}],
    }
    b.write()
    r = differential(runc, xc, b)
    assert "NoNewPrivs:\t0" in r.out


def test_cgroup_namespace_view(runc, xc, make_bundle):
    b = make_bundle(["sh", "-c", "grep -c :/$ /proc/self/cgroup; ls /sys/fs/cgroup/pids | grep -c pids.max"])
    b.linux["namespaces"].append({"type": "cgroup"})
    b.write()
    r = differential(runc, xc, b)
    assert r.out.split()[1] == "1"


# A copy of busybox runs `sh` from /tmp/busybox until /tmp/stop appears; the
# container's other processes, and the program itself, open its file for
# writing (each redirect three times: the later ones through a site ABOM
# patched), truncate it, read it, then again once it has exited.
_RUNNING_PROGRAM = r"""
try() { for i in 1 2 3; do ( eval "$1" ) 2>&1 | sed 's/^[a-z]*: //' ; done | sort | uniq -c | sed 's/^ *//'; }
exec 2>&1; rm -f /tmp/up /tmp/stop; cp /bin/busybox /tmp/busybox
/tmp/busybox sh -c 'echo x >> /proc/self/exe; echo -n > /proc/self/exe; echo x >> /tmp/busybox; touch /tmp/up
                 while [ ! -e /tmp/stop ]; do usleep 10000; done' 2>&1 | sed 's/^[a-z]*: /self: /' &
n=0; while [ ! -e /tmp/up ] && [ $n -lt 500 ]; do usleep 10000; n=$((n + 1)); done
try 'echo x >> /tmp/busybox'
try 'echo x > /tmp/busybox'
try 'truncate -s 0 /tmp/busybox'
try 'dd if=/dev/zero of=/tmp/busybox bs=1 count=1 conv=notrunc status=none'
cat /tmp/busybox | wc -c
echo x >> /bin/busybox
echo x > /bin/busybox
touch /tmp/stop; wait
echo x >> /tmp/busybox && echo appended
truncate -s 0 /tmp/busybox && wc -c < /tmp/busybox
"""


def test_running_program_is_write_protected(runc, xc, make_bundle):
    """Linux refuses to open a running program's file for writing or to truncate it
    (ETXTBSY), from the program itself and from any other process; once it has exited,
    the file is writable again.  Under the LibOS the kernel runs the LibOS image, so the
    LibOS keeps the table of running programs (running.c; security finding 10)."""
    b = make_bundle(["sh", "-c", _RUNNING_PROGRAM], writable=True)
    r = differential(runc, xc, b)
    busy = "Text file busy"
    assert r.out.splitlines() == [
        f"3 eval: line 1: can't create /tmp/busybox: {busy}",        # >> (O_APPEND)
        f"3 eval: line 1: can't create /tmp/busybox: {busy}",        # > (O_TRUNC)
        f"3 /tmp/busybox: open: {busy}",                             # truncate(1)
        f"3 can't open '/tmp/busybox': {busy}",                      # dd conv=notrunc
        str(os.path.getsize(b.path / "rootfs" / "bin" / "busybox")),  # read: untouched
        f"sh: can't create /bin/busybox: {busy}",                    # the shell's own file
        f"sh: can't create /bin/busybox: {busy}",
        f"self: can't create /proc/self/exe: {busy}",                # from the program itself
        f"self: can't create /proc/self/exe: {busy}",
        f"self: can't create /tmp/busybox: {busy}",
        "appended",                                                  # exited: writable again
        "0",
    ], r.out


def test_running_program_on_a_read_only_root(runc, xc, make_bundle):
    """On a read-only mount Linux looks at the running file before the mount for write
    access alone (ETXTBSY), at the mount first for O_TRUNC (EROFS)."""
    b = make_bundle(["sh", "-c", "for i in 1 2 3; do echo x >> /bin/busybox; echo x > /bin/busybox; "
                                 "cat /bin/busybox > /dev/null && echo read; done 2>&1"])
    r = differential(runc, xc, b)
    assert r.out.splitlines()[:3] == ["sh: can't create /bin/busybox: Text file busy",
                                      "sh: can't create /bin/busybox: Read-only file system", "read"], r.out


def test_command_line_of_programs_and_scripts(runc, xc, make_bundle):
    """/proc/PID/cmdline is the program's argv, and a script's is the one Linux's exec makes:
    each `#!` level puts its interpreter, its argument and the script before the arguments
    (the LibOS makes it before its exec: libos.c, do_exec, and passes the path in an exec
    request instead of argv)."""
    make = ("printf '#!/bin/sh\\ntr \"\\\\\\\\0\" \" \" < /proc/$$/cmdline; echo\\n' > /tmp/s1; chmod +x /tmp/s1; "
            "printf '#!/tmp/s1 one two\\n' > /tmp/s2; chmod +x /tmp/s2; ")
    run = ("/tmp/s1 a 'b c'; /tmp/s2 d; tr '\\0' ' ' < /proc/$$/cmdline; echo; "
           "/bin/cat /proc/self/cmdline | tr '\\0' ' '; echo")
    b = make_bundle(["sh", "-c", make + run], writable=True)
    r = differential(runc, xc, b)
    lines = r.out.splitlines()
    assert lines[0] == "/bin/sh /tmp/s1 a b c ", r.out
    assert lines[1] == "/bin/sh /tmp/s1 one two /tmp/s2 d ", r.out
    assert lines[2].startswith("sh -c printf"), r.out
    assert lines[3] == "/bin/cat /proc/self/cmdline ", r.out


def test_nested_interpreter_scripts_up_to_linuxs_limit(runc, xc, make_bundle):
    """An exec follows `#!` lines through up to five scripts, as Linux does; a sixth is
    ELOOP from execve itself (the shell reports it). The LibOS checks the chain before
    its exec (libos.c, do_exec) and its loader walks it (loader.c, XC_SHEBANG_MAX); it
    stopped at three before, and a sixth died in the loader after the exec."""
    make = ("printf '#!/bin/sh\\necho level1 \"$@\"\\n' > /tmp/s1; chmod +x /tmp/s1; "
            "for i in 2 3 4 5 6; do printf '#!/tmp/s%d\\n' $((i-1)) > /tmp/s$i; chmod +x /tmp/s$i; done; ")
    run = "for i in 1 2 3 4 5 6; do /tmp/s$i arg > /tmp/out 2>&1; echo \"s$i $? $(cat /tmp/out)\"; done"
    b = make_bundle(["sh", "-c", make + run], writable=True)
    r = differential(runc, xc, b)
    lines = r.out.splitlines()
    assert lines[0] == "s1 0 level1 arg", r.out
    assert lines[4] == "s5 0 level1 /tmp/s2 /tmp/s3 /tmp/s4 /tmp/s5 arg", r.out
    assert lines[5] == "s6 127 sh: /tmp/s6: Too many levels of symbolic links", r.out  # ELOOP
