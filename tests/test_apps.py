"""Unmodified real programs in xc-runtime containers, on and off the X-LibOS.

Each test runs one program in the same bundle three ways and compares what it
did: under runc (the reference), under xc-runtime with the annotation
"org.xcontainers.libos": "off" (a plain container) and under xc-runtime on the
LibOS (the default).  The programs come from the host (Debian's packages),
not from an image: the rootfs bind-mounts the host's /usr, /lib, /lib64,
/bin, /sbin and /etc read-only, with tmpfs on /tmp, /run and /var, and the
test's own files (scripts, programs built here, web pages) read-only on /app.

The containers have no network namespace: the servers listen on 127.0.0.1 of
the host, on a free port, and the clients (curl, redis-cli, redis-benchmark)
run on the host.  Every container is deleted (`delete --force`) by the test.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import RUNC, Bundle, Result, RuntimeUnderTest, build_busybox_rootfs, need_root
from xcontainers.benchharness.experiments import free_port, wait_port  # noqa: E402
from xcontainers.benchharness.runtimes import RunFailed  # noqa: E402

LIBOS = "org.xcontainers.libos"
MODES = ("runc", "off", "on")  # runc first: it is the reference
HOST_DIRS = ("usr", "lib", "lib64", "bin", "sbin", "etc")
TMPFS_DIRS = ("tmp", "run", "var")

# Run first in every one-shot container: says on stderr whether the process
# is under the LibOS's seccomp filter (mode 2) or not (0), then execs the
# program, which keeps pid 1.
PROBE = ["/bin/sh", "-c", 'grep "^Seccomp:" /proc/self/status >&2; exec "$@"', "probe"]


def need(tool: str) -> str:
    path = shutil.which(tool, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        pytest.skip(f"{tool} is not installed (make setup installs it)")
    return path


# --- bundles ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def host_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty rootfs of mount points for the host's directories."""
    need_root()
    root = tmp_path_factory.mktemp("apps") / "rootfs"
    for d in HOST_DIRS:
        if os.path.islink("/" + d):  # merged /usr: bin -> usr/bin
            (root / d).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink("/" + d), root / d)
        elif os.path.isdir("/" + d):
            (root / d).mkdir(parents=True, exist_ok=True)
    for d in ("proc", "sys", "dev", "app"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for d in TMPFS_DIRS:
        # Debian's runc 1.1.5 chmods a tmpfs to its mount point's mode (ignoring
        # mode=1777; runc >= 1.1.8 does not): make the two agree.
        (root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(root / d, 0o1777)
    return root


@pytest.fixture(scope="session")
def bb_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only busybox-static: the one program in the image."""
    need_root()
    root = build_busybox_rootfs(tmp_path_factory.mktemp("bbapp") / "rootfs")
    (root / "app").mkdir()
    return root


def app_bundle(where: Path, rootfs: Path, app: Path, args: list[str], mode: str, *,
                host_dirs: bool = True, probe: bool = True) -> Bundle:
    """A bundle for one run: *app* read-only on /app, tmpfs /tmp /run /var, no netns."""
    path = where / f"bundle-{mode}-{uuid.uuid4().hex[:6]}"
    b = Bundle(path, rootfs, (PROBE if probe else []) + args)
    b.process["cwd"] = "/tmp"
    b.process["env"] += ["HOME=/tmp", "LANG=C.UTF-8", "TZ=UTC"]
    b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] != "network"]
    if host_dirs:
        for d in HOST_DIRS:
            if os.path.isdir("/" + d) and not os.path.islink("/" + d):
                b.config["mounts"].append({"destination": "/" + d, "type": "bind", "source": "/" + d,
                                           "options": ["rbind", "ro"]})
    for d in TMPFS_DIRS:
        b.config["mounts"].append({"destination": "/" + d, "type": "tmpfs", "source": "tmpfs",
                                   "options": ["nosuid", "nodev", "mode=1777"]})
    b.config["mounts"].append({"destination": "/app", "type": "bind", "source": str(app),
                               "options": ["rbind", "ro"]})
    if mode != "on":  # runc ignores the annotation; it gets the same bundle as "off"
        b.config["annotations"] = {LIBOS: "off"}
    return b.write()


@pytest.fixture(scope="session")
def runtimes(request: pytest.FixtureRequest) -> dict[str, RuntimeUnderTest]:
    """mode -> runtime: runc (when installed), xc-runtime off the LibOS, on it."""
    xc = request.getfixturevalue("xc")
    rts = {"off": xc, "on": xc}
    if RUNC is not None:
        rts["runc"] = request.getfixturevalue("runc")
    return rts


def modes(runtimes: dict[str, RuntimeUnderTest]) -> list[str]:
    return [m for m in MODES if m in runtimes]


def check_seccomp(err: str, mode: str) -> None:
    want = "2" if mode == "on" else "0"
    m = re.search(r"^Seccomp:\s*(\d)", err, re.M)
    assert m and m.group(1) == want, f"{mode}: expected Seccomp {want} (is the LibOS {mode}?), stderr:\n{err}"


def diff(a: str, b: str, na: str, nb: str) -> str:
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), na, nb))


def run_differential(runtimes: dict[str, RuntimeUnderTest], make: Callable[[str], Bundle],
                     timeout: float = 60) -> Result:
    """Run the bundle in each mode; every mode must give runc's (or off's) rc and stdout."""
    results: dict[str, Result] = {}
    for mode in modes(runtimes):
        rt = runtimes[mode]
        cid = f"app-{mode}-{uuid.uuid4().hex[:10]}"
        t0 = time.monotonic()
        r = rt.run(make(mode), cid=cid, timeout=timeout)
        r.err += f"\n[{mode}: {time.monotonic() - t0:.1f}s]"
        check_seccomp(r.err, mode)
        results[mode] = r
    ref_mode = modes(runtimes)[0]
    ref = results[ref_mode]
    for mode, r in results.items():
        assert (r.rc, r.out) == (ref.rc, ref.out), (
            f"{mode} disagrees with {ref_mode}: rc {r.rc} vs {ref.rc}\n"
            + diff(ref.out, r.out, ref_mode, mode)
            + f"\n--- {ref_mode} stderr\n{ref.err}\n--- {mode} stderr\n{r.err}"
        )
    return results["on"]


def write_app(tmp_path: Path, files: dict[str, str | bytes], mode: int = 0o644) -> Path:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    os.chmod(app, 0o755)
    for name, content in files.items():
        p = app / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = textwrap.dedent(content).lstrip("\n")
            p.write_text(content)
        else:
            p.write_bytes(content)
        os.chmod(p, mode)
    return app


def is_static_elf(path: Path) -> bool:
    """No PT_INTERP program header: the kernel loads no dynamic linker."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, f"{path} is not a 64-bit ELF"
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 not in types  # PT_INTERP


# --- (1) busybox-static sh ----------------------------------------------------------

BUSYBOX_SCRIPT = r"""
echo "start pid=$$"
trap 'echo "trap USR1"' USR1
trap 'echo "trap HUP"' HUP
kill -USR1 $$
kill -HUP $$
x=$(echo subst | tr a-z A-Z); echo "cmdsubst=$x"
y=$(sh -c 'echo nested-$((6*7))'); echo "nested-subst=$y"
( echo "in subshell pid=$$"; exit 5 ); echo "subshell rc=$?"
printf '3\n1\n2\n' | sort -n | tr '\n' ' '; echo
seq 1 3000 | grep 7 | wc -l
yes | head -n 2000 | wc -l
sh -c 'echo "child sh"; exit 7'; echo "child rc=$?"
exec 3>/tmp/f; echo "via fd 3" >&3; exec 3>&-; cat /tmp/f
while read -r a b; do echo "read $b $a"; done <<EOF
one 1
two 2
EOF
for i in 1 2 3 4; do (sleep 0.0$i; exit $i) & eval "p$i=\$!"; done
for i in 4 3 2 1; do eval "wait \$p$i"; echo "job $i rc=$?"; done
sleep 10 & p=$!; kill -TERM $p; wait $p; echo "killed rc=$?"
mkfifo /tmp/ready
( trap 'echo "child got USR2"; exit 9' USR2; echo ok > /tmp/ready; while :; do sleep 0.02; done ) & c=$!
read r < /tmp/ready; kill -USR2 $c; wait $c; echo "trap-child rc=$?"
trap 'echo "exit trap"' EXIT
timeout 1 sleep 5; echo "timeout rc=$?"
echo "exec next"
exec sh -c 'echo "exec keeps pid=$$"; exit 3'
echo "not reached"
"""


def test_busybox_static_sh(runtimes, bb_rootfs, tmp_path):
    """busybox-static's sh alone in the image: fork, pipes, exec, signal traps."""
    app = write_app(tmp_path, {"script.sh": BUSYBOX_SCRIPT})
    r = run_differential(runtimes, lambda mode: app_bundle(
        tmp_path, bb_rootfs, app, ["/bin/busybox", "sh", "/app/script.sh"], mode, host_dirs=False))
    assert r.rc == 3
    lines = r.out.splitlines()
    assert lines[0] == "start pid=1" and lines[-1] == "exec keeps pid=1", r.out
    for want in ("trap USR1", "trap HUP", "cmdsubst=SUBST", "nested-subst=nested-42",
                 "subshell rc=5", "1 2 3 ", "2000", "child rc=7", "via fd 3", "read 2 two",
                 "job 4 rc=4", "job 1 rc=1", "killed rc=143", "child got USR2", "trap-child rc=9",
                 "timeout rc=143"):  # busybox timeout: SIGTERM, then it dies of it
        assert want in lines, f"{want!r} missing:\n{r.out}"
    assert "not reached" not in r.out and "exit trap" not in r.out


# --- (2) Debian's dynamic glibc programs ---------------------------------------------

BASH_SCRIPT = r"""
set -euo pipefail
echo "bash ${BASH_VERSINFO[0]}.${BASH_VERSINFO[1]} pid $$"
trap 'echo "trap USR1"' USR1; kill -USR1 $$
mkdir -p /tmp/w/sub/deeper && cd /tmp/w
printf 'banana\napple\ncherry\napple\n' > fruits.txt
printf '%s\n' 10 9 100 1 > nums.txt
echo secret > sub/secret; chmod 600 sub/secret
echo deep > sub/deeper/file.dat
ln -s fruits.txt link; ln fruits.txt hard
touch -d @86400 fruits.txt nums.txt sub/secret sub/deeper/file.dat sub/deeper sub
echo "--- ls -la"
ls -la --time-style=+%F
ls -la --time-style=+%F sub | sed 1d | awk '{print $1, $2, $5, $6, $7}'
echo "--- sort"
sort fruits.txt | uniq -c | sort -k1,1nr -k2 | awk '{print $1, $2}'
sort -n nums.txt | tr '\n' ' '; echo
sort -rn nums.txt | head -1
seq 1 40000 | sort -R | sort -n | md5sum | cut -c1-12
echo "--- find"
find . | sort
find . -type f -name '*.txt' | sort
find . -type l; find . -type d | sort
find /tmp/w -type f -exec wc -c {} + | sort -k2 | awk '{print $1}'
echo "--- command substitution"
n=$(find . -type f | wc -l); echo "files=$n"
first=$(sort fruits.txt | head -1); echo "first=$first"
echo "nested=$(echo "$(echo inner | tr a-z A-Z)-outer")"
echo "arith=$(( $(wc -l < nums.txt) * 7 ))"
mapfile -t arr < <(sort -u fruits.txt); echo "array ${#arr[@]}: ${arr[*]}"
diff <(sort fruits.txt) <(sort -r fruits.txt | sort) && echo "procsubst same"
read -r w < <(echo from-procsubst); echo "$w"
cat <<< "here string" | tr a-z A-Z
echo "--- jobs"
seq 1 8 | xargs -P 4 -n 2 sh -c 'echo $(( $1 + $2 ))' sh | sort -n | tr '\n' ' '; echo
sleep 5 & p=$!; kill $p; wait $p || echo "killed rc=$?"
( exit 4 ) || echo "subshell rc=$?"
coproc tr a-z A-Z; echo coproc >&"${COPROC[1]}"; fd=${COPROC[1]}; exec {fd}>&-; read -r l <&"${COPROC[0]}"; echo "coproc $l"; wait
cp -a /tmp/w /tmp/w2 && diff -r /tmp/w /tmp/w2 && echo "cp -a same"
rm -rf /tmp/w2 && echo rm-ok
head -c 1000000 /dev/zero | sha256sum | cut -c1-16
stat -c '%s %F %a' fruits.txt sub link
echo "exe $(readlink /proc/self/exe)"
echo done
"""

PY_SCRIPT = r"""
import os, select, selectors, signal, socket, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor

print("python", sys.version_info[:2], "pid", os.getpid())

# threads
lock, cond, state = threading.Lock(), threading.Condition(), {"n": 0, "ready": 0}
def work(i):
    s = sum(j * j for j in range(20000 + i))
    with lock:
        state["n"] += 1
    return s
threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
[t.start() for t in threads]; [t.join() for t in threads]
print("threads", state["n"])
with ThreadPoolExecutor(8) as ex:
    print("pool", sum(ex.map(work, range(32))) % 1000003)
def waiter():
    with cond:
        state["ready"] += 1; cond.notify_all()
        cond.wait_for(lambda: state["ready"] >= 5, timeout=10)
ws = [threading.Thread(target=waiter) for _ in range(4)]
[t.start() for t in ws]
with cond:
    cond.wait_for(lambda: state["ready"] >= 4, timeout=10); state["ready"] += 1; cond.notify_all()
[t.join() for t in ws]
print("condition", state["ready"])

# subprocess
print("run", subprocess.run(["/bin/echo", "hello"], capture_output=True, text=True).stdout.strip())
print("shell", subprocess.run("echo $((6*7)) | cat", shell=True, capture_output=True, text=True).stdout.strip())
print("false rc", subprocess.call(["/bin/false"]))
p = subprocess.Popen(["sort"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
print("communicate", p.communicate("b\nc\na\n")[0].split(), p.returncode)
try:
    subprocess.run(["/nonexistent/program"])
except FileNotFoundError:
    print("enoent ok")
p = subprocess.Popen(["/bin/sleep", "10"]); p.terminate(); print("terminated", p.wait())
print("cwd", subprocess.run(["pwd"], cwd="/etc", capture_output=True, text=True).stdout.strip())
print("child python", subprocess.check_output([sys.executable, "-c", "import os; print(os.getppid())"]).decode().strip())
outs = [subprocess.Popen(["/bin/sh", "-c", f"exit {i}"]) for i in range(5)]
print("many rc", [q.wait() for q in outs])

# sockets + select
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(16); srv.setblocking(False)
port = srv.getsockname()[1]
def client(i):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"ping%d\n" % i)
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(100)
            if not chunk:
                break
            data += chunk
        return data.strip().decode()
with ThreadPoolExecutor(4) as ex:
    futs = [ex.submit(client, i) for i in range(12)]
    conns, served, deadline = [], 0, time.monotonic() + 20
    while served < 12 and time.monotonic() < deadline:
        r, _, _ = select.select([srv] + conns, [], [], 1)
        for s in r:
            if s is srv:
                c, _ = srv.accept(); c.setblocking(True); conns.append(c)
            else:
                d = s.recv(100)
                if d:
                    s.sendall(d.upper())
                    served += 1
                conns.remove(s); s.close()
    print("select server", sorted(f.result() for f in futs)[:3], served)
sel = selectors.DefaultSelector()
a, b = socket.socketpair()
sel.register(a, selectors.EVENT_READ); b.send(b"x")
print("selector", type(sel).__name__, [k.fileobj is a for k, _ in sel.select(1)])
pl = select.poll(); pl.register(a, select.POLLIN)
print("poll", [ev for _, ev in pl.poll(1000)])
u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u1.bind(("127.0.0.1", 0))
u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.sendto(b"datagram", u1.getsockname())
print("udp", u1.recvfrom(100)[0])
s1, s2 = socket.socketpair(socket.AF_UNIX); r0, w0 = os.pipe()
socket.send_fds(s1, [b"f"], [w0]); _, fds, _, _ = socket.recv_fds(s2, 10, 1)
os.write(fds[0], b"via-fd"); print("scm_rights", os.read(r0, 10))
us = socket.socket(socket.AF_UNIX); us.bind("/tmp/u.sock"); us.listen()
uc = socket.socket(socket.AF_UNIX); uc.connect("/tmp/u.sock"); ua, _ = us.accept()
uc.sendall(b"unix"); print("unix stream", ua.recv(10))

# signals
got = []
signal.signal(signal.SIGALRM, lambda s, f: got.append("alrm")); signal.setitimer(signal.ITIMER_REAL, 0.05)
time.sleep(0.3)
signal.signal(signal.SIGUSR1, lambda s, f: got.append("usr1")); os.kill(os.getpid(), signal.SIGUSR1)
print("signals", got)

# fork
pid = os.fork()
if pid == 0:
    os._exit(7)
print("fork", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print("done")
"""

SQLITE_SQL = """
pragma journal_mode=wal;
create table acct(id integer primary key, name text not null, balance integer not null check (balance >= 0));
begin;
insert into acct(name, balance) values ('alice', 100), ('bob', 50), ('carol', 0);
with recursive c(x) as (select 1 union all select x + 1 from c where x < 5000)
  insert into acct(name, balance) select 'user' || x, x % 97 from c;
commit;
begin;
update acct set balance = balance - 30 where name = 'alice';
update acct set balance = balance + 30 where name = 'bob';
commit;
begin;
update acct set balance = balance + 1000 where name = 'carol';
rollback;
create index acct_name on acct(name);
select name, balance from acct where name in ('alice', 'bob', 'carol') order by name;
select count(*), sum(balance) from acct;
pragma integrity_check;
"""


@pytest.fixture
def glibc_app(tmp_path: Path) -> Path:
    return write_app(tmp_path, {"script.sh": BASH_SCRIPT, "script.py": PY_SCRIPT, "tx.sql": SQLITE_SQL})


def test_bash_coreutils(runtimes, host_rootfs, glibc_app, tmp_path):
    """Debian's bash with coreutils and findutils: ls -la, sort, find, command substitution."""
    need("bash")
    r = run_differential(runtimes, lambda mode: app_bundle(
        tmp_path, host_rootfs, glibc_app, ["/bin/bash", "/app/script.sh"], mode))
    assert r.rc == 0 and r.out.endswith("done\n"), r.out + r.err
    for want in ("trap USR1", "files=5", "first=apple", "nested=INNER-outer", "arith=28",
                 "array 3: apple banana cherry", "procsubst same", "from-procsubst", "HERE STRING",
                 "3 7 11 15 ", "coproc COPROC", "cp -a same", "1 9 10 100 ",
                 f"exe {os.path.realpath('/bin/readlink')}"):
        assert want in r.out.splitlines(), f"{want!r} missing:\n{r.out}"
    assert re.search(r"^lrwxrwxrwx 1 root root +10 \S+ link -> fruits.txt$", r.out, re.M), r.out
    assert re.search(r"^-rw-r--r-- 2 root root +26 1970-01-02 fruits.txt$", r.out, re.M), r.out


def test_python3_threads_subprocess_sockets(runtimes, host_rootfs, glibc_app, tmp_path):
    """Debian's python3: threads, subprocess, TCP/UDP/unix sockets, select/poll/epoll, signals."""
    need("python3")
    r = run_differential(runtimes, lambda mode: app_bundle(
        tmp_path, host_rootfs, glibc_app, ["/usr/bin/python3", "-u", "/app/script.py"], mode))
    assert r.rc == 0 and r.out.endswith("done\n"), r.out + r.err
    for want in ("threads 16", "condition 5", "run hello", "shell 42", "false rc 1",
                 "communicate ['a', 'b', 'c'] 0", "enoent ok", "terminated -15", "cwd /etc",
                 "child python 1", "many rc [0, 1, 2, 3, 4]", "select server ['PING0', 'PING1', 'PING10'] 12",
                 "selector EpollSelector [True]", "poll [1]", "udp b'datagram'", "scm_rights b'via-fd'",
                 "unix stream b'unix'", "signals ['alrm', 'usr1']", "fork 7"):
        assert want in r.out.splitlines(), f"{want!r} missing:\n{r.out}"


def test_sqlite3_transaction(runtimes, host_rootfs, glibc_app, tmp_path):
    """Debian's sqlite3 CLI: WAL, committed and rolled-back transactions, read back by a second process."""
    need("sqlite3")
    script = ("sqlite3 -batch /tmp/bank.db '.read /app/tx.sql' && "
              "sqlite3 -batch /tmp/bank.db \"select 'reopened', count(*), sum(balance) from acct;\" && "
              "sqlite3 -batch /tmp/bank.db '.dump acct' | wc -l")
    r = run_differential(runtimes, lambda mode: app_bundle(
        tmp_path, host_rootfs, glibc_app, ["/bin/sh", "-c", script], mode))
    total = 150 + sum(x % 97 for x in range(1, 5001))
    assert r.rc == 0, r.out + r.err
    assert r.out.splitlines()[:7] == ["wal", "alice|70", "bob|80", "carol|0", f"5003|{total}", "ok",
                                      f"reopened|5003|{total}"], r.out


# --- (3) a static musl program --------------------------------------------------------

MUSL_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long counter, arrived;
static volatile sig_atomic_t usr1, alrm, chld, thread_sig;

static void on_usr1(int s) { (void)s; usr1++; }
static void on_alrm(int s) { (void)s; alrm++; }
static void on_chld(int s) { (void)s; chld++; }
static void on_usr2(int s) { (void)s; thread_sig = 1; }

static void *worker(void *arg) {
    long n = (long)arg;
    for (int i = 0; i < 10000; i++) { pthread_mutex_lock(&mu); counter++; pthread_mutex_unlock(&mu); }
    pthread_mutex_lock(&mu);
    arrived++;
    pthread_cond_broadcast(&cv);
    while (arrived < 8) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return (void *)(n * n);
}

static void *sleeper(void *arg) {
    (void)arg;
    struct timespec ts = {0, 5000000};
    for (int i = 0; i < 1000 && !thread_sig; i++) nanosleep(&ts, 0);
    return (void *)(long)thread_sig;
}

static int spawn_wait(const char *path, char *const argv[], int use_path) {
    pid_t pid; int st;
    int r = use_path ? posix_spawnp(&pid, path, 0, 0, argv, environ) : posix_spawn(&pid, path, 0, 0, argv, environ);
    if (r) return -r;
    if (waitpid(pid, &st, 0) != pid) return -1000;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    printf("musl static pid %d\n", (int)getpid());

    pthread_t t[8]; long sum = 0;
    for (long i = 0; i < 8; i++) pthread_create(&t[i], 0, worker, (void *)i);
    for (int i = 0; i < 8; i++) { void *r; pthread_join(t[i], &r); sum += (long)r; }
    printf("threads counter=%ld sum=%ld\n", counter, sum);

    struct sigaction sa = {0};
    sa.sa_handler = on_chld; sigaction(SIGCHLD, &sa, 0);
    int fds[2]; pipe(fds);
    pid_t p = fork();
    if (p == 0) {
        close(fds[0]);
        const char msg[] = "hello from the child";
        write(fds[1], msg, sizeof msg - 1);
        _exit(42);
    }
    close(fds[1]);
    char buf[64] = {0}; ssize_t n, got = 0;
    while ((n = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0) got += n;
    int st; while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
    printf("fork: pipe \"%s\" exit %d sigchld %d\n", buf, WEXITSTATUS(st), chld > 0);

    char *echo[] = {"echo", "posix_spawn", "of", "echo", 0};
    printf("posix_spawn rc %d\n", spawn_wait("/bin/echo", echo, 0));
    char *sh[] = {"sh", "-c", "echo spawnp; exit 3", 0};
    printf("posix_spawnp rc %d\n", spawn_wait("sh", sh, 1));
    char *missing[] = {"nope", 0};
    printf("posix_spawn missing rc %d\n", spawn_wait("/nonexistent", missing, 0));

    sa.sa_handler = on_usr1; sigaction(SIGUSR1, &sa, 0);
    raise(SIGUSR1); kill(getpid(), SIGUSR1);
    printf("usr1 handled %d\n", (int)usr1);

    sa.sa_handler = on_alrm; sigaction(SIGALRM, &sa, 0);
    sigset_t block, old; sigemptyset(&block); sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, &old);
    alarm(1);
    sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, 0);
    printf("alarm/sigsuspend %d\n", (int)alrm);

    sigset_t w; sigemptyset(&w); sigaddset(&w, SIGUSR2);
    sigprocmask(SIG_BLOCK, &w, 0);
    raise(SIGUSR2);
    int sig = 0; sigwait(&w, &sig);
    printf("sigwait %s\n", sig == SIGUSR2 ? "SIGUSR2" : "other");
    sigprocmask(SIG_UNBLOCK, &w, 0);

    sa.sa_handler = on_usr2; sigaction(SIGUSR2, &sa, 0);
    pthread_t th; pthread_create(&th, 0, sleeper, 0);
    pthread_kill(th, SIGUSR2);
    void *r; pthread_join(th, &r);
    printf("pthread_kill handled %ld\n", (long)r);

    p = fork();
    if (p == 0) { pause(); _exit(0); }
    kill(p, SIGTERM);
    while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
    printf("child killed by %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM ? "SIGTERM" : "?");
    printf("done\n");
    return 0;
}
"""


@pytest.fixture(scope="session")
def musl_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = need("musl-gcc")
    d = tmp_path_factory.mktemp("musl")
    (d / "prog.c").write_text(MUSL_C)
    subprocess.run([cc, "-static", "-O2", "-Wall", "-pthread", "-o", str(d / "prog"), str(d / "prog.c")],
                   check=True, capture_output=True, timeout=120)
    assert is_static_elf(d / "prog")
    return d / "prog"


def test_musl_static_program(runtimes, host_rootfs, musl_program, tmp_path):
    """musl-gcc -static: pthreads, fork, posix_spawn (clone(CLONE_VM|CLONE_VFORK)), signals."""
    app = write_app(tmp_path, {})
    shutil.copy2(musl_program, app / "prog")
    r = run_differential(runtimes, lambda mode: app_bundle(tmp_path, host_rootfs, app, ["/app/prog"], mode))
    assert r.rc == 0
    assert r.out == textwrap.dedent("""\
        musl static pid 1
        threads counter=80000 sum=140
        fork: pipe "hello from the child" exit 42 sigchld 1
        posix_spawn of echo
        posix_spawn rc 0
        spawnp
        posix_spawnp rc 3
        posix_spawn missing rc -2
        usr1 handled 2
        alarm/sigsuspend 1
        sigwait SIGUSR2
        pthread_kill handled 1
        child killed by SIGTERM
        done
        """), r.out


def test_musl_posix_spawn_repeatedly_on_the_libos(runtimes, host_rootfs, musl_program, tmp_path):
    """Regression: musl's posix_spawn child runs on a ~5 KB stack inside its
    parent's frame; a LibOS that used more stack there (ABOM once read
    /proc/self/maps into a 4 KB stack buffer) overwrote the parent's trap
    frame about one run in three.  Ten runs on the LibOS must all pass."""
    app = write_app(tmp_path, {})
    shutil.copy2(musl_program, app / "prog")
    rt = runtimes["on"]
    for i in range(10):
        r = rt.run(app_bundle(tmp_path, host_rootfs, app, ["/app/prog"], "on"),
                   cid=f"spawn-{i}-{uuid.uuid4().hex[:6]}")
        assert r.rc == 0 and r.out.endswith("done\n"), f"run {i}: rc {r.rc}\n{r.out}\n{r.err}"


# --- (4) a static Go program ------------------------------------------------------------

GO_MAIN = r"""
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	exe, err := os.Executable()
	fmt.Println("pid", os.Getpid(), "exe", exe, err)

	var wg sync.WaitGroup
	var done int64
	results := make(chan int, 500)
	for i := 0; i < 500; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := 0
			for j := 0; j < 20000; j++ {
				s += j % (i + 1)
			}
			time.Sleep(time.Millisecond)
			atomic.AddInt64(&done, 1)
			results <- i
		}(i)
	}
	wg.Wait()
	close(results)
	seen := make([]int, 0, 500)
	for r := range results {
		seen = append(seen, r)
	}
	sort.Ints(seen)
	fmt.Println("goroutines", done, seen[0], seen[len(seen)-1])

	for i := 0; i < 20; i++ {
		if err := exec.Command("/bin/true").Run(); err != nil {
			fmt.Println("exec /bin/true:", err)
			os.Exit(1)
		}
	}
	fmt.Println("exec /bin/true x20 ok")
	err = exec.Command("/bin/false").Run()
	fmt.Println("exec /bin/false:", err)
	out, err := exec.Command("/bin/sh", "-c", "echo $0 from-sh", "exec").Output()
	fmt.Printf("exec output %q %v\n", out, err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	var served int64
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		atomic.AddInt64(&served, 1)
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()
	const clients, per = 8, 25
	var errs int64
	var cwg sync.WaitGroup
	for c := 0; c < clients; c++ {
		cwg.Add(1)
		go func(c int) {
			defer cwg.Done()
			for i := 0; i < per; i++ {
				path := fmt.Sprintf("/c%d/r%d", c, i)
				resp, err := http.Get(base + path)
				if err != nil {
					fmt.Println("GET:", err)
					atomic.AddInt64(&errs, 1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "hello "+path {
					atomic.AddInt64(&errs, 1)
				}
			}
		}(c)
	}
	cwg.Wait()
	srv.Close()
	fmt.Println("http requests", clients*per, "served", atomic.LoadInt64(&served), "errors", errs)
	fmt.Println("done")
}
"""


@pytest.fixture(scope="session")
def go_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = need("go")
    d = tmp_path_factory.mktemp("go")
    (d / "go.mod").write_text("module apptest\n\ngo 1.18\n")
    (d / "main.go").write_text(GO_MAIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update(CGO_ENABLED="0", GOPROXY="off", GOFLAGS="-mod=mod", GOTOOLCHAIN="local",
               GOCACHE=str(d / "cache"), GOPATH=str(d / "gopath"), HOME=str(d))
    p = subprocess.run([go, "build", "-o", str(d / "prog"), "."], cwd=d, env=env,
                       capture_output=True, text=True, timeout=150)
    assert p.returncode == 0, p.stderr
    assert is_static_elf(d / "prog")
    return d / "prog"


def test_go_static_program(runtimes, host_rootfs, go_program, tmp_path):
    """CGO_ENABLED=0 Go: 500 goroutines, os/exec, net/http server and 200 client requests on 127.0.0.1."""
    app = write_app(tmp_path, {})
    shutil.copy2(go_program, app / "prog")
    r = run_differential(runtimes, lambda mode: app_bundle(tmp_path, host_rootfs, app, ["/app/prog"], mode),
                         timeout=90)
    assert r.rc == 0
    assert r.out == textwrap.dedent("""\
        pid 1 exe /app/prog <nil>
        goroutines 500 0 499
        exec /bin/true x20 ok
        exec /bin/false: exit status 1
        exec output "exec from-sh\\n" <nil>
        http requests 200 served 200 errors 0
        done
        """), r.out


# --- servers: nginx, redis -------------------------------------------------------------


# free_port and wait_port are the benchmark harness's (a server that never listens fails the test).


def container_status(rt: RuntimeUnderTest, cid: str) -> str:
    r = rt.cmd("state", cid)
    return json.loads(r.out)["status"] if r.rc == 0 else "gone"


def wait_stopped(rt: RuntimeUnderTest, cid: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while (status := container_status(rt, cid)) not in ("stopped", "gone") and time.monotonic() < deadline:
        time.sleep(0.05)
    return status


@contextlib.contextmanager
def server(rt: RuntimeUnderTest, bundle: Bundle, mode: str, port: int, log: Path) -> Iterator[str]:
    """Run the bundle detached (its stdout and stderr to *log*), wait for *port*; always delete it."""
    cid = f"app-{mode}-{uuid.uuid4().hex[:10]}"
    try:
        with open(log, "wb") as f:
            p = subprocess.run([rt.binary, "--root", rt.root, "run", "--detach", "--bundle", str(bundle.path), cid],
                               stdin=subprocess.DEVNULL, stdout=f, stderr=f, timeout=60)
        assert p.returncode == 0, f"{mode}: run --detach failed ({p.returncode}):\n{log.read_text()}"
        state = json.loads(rt.cmd("state", cid, check=True).out)
        status = Path(f"/proc/{state['pid']}/status").read_text()
        want = "2" if mode == "on" else "0"
        assert re.search(rf"^Seccomp:\s*{want}$", status, re.M), f"{mode}: server not as expected:\n{status}"
        try:
            wait_port(port, lambda: container_status(rt, cid) == "running")
        except RunFailed as e:
            raise AssertionError(f"{mode}: {e}\n{log.read_text(errors='replace')}") from None
        yield cid
    finally:
        rt.cmd("delete", "--force", cid)


NGINX_CONF = """
user root root;
daemon off;
master_process on;
worker_processes 2;
pid /tmp/nginx.pid;
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    keepalive_requests 1000;
    client_body_temp_path /tmp/cb; proxy_temp_path /tmp/pt; fastcgi_temp_path /tmp/ft;
    uwsgi_temp_path /tmp/ut; scgi_temp_path /tmp/st;
    server {{
        listen 127.0.0.1:{port};
        root /app/www;
    }}
}}
"""


def test_nginx_static_site(runtimes, host_rootfs, tmp_path):
    """nginx (master + 2 workers, sendfile) serves /app/www to 100 curl requests from the host."""
    nginx = need("nginx")
    curl = need("curl")
    page = "<html><body><h1>xcontainers</h1>" + "".join(f"<p>{i}</p>" for i in range(200)) + "</body></html>\n"
    big = random.Random(7).randbytes(3 << 20)
    app = write_app(tmp_path, {"www/index.html": page, "www/big.bin": big})
    observed: dict[str, Any] = {}
    for mode in modes(runtimes):
        rt, port = runtimes[mode], free_port()
        (app / f"nginx-{mode}.conf").write_text(NGINX_CONF.format(port=port))
        b = app_bundle(tmp_path, host_rootfs, app, [
            nginx,
            "-e", "stderr", "-p", "/tmp/", "-c", f"/app/nginx-{mode}.conf"], mode, probe=False)
        for caps in b.process["capabilities"].values():  # the workers' setgid/initgroups/setuid
            caps += ["CAP_SETUID", "CAP_SETGID"]
        b.write()
        log = tmp_path / f"nginx-{mode}.log"
        out = tmp_path / f"out-{mode}"
        out.mkdir()
        with server(rt, b, mode, port, log) as cid:
            url = f"http://127.0.0.1:{port}"
            p = subprocess.run([curl, "-sS", "--parallel", "--parallel-max", "8", "-w", "%{http_code} %{size_download}\\n",
                                "-o", f"{out}/page#1", f"{url}/index.html?n=[1-100]"],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, f"{mode}: curl failed: {p.stderr}\n{log.read_text()}"
            codes = sorted(p.stdout.splitlines())
            bodies = {(out / f"page{i}").read_text() for i in range(1, 101)}
            extra = subprocess.run([curl, "-sS", "-o", f"{out}/big", "-w", "%{http_code} %{content_type}\\n",
                                    f"{url}/big.bin", "-o", "/dev/null", f"{url}/index.html",
                                    "-o", "/dev/null", f"{url}/missing.html"],
                                   capture_output=True, text=True, timeout=60)
            assert extra.returncode == 0, extra.stderr
            big_ok = hashlib.sha256((out / "big").read_bytes()).digest() == hashlib.sha256(big).digest()
            assert rt.cmd("kill", cid, "TERM").rc == 0
            status = wait_stopped(rt, cid)
        logtext = log.read_text(errors="replace")
        observed[mode] = {"codes": codes, "bodies_ok": bodies == {page}, "extra": extra.stdout.splitlines(),
                          "big_ok": big_ok, "stopped": status,
                          "clean_exit": bool(re.search(r"\[notice\] 1#1: exit$", logtext, re.M)),
                          "emerg": re.findall(r"\[(?:emerg|alert|crit)\] \d+#\d+: (.*)", logtext)}
    ref_mode = modes(runtimes)[0]
    for mode, o in observed.items():
        assert o == observed[ref_mode], f"{mode} disagrees with {ref_mode}: {o}\nvs {observed[ref_mode]}"
    o = observed["on"]
    assert o["codes"] == [f"200 {len(page)}"] * 100 and o["bodies_ok"] and o["big_ok"], o
    assert o["extra"] == ["200 application/octet-stream", "200 text/html", "404 text/html"], o
    assert o["stopped"] == "stopped" and o["clean_exit"] and not o["emerg"], (o, (tmp_path / "nginx-on.log").read_text())


REDIS_COMMANDS = """
PING
SET greeting "hello world"
GET greeting
INCR counter
INCRBY counter 41
RPUSH list a b c
LRANGE list 0 -1
HSET h field1 v1 field2 v2
HGETALL h
SADD s x y z x
SCARD s
EXISTS greeting nothing
DEL list
DBSIZE
"""


def test_redis_server(runtimes, host_rootfs, tmp_path):
    """redis-server: redis-cli commands, BGSAVE (fork), redis-benchmark SET/GET, SHUTDOWN."""
    redis = need("redis-server")
    cli = need("redis-cli")
    bench = need("redis-benchmark")
    app = write_app(tmp_path, {})
    observed: dict[str, Any] = {}
    for mode in modes(runtimes):
        rt, port = runtimes[mode], free_port()
        b = app_bundle(tmp_path, host_rootfs, app, [
            redis, "--bind", "127.0.0.1", "--port", str(port), "--dir", "/tmp",
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""], mode, probe=False)
        log = tmp_path / f"redis-{mode}.log"
        with server(rt, b, mode, port, log) as cid:
            def rcli(*args: str, input: str | None = None) -> str:
                p = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(port), *args], input=input,
                                   capture_output=True, text=True, timeout=30)
                assert p.returncode == 0, f"{mode}: redis-cli {args}: {p.stderr}"
                return p.stdout
            replies = rcli(input=textwrap.dedent(REDIS_COMMANDS).lstrip())
            bgsave = rcli("BGSAVE").strip()
            deadline = time.monotonic() + 20
            while "rdb_bgsave_in_progress:0" not in (info := rcli("INFO", "persistence")) and time.monotonic() < deadline:
                time.sleep(0.05)
            persistence = {k: v for k, v in re.findall(r"^(rdb_bgsave_in_progress|rdb_last_bgsave_status):(\S+)",
                                                       info, re.M)}
            p = subprocess.run([bench, "-h", "127.0.0.1", "-p", str(port), "-q", "-n", "5000", "-t", "set,get"],
                               capture_output=True, text=True, timeout=90)
            assert p.returncode == 0, f"{mode}: redis-benchmark: {p.stderr}"
            lines = [ln.strip() for ln in re.split(r"[\r\n]", p.stdout) if "requests per second" in ln]
            bench_ok = sorted(ln.split(":")[0] for ln in lines)
            after = rcli("GET", "greeting").strip(), rcli("DBSIZE").strip()
            shutdown = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(port), "SHUTDOWN", "NOSAVE"],
                                      capture_output=True, text=True, timeout=30)
            status = wait_stopped(rt, cid)
        logtext = log.read_text(errors="replace")
        observed[mode] = {"replies": replies, "bgsave": bgsave, "persistence": persistence, "bench": bench_ok,
                          "after": after, "shutdown": (shutdown.returncode, shutdown.stdout.strip()),
                          "stopped": status, "bye": "ready to exit, bye bye" in logtext,
                          "saved": "DB saved on disk" in logtext}
    ref_mode = modes(runtimes)[0]
    for mode, o in observed.items():
        assert o == observed[ref_mode], f"{mode} disagrees with {ref_mode}:\n{o}\nvs\n{observed[ref_mode]}"
    o = observed["on"]
    assert o["replies"].splitlines() == [
        "PONG", "OK", "hello world", "1", "42", "3", "a", "b", "c", "2", "field1", "v1", "field2", "v2",
        "3", "3", "1", "1", "4"], o["replies"]
    assert o["bgsave"] == "Background saving started" and o["saved"], o
    assert o["persistence"] == {"rdb_bgsave_in_progress": "0", "rdb_last_bgsave_status": "ok"}, o
    assert o["bench"] == ["GET", "SET"], o
    assert o["stopped"] == "stopped" and o["bye"], (o, (tmp_path / "redis-on.log").read_text())


# --- a known LibOS difference ------------------------------------------------------------


@pytest.mark.xfail(strict=True, reason=(
    "X-LibOS: the kernel's exe of every LibOS process is the LibOS image (the runtime execs it "
    "from a memfd and it loads the program itself); libos.c fakes /proc/self|thread-self|<own pid>/exe "
    "for the calling process only, so another process reading /proc/<pid>/exe gets "
    "'/memfd:xc-libos (deleted)'"))
def test_proc_pid_exe_seen_by_another_process(runtimes, host_rootfs, tmp_path):
    """/proc/1/exe read by a child (readlink, ps-like tools, supervisors) names the program."""
    app = write_app(tmp_path, {})
    script = 'echo "self $(readlink /proc/self/exe)"; echo "pid1 $(readlink /proc/1/exe)"'
    r = run_differential(runtimes, lambda mode: app_bundle(
        tmp_path, host_rootfs, app, ["/bin/bash", "-c", script], mode))
    assert r.out.splitlines()[1] == f"pid1 {os.path.realpath('/bin/bash')}", r.out


# --- ABOM: the offline scan agrees with what the LibOS does ------------------------------


TRACE_LINE = re.compile(r"^abom (\S+) (0x[0-9a-f]+) nr=(\d+) (\S+)$", re.M)


def abom_disagreements(trace: str, host_path: Callable[[str], str]) -> tuple[int, list[str]]:
    """Compare each ABOM verdict the LibOS traced with `xc abom scan`'s for the same site.

    Online knows the trapped number, offline only an immediate: a site some
    jump enters at its `syscall` may trap with another number (imm-mismatch),
    and a register-number site's "special" is only known online."""
    from xcontainers.abom import scan_file

    scans: dict[str, dict[int, Any]] = {}
    compared, bad = 0, []
    for path, vaddr, nr, online in TRACE_LINE.findall(trace):
        if online == "not-file":
            continue
        hp = host_path(path)
        if hp not in scans:
            rep = scan_file(hp)
            assert rep.error is None, rep.error
            scans[hp] = {s.vaddr: s for s in rep.sites}
        site = scans[hp].get(int(vaddr, 16))
        if site is None:
            bad.append(f"{path} {vaddr} nr={nr} {online}: not a site the scan found")
            continue
        if site.entered_by_jump or (online == "special" and site.nr is None):
            continue
        compared += 1
        if site.verdict != online:
            bad.append(f"{path} {vaddr} nr={nr}: online {online}, scan {site.verdict}")
    return compared, bad


def test_abom_scan_agrees_with_online_patching(xc, host_rootfs, go_program, tmp_path):
    """nginx (and the libc.so.6 it runs on) serving curl, python3, and a static Go program, traced
    by the LibOS: every verdict on a site is the one `xc abom scan` gives for it offline."""
    nginx, curl = need("nginx"), need("curl")
    app = write_app(tmp_path, {"www/index.html": "hello\n"})
    shutil.copy2(go_program, app / "prog")
    trace = tmp_path / "trace.txt"

    def traced(args: list[str]) -> Bundle:
        b = app_bundle(tmp_path, host_rootfs, app, args, "on", probe=False)
        b.config["annotations"] = {LIBOS + ".trace": str(trace)}
        for caps in b.process["capabilities"].values():
            caps += ["CAP_SETUID", "CAP_SETGID"]
        return b.write()

    port = free_port()
    (app / "nginx.conf").write_text(NGINX_CONF.format(port=port))
    b = traced([nginx, "-e", "stderr", "-p", "/tmp/", "-c", "/app/nginx.conf"])
    with server(xc, b, "on", port, tmp_path / "nginx.log") as cid:
        p = subprocess.run([curl, "-sS", "-o", "/dev/null", f"http://127.0.0.1:{port}/index.html?[1-20]"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        xc.cmd("kill", cid, "TERM")
        wait_stopped(xc, cid)
    for args in (["/usr/bin/python3", "-c", "import json, subprocess; print(subprocess.run(['true']).returncode)"],
                 ["/app/prog"]):
        r = xc.run(traced(args), timeout=90)
        assert r.rc == 0, r.err
    text = trace.read_text()
    libc = os.path.realpath("/usr/lib/x86_64-linux-gnu/libc.so.6")
    seen = {m[0] for m in TRACE_LINE.findall(text)}
    assert any(os.path.realpath(p) == libc for p in seen) and "/app/prog" in seen, seen
    compared, bad = abom_disagreements(text, lambda p: str(app / "prog") if p == "/app/prog" else p)
    assert compared >= 40, (compared, text[:2000])
    assert not bad, "\n".join(bad)
