"""Tests for xcontainers.seccomp.

Validation tests are pure.  BPF tests need libseccomp.so.2.  Load tests fork:
the child loads a filter (which can never be removed) and reports what its
system calls did through a pipe; the parent asserts.
"""

from __future__ import annotations

import copy
import ctypes
import errno
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from xcontainers.errors import ConfigError, SetupError
from xcontainers.seccomp import FEATURES, check_profile, export_bpf, load

PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")
SRC = Path(__file__).resolve().parents[1] / "src"

# podman's default capability set, used to resolve includes/excludes.caps.
PODMAN_CAPS = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
    "CAP_SETUID", "CAP_SYS_CHROOT",
}

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="loading a filter without no_new_privs needs CAP_SYS_ADMIN")


# --- helpers ----------------------------------------------------------------


def allow_with(*syscalls: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(syscalls), **extra}


def podman_profile() -> dict[str, Any]:
    """/usr/share/containers/seccomp.json turned into the OCI form podman
    writes into config.json on x86_64 with its default capabilities."""
    if not PODMAN_PROFILE.exists():
        pytest.skip(f"{PODMAN_PROFILE} not present (podman/containers-common not installed)")
    if os.uname().machine != "x86_64":
        pytest.skip("the profile conversion below resolves archMap for x86_64 only")
    doc = json.loads(PODMAN_PROFILE.read_text())
    arches: list[str] = []
    for a in doc.get("archMap") or []:
        if a["architecture"] == "SCMP_ARCH_X86_64":
            arches = [a["architecture"], *(a.get("subArchitectures") or [])]
    syscalls = []
    for c in doc["syscalls"]:
        inc, exc = c.get("includes") or {}, c.get("excludes") or {}
        if "amd64" in (exc.get("arches") or []) or set(exc.get("caps") or []) & PODMAN_CAPS:
            continue
        if inc.get("arches") and "amd64" not in inc["arches"]:
            continue
        if inc.get("caps") and not set(inc["caps"]) <= PODMAN_CAPS:
            continue
        entry: dict[str, Any] = {"names": c["names"], "action": c["action"]}
        if c.get("errnoRet") is not None:
            entry["errnoRet"] = c["errnoRet"]
        if c.get("args"):
            entry["args"] = c["args"]
        syscalls.append(entry)
    profile: dict[str, Any] = {"defaultAction": doc["defaultAction"], "architectures": arches, "syscalls": syscalls}
    if doc.get("defaultErrnoRet") is not None:
        profile["defaultErrnoRet"] = doc["defaultErrnoRet"]
    return profile


def insns(bpf: bytes) -> list[tuple[int, int, int, int]]:
    """struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}, native order."""
    return [struct.unpack("=HBBI", bpf[i:i + 8]) for i in range(0, len(bpf), 8)]


BPF_RET_K = 0x06
BPF_JEQ_K = 0x15


def returns(bpf: bytes) -> set[int]:
    return {k for code, _, _, k in insns(bpf) if code == BPF_RET_K}


_scmp = None


def nr(name: str) -> int:
    """Native syscall number, as libseccomp knows it."""
    global _scmp
    if _scmp is None:
        _scmp = ctypes.CDLL("libseccomp.so.2")
        _scmp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        _scmp.seccomp_syscall_resolve_name.restype = ctypes.c_int
    n = _scmp.seccomp_syscall_resolve_name(name.encode())
    assert n >= 0, name
    return n


def raw_syscall(name: str, *args: int) -> tuple[int, int]:
    """(return value, errno) of the raw system call, bypassing libc wrappers."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(nr(name)), *(ctypes.c_long(a) for a in args))
    return rc, ctypes.get_errno()


def in_child(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Run fn in a forked child; return (wait status, fn's JSON result).

    The result is None if the child died before reporting, or
    {"exception": "..."} if fn raised."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGSYS dumps core
            out = json.dumps({"result": fn()})
        except BaseException as e:  # noqa: BLE001 - report everything to the parent
            out = json.dumps({"exception": f"{type(e).__name__}: {e}"})
            code = 1
        try:
            os.write(w, out.encode())
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    data = json.loads(b"".join(chunks)) if chunks else None
    if data is not None and "exception" in data:
        return status, data
    return status, None if data is None else data["result"]


def assert_clean_exit(status: int, data: Any) -> Any:
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (status, data)
    return data


# --- FEATURES and module hygiene ------------------------------------------


def test_features_shape() -> None:
    assert set(FEATURES) == {"enabled", "actions", "operators", "archs", "knownFlags", "supportedFlags"}
    assert FEATURES["enabled"] is True
    assert "SCMP_ACT_ERRNO" in FEATURES["actions"]
    assert "SCMP_ACT_KILL_PROCESS" in FEATURES["actions"]
    assert "SCMP_ACT_NOTIFY" not in FEATURES["actions"]
    assert FEATURES["operators"] == sorted(
        ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]
    )
    for arch in ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"):
        assert arch in FEATURES["archs"]
    assert set(FEATURES["supportedFlags"]) <= set(FEATURES["knownFlags"])
    assert "SECCOMP_FILTER_FLAG_TSYNC" in FEATURES["supportedFlags"]
    json.dumps(FEATURES)  # goes straight into `xc-runtime features`


def test_arch_tokens_match_libseccomp() -> None:
    """Our SCMP_ARCH_* table agrees with the installed library."""
    from xcontainers import seccomp

    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    for name, token in seccomp._ARCHES.items():
        short = name.removeprefix("SCMP_ARCH_").lower()
        assert lib.seccomp_arch_resolve_name(short.encode()) == token, name


def test_check_profile_does_not_import_ctypes() -> None:
    code = (
        "import sys\n"
        "from xcontainers.seccomp import check_profile, FEATURES\n"
        "check_profile({'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': "
        "[{'names': ['read'], 'action': 'SCMP_ACT_ERRNO'}]})\n"
        "assert 'ctypes' not in sys.modules, 'ctypes imported'\n"
        "assert 'xcontainers.kernel' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --- check_profile: accepted --------------------------------------------------


def test_check_profile_accepts_podman_default() -> None:
    check_profile(podman_profile())


def test_check_profile_accepts_every_known_name() -> None:
    actions = [a for a in FEATURES["actions"] if a != "SCMP_ACT_ALLOW"]
    check_profile({
        "defaultAction": "SCMP_ACT_ALLOW",
        "defaultErrnoRet": 1,
        "architectures": FEATURES["archs"],
        "flags": FEATURES["supportedFlags"],
        "listenerPath": "",
        "syscalls": [
            {
                "names": ["getppid"],
                "action": action,
                "errnoRet": 5,
                "args": [{"index": i, "value": 1, "valueTwo": 2, "op": op}
                         for i, op in enumerate(FEATURES["operators"][:6])],
            }
            for action in actions
        ],
    })


def test_check_profile_accepts_minimal_and_nulls() -> None:
    check_profile({"defaultAction": "SCMP_ACT_ERRNO"})
    check_profile({"defaultAction": "SCMP_ACT_KILL", "architectures": None, "flags": None, "syscalls": None})
    check_profile(allow_with({"names": [], "action": "SCMP_ACT_LOG", "args": None, "errnoRet": None}))


def test_unknown_syscall_names_are_not_an_error() -> None:
    p = allow_with({"names": ["no_such_syscall_xyz", "getppid"], "action": "SCMP_ACT_ERRNO"})
    check_profile(p)
    assert export_bpf(p) == export_bpf(allow_with({"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}))


# --- check_profile: refused ---------------------------------------------------

OK_RULE = {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}


def _with_rule(**fields: Any) -> dict[str, Any]:
    rule = {**OK_RULE, **fields}
    return allow_with(copy.deepcopy(OK_RULE), rule)


def _with_arg(**fields: Any) -> dict[str, Any]:
    arg: dict[str, Any] = {"index": 0, "value": 1, "op": "SCMP_CMP_EQ", **fields}
    arg = {k: v for k, v in arg.items() if v is not ...}
    return _with_rule(args=[arg])


BAD = [
    ("not-an-object", [], "linux.seccomp: must be an object"),
    ("missing-default", {}, "linux.seccomp.defaultAction: required"),
    ("unknown-default", {"defaultAction": "SCMP_ACT_FOO"},
     "linux.seccomp.defaultAction: unknown action 'SCMP_ACT_FOO'"),
    ("default-not-string", {"defaultAction": 1}, "linux.seccomp.defaultAction: must be a string"),
    ("default-notify", {"defaultAction": "SCMP_ACT_NOTIFY"}, "linux.seccomp.defaultAction: seccomp notify"),
    ("unknown-field", {"defaultAction": "SCMP_ACT_ALLOW", "archMap": []}, "linux.seccomp.archMap: unknown field"),
    ("listener", {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"},
     "linux.seccomp.listenerPath: seccomp notify"),
    ("listener-metadata", {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"},
     "linux.seccomp.listenerMetadata: seccomp notify"),
    ("default-errno-negative", {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1},
     "linux.seccomp.defaultErrnoRet: must be an integer between 0 and 65535"),
    ("default-errno-string", {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": "1"},
     "linux.seccomp.defaultErrnoRet: must be an integer"),
    ("default-errno-huge", {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000},
     "linux.seccomp.defaultErrnoRet: must be an integer"),
    ("arch-unknown", {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]},
     "linux.seccomp.architectures[1]: unknown architecture 'SCMP_ARCH_VAX'"),
    ("arch-not-list", {"defaultAction": "SCMP_ACT_ALLOW", "architectures": "SCMP_ARCH_X86"},
     "linux.seccomp.architectures: must be an array of strings"),
    ("flag-unknown", {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"]},
     "linux.seccomp.flags[0]: unknown flag 'SECCOMP_FILTER_FLAG_FOO'"),
    ("flag-not-list", {"defaultAction": "SCMP_ACT_ALLOW", "flags": [1]},
     "linux.seccomp.flags: must be an array of strings"),
    ("flag-wait-killable", {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]},
     "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs seccomp notify"),
    ("syscalls-not-list", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}},
     "linux.seccomp.syscalls: must be an array"),
    ("syscall-not-object", allow_with("read"), "linux.seccomp.syscalls[0]: must be an object"),
    ("syscall-unknown-field", _with_rule(comment="hi"), "linux.seccomp.syscalls[1].comment: unknown field"),
    ("action-unknown", _with_rule(action="SCMP_ACT_FOO"),
     "linux.seccomp.syscalls[1].action: unknown action 'SCMP_ACT_FOO'"),
    ("action-missing", allow_with({"names": ["read"]}), "linux.seccomp.syscalls[0].action: required"),
    ("action-notify", _with_rule(action="SCMP_ACT_NOTIFY"),
     "linux.seccomp.syscalls[1].action: seccomp notify (SCMP_ACT_NOTIFY, listenerPath) is not supported"),
    ("errno-negative", _with_rule(errnoRet=-5), "linux.seccomp.syscalls[1].errnoRet: must be an integer"),
    ("errno-bool", _with_rule(errnoRet=True), "linux.seccomp.syscalls[1].errnoRet: must be an integer"),
    ("errno-float", _with_rule(errnoRet=1.5), "linux.seccomp.syscalls[1].errnoRet: must be an integer"),
    ("names-string", _with_rule(names="read"), "linux.seccomp.syscalls[1].names: must be an array of strings"),
    ("names-ints", _with_rule(names=["read", 0]), "linux.seccomp.syscalls[1].names: must be an array of strings"),
    ("names-missing", allow_with({"action": "SCMP_ACT_ERRNO"}),
     "linux.seccomp.syscalls[0].names: must be an array of strings"),
    ("args-not-list", _with_rule(args={}), "linux.seccomp.syscalls[1].args: must be an array"),
    ("arg-not-object", _with_rule(args=[0]), "linux.seccomp.syscalls[1].args[0]: must be an object"),
    ("arg-unknown-field", _with_arg(mask=1), "linux.seccomp.syscalls[1].args[0].mask: unknown field"),
    ("arg-op-unknown", _with_arg(op="SCMP_CMP_FOO"),
     "linux.seccomp.syscalls[1].args[0].op: unknown operator 'SCMP_CMP_FOO'"),
    ("arg-op-missing", _with_arg(op=...), "linux.seccomp.syscalls[1].args[0].op: must be a string"),
    ("arg-index-6", _with_arg(index=6), "linux.seccomp.syscalls[1].args[0].index: must be an integer between 0 and 5"),
    ("arg-index-negative", _with_arg(index=-1), "linux.seccomp.syscalls[1].args[0].index: must be an integer"),
    ("arg-index-missing", _with_arg(index=...), "linux.seccomp.syscalls[1].args[0].index: must be an integer"),
    ("arg-value-negative", _with_arg(value=-1), "linux.seccomp.syscalls[1].args[0].value: must be an integer"),
    ("arg-value-missing", _with_arg(value=...), "linux.seccomp.syscalls[1].args[0].value: must be an integer"),
    ("arg-value-string", _with_arg(value="1"), "linux.seccomp.syscalls[1].args[0].value: must be an integer"),
    ("arg-value2-huge", _with_arg(valueTwo=1 << 64), "linux.seccomp.syscalls[1].args[0].valueTwo: must be an integer"),
]


@pytest.mark.parametrize("profile,message", [(p, m) for _, p, m in BAD], ids=[i for i, _, _ in BAD])
def test_check_profile_refuses(profile: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_profile(profile)
    assert message in str(info.value)


@pytest.mark.parametrize("fn", [export_bpf, load])
def test_bad_profile_is_config_error_before_libseccomp(fn: Callable[[Any], Any]) -> None:
    # load() with an invalid profile fails in validation, so this is safe in-process.
    with pytest.raises(ConfigError, match=r"linux\.seccomp\.syscalls\[0\]\.action"):
        fn(allow_with({"names": ["getppid"], "action": "SCMP_ACT_FOO"}))


# --- export_bpf ---------------------------------------------------------------


def test_export_bpf_is_a_program() -> None:
    bpf = export_bpf(allow_with({"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}))
    assert bpf and len(bpf) % 8 == 0
    assert returns(bpf) >= {0x7FFF0000, 0x00050000 | 38}
    assert insns(bpf)[-1][0] == BPF_RET_K


def test_export_bpf_podman_default() -> None:
    bpf = export_bpf(podman_profile())
    assert bpf and len(bpf) % 8 == 0
    assert len(bpf) // 8 <= 4096  # BPF_MAXINSNS
    # default action ERRNO(ENOSYS), explicit denials ERRNO(EPERM), EINVAL for audit sockets
    assert {0x00050000 | errno.ENOSYS, 0x00050000 | errno.EPERM, 0x00050000 | errno.EINVAL, 0x7FFF0000} <= returns(bpf)


@pytest.mark.parametrize(
    "action,errno_ret,value",
    [
        ("SCMP_ACT_KILL", None, 0x00000000),
        ("SCMP_ACT_KILL_THREAD", None, 0x00000000),
        ("SCMP_ACT_KILL_PROCESS", None, 0x80000000),
        ("SCMP_ACT_TRAP", None, 0x00030000),
        ("SCMP_ACT_ERRNO", None, 0x00050000 | errno.EPERM),
        ("SCMP_ACT_ERRNO", errno.ENXIO, 0x00050000 | errno.ENXIO),
        ("SCMP_ACT_TRACE", None, 0x7FF00000 | errno.EPERM),
        ("SCMP_ACT_TRACE", 7, 0x7FF00007),
        ("SCMP_ACT_LOG", None, 0x7FFC0000),
    ],
)
def test_rule_actions_encode(action: str, errno_ret: int | None, value: int) -> None:
    rule: dict[str, Any] = {"names": ["getppid"], "action": action}
    if errno_ret is not None:
        rule["errnoRet"] = errno_ret
    assert value in returns(export_bpf(allow_with(rule)))


def test_default_errno_ret() -> None:
    bpf = export_bpf({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.ENXIO,
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"},
        ],
    })
    # the default uses defaultErrnoRet; a rule without errnoRet gets EPERM (OCI spec, runc)
    assert {0x00050000 | errno.ENXIO, 0x00050000 | errno.EPERM, 0x7FFF0000} <= returns(bpf)
    enxio_only = export_bpf({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENXIO})
    assert 0x00050000 | errno.EPERM not in returns(enxio_only)
    assert 0x00050000 | errno.EPERM in returns(export_bpf({"defaultAction": "SCMP_ACT_ERRNO"}))


def test_rule_with_default_action_is_skipped() -> None:
    plain = export_bpf({"defaultAction": "SCMP_ACT_ALLOW"})
    assert export_bpf(allow_with({"names": ["read"], "action": "SCMP_ACT_ALLOW"})) == plain
    # ERRNO(1) differs from a default ERRNO(38): not skipped
    base = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}
    same = {**base, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}
    other = {**base, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
    assert export_bpf(same) == export_bpf(base)
    assert export_bpf(other) != export_bpf(base)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="checks x86 sub-architectures")
def test_architectures_are_added() -> None:
    native = export_bpf(allow_with(OK_RULE, architectures=["SCMP_ARCH_X86_64"]))
    multi = export_bpf(allow_with(OK_RULE, architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]))
    jeq = {k for code, _, _, k in insns(multi) if code == BPF_JEQ_K}
    assert 0x40000003 in jeq  # AUDIT_ARCH_I386
    assert 0x40000003 not in {k for code, _, _, k in insns(native) if code == BPF_JEQ_K}
    assert len(multi) > len(native)


def test_incompatible_architectures_are_a_setup_error() -> None:
    # libseccomp cannot mix byte orders in one filter
    with pytest.raises(SetupError, match=r"seccomp_arch_add\(SCMP_ARCH_S390X\)"):
        export_bpf(allow_with(OK_RULE, architectures=["SCMP_ARCH_S390X"]))


def test_same_argument_twice_becomes_separate_rules() -> None:
    # libseccomp refuses two conditions on one argument in a rule; like runc
    # we add one rule per condition instead of failing.
    rule = {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
    ]}
    jeq = {k for code, _, _, k in insns(export_bpf(allow_with(rule))) if code == BPF_JEQ_K}
    assert {8, 16} <= jeq


# --- load, in forked children -------------------------------------------------


@needs_root
def test_load_errno_enosys() -> None:
    def child() -> Any:
        before = raw_syscall("getppid")
        load(allow_with({"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}))
        return [before, raw_syscall("getppid"), raw_syscall("getpid")[0] == os.getpid()]

    status, data = in_child(child)
    before, after, getpid_ok = assert_clean_exit(status, data)
    assert before == [os.getpid(), 0]
    assert after == [-1, errno.ENOSYS]
    assert getpid_ok


@needs_root
def test_load_args_mkdir_eperm(tmp_path: Path) -> None:
    rules = [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 0o700, "op": "SCMP_CMP_EQ"}]},
        {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 2, "value": 0o700, "op": "SCMP_CMP_EQ"}]},
    ]

    def child() -> Any:
        load(allow_with(*rules))
        out = []
        for name, mode in (("a", 0o700), ("b", 0o755)):
            try:
                os.mkdir(tmp_path / name, mode)
                out.append(0)
            except OSError as e:
                out.append(e.errno)
        return out

    status, data = in_child(child)
    assert assert_clean_exit(status, data) == [errno.EPERM, 0]
    assert not (tmp_path / "a").exists() and (tmp_path / "b").is_dir()


@needs_root
def test_load_personality_eq() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    query = 0xFFFFFFFF

    def personality(p: int) -> tuple[int, int]:
        ctypes.set_errno(0)
        return libc.personality(ctypes.c_ulong(p)), ctypes.get_errno()

    def child() -> Any:
        current = personality(query)[0]
        load(allow_with({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES, "args": [
            {"index": 0, "value": 0x0008, "op": "SCMP_CMP_EQ"},   # PER_LINUX32
            {"index": 0, "value": 0x0040000, "op": "SCMP_CMP_EQ"},  # ADDR_NO_RANDOMIZE: same index, own rule
        ]}))
        return [personality(0x0008), personality(0x0040000), personality(query)[0] == current]

    status, data = in_child(child)
    linux32, norandom, query_ok = assert_clean_exit(status, data)
    assert linux32 == [-1, errno.EACCES]
    assert norandom == [-1, errno.EACCES]
    assert query_ok


@needs_root
def test_load_masked_eq(tmp_path: Path) -> None:
    # refuse any mkdir whose mode gives "other" write permission
    rules = [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS,
         "args": [{"index": 1, "value": 0o002, "valueTwo": 0o002, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS,
         "args": [{"index": 2, "value": 0o002, "valueTwo": 0o002, "op": "SCMP_CMP_MASKED_EQ"}]},
    ]

    def child() -> Any:
        load(allow_with(*rules))
        out = []
        for name, mode in (("w", 0o777), ("r", 0o755)):
            try:
                os.mkdir(tmp_path / name, mode)
                out.append(0)
            except OSError as e:
                out.append(e.errno)
        return out

    status, data = in_child(child)
    assert assert_clean_exit(status, data) == [errno.EROFS, 0]


@needs_root
@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"])
def test_load_kill(action: str) -> None:
    def child() -> Any:
        load(allow_with({"names": ["getppid"], "action": action}))
        raw_syscall("getppid")
        return "survived"

    status, data = in_child(child)
    assert data is None, data
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


@needs_root
def test_load_trap_sends_sigsys() -> None:
    def child() -> Any:
        caught = []
        signal.signal(signal.SIGSYS, lambda signum, frame: caught.append(signum))
        load(allow_with({"names": ["getppid"], "action": "SCMP_ACT_TRAP"}))
        raw_syscall("getppid")
        return caught

    status, data = in_child(child)
    assert assert_clean_exit(status, data) == [signal.SIGSYS]


@needs_root
def test_load_with_flags_and_extra_arches() -> None:
    arches = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"] if os.uname().machine == "x86_64" else []

    def filters() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Seccomp_filters:"):
                return int(line.split()[1])
        return -1

    def child() -> Any:
        before = filters()
        load(allow_with(
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
            architectures=arches,
            flags=FEATURES["supportedFlags"],
        ))
        return [before, filters(), raw_syscall("getppid")]

    status, data = in_child(child)
    before, after, call = assert_clean_exit(status, data)
    assert after == before + 1 or before == -1
    assert call == [-1, errno.ENOSYS]


@needs_root
def test_load_podman_default() -> None:
    profile = podman_profile()

    def child() -> Any:
        load(profile)
        out = {}
        # open_by_handle_at needs CAP_DAC_READ_SEARCH, which podman does not grant: EPERM
        out["open_by_handle_at"] = raw_syscall("open_by_handle_at", -1, 0, 0)[1]
        # audit netlink sockets are refused with EINVAL (two conditions in one rule)
        try:
            socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9).close()  # NETLINK_AUDIT
            out["audit"] = 0
        except OSError as e:
            out["audit"] = e.errno
        # ordinary netlink sockets are fine
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()  # NETLINK_ROUTE
        # a number no kernel has gets the default action, ERRNO(ENOSYS)
        libc = ctypes.CDLL(None, use_errno=True)
        ctypes.set_errno(0)
        out["unknown"] = [libc.syscall(ctypes.c_long(4000)), ctypes.get_errno()]
        out["getppid"] = os.getppid() == raw_syscall("getppid")[0]
        return out

    status, data = in_child(child)
    out = assert_clean_exit(status, data)
    assert out == {"open_by_handle_at": errno.EPERM, "audit": errno.EINVAL, "unknown": [-1, errno.ENOSYS],
                   "getppid": True}


@needs_root
def test_load_without_privilege_is_a_setup_error() -> None:
    def child() -> Any:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)  # drops CAP_SYS_ADMIN; no_new_privs is not set
        try:
            load(allow_with(OK_RULE))
        except SetupError as e:
            return str(e)
        return "loaded"

    status, data = in_child(child)
    message = assert_clean_exit(status, data)
    assert "seccomp(SECCOMP_SET_MODE_FILTER)" in message
    assert os.strerror(errno.EACCES) in message
