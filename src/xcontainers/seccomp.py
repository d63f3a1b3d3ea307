"""Seccomp filters from the OCI ``linux.seccomp`` section.

Seccomp lets a process hand the kernel a small BPF program that runs on every
system call the process (and everything it later executes) makes.  The
program sees the call's number, the calling convention's architecture and
its six raw arguments, and answers with an action: allow the call, fail it
with an errno, log it, send SIGSYS (trap), hand it to a ptrace tracer, or
kill the thread or the whole process.  A filter can never be removed, only
stacked upon, and loading one needs either no_new_privs or CAP_SYS_ADMIN.

An OCI profile is a declarative form of such a program, and maps one to one
onto libseccomp, which writes the BPF for us:

* ``defaultAction`` (with ``defaultErrnoRet``) is the action for every call
  no rule matches: ``seccomp_init(action)``.
* ``architectures`` are the extra calling conventions the filter decodes
  (e.g. i386 and x32 on x86_64): ``seccomp_arch_add``.  Calls made through an
  architecture the filter does not list are killed.
* ``flags`` are ``seccomp(2)`` flags (TSYNC, LOG, SPEC_ALLOW), set through
  ``seccomp_attr_set``.
* each ``syscalls`` entry is one ``seccomp_rule_add_array`` per name, its
  ``args`` becoming ``struct scmp_arg_cmp`` conditions (all of which must
  hold).  ``errnoRet`` is the errno for SCMP_ACT_ERRNO (and the message for
  SCMP_ACT_TRACE); both default to EPERM, as in runc.  Names the library
  does not know are skipped, and so are rules whose action is the default
  action, again as runc does.

Seccomp notify (SCMP_ACT_NOTIFY, ``listenerPath``) is not supported.

:func:`check_profile` is pure validation and needs no library.  :func:`load`
and :func:`export_bpf` talk to ``libseccomp.so.2`` through ctypes, imported
only when called.  :func:`load` asks libseccomp for the BPF program, releases
the library's context and then installs the program with a single
``seccomp(2)`` call, so nothing of ours runs a system call once the filter is
in force: the container's init can call it right before ``execve``.
"""

from __future__ import annotations

import errno as _errno
import json
import os
from typing import Any

from .errors import ConfigError, SetupError, field_name, quoted, shown

__all__ = ["check_profile", "load", "export_bpf", "FEATURES"]

# --- the vocabulary of a profile ------------------------------------------

# Action values from <seccomp.h>; ERRNO and TRACE carry a 16-bit datum.
_ACT_KILL_THREAD = 0x00000000
_ACT_KILL_PROCESS = 0x80000000
_ACT_TRAP = 0x00030000
_ACT_ERRNO = 0x00050000
_ACT_TRACE = 0x7FF00000
_ACT_LOG = 0x7FFC0000
_ACT_ALLOW = 0x7FFF0000

_ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": _ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": _ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": _ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": _ACT_TRAP,
    "SCMP_ACT_ERRNO": _ACT_ERRNO,
    "SCMP_ACT_TRACE": _ACT_TRACE,
    "SCMP_ACT_ALLOW": _ACT_ALLOW,
    "SCMP_ACT_LOG": _ACT_LOG,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
_ERRNO_MAX = 0xFFFF

# enum scmp_compare
_OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# SCMP_ARCH_* tokens (the AUDIT_ARCH_* values) libseccomp 2.5 knows.
_ARCHES: dict[str, int] = {
    "SCMP_ARCH_X86": 0x40000003,
    "SCMP_ARCH_X86_64": 0xC000003E,
    "SCMP_ARCH_X32": 0x4000003E,
    "SCMP_ARCH_ARM": 0x40000028,
    "SCMP_ARCH_AARCH64": 0xC00000B7,
    "SCMP_ARCH_MIPS": 0x00000008,
    "SCMP_ARCH_MIPS64": 0x80000008,
    "SCMP_ARCH_MIPS64N32": 0xA0000008,
    "SCMP_ARCH_MIPSEL": 0x40000008,
    "SCMP_ARCH_MIPSEL64": 0xC0000008,
    "SCMP_ARCH_MIPSEL64N32": 0xE0000008,
    "SCMP_ARCH_PPC": 0x00000014,
    "SCMP_ARCH_PPC64": 0x80000015,
    "SCMP_ARCH_PPC64LE": 0xC0000015,
    "SCMP_ARCH_S390": 0x00000016,
    "SCMP_ARCH_S390X": 0x80000016,
    "SCMP_ARCH_PARISC": 0x0000000F,
    "SCMP_ARCH_PARISC64": 0x8000000F,
    "SCMP_ARCH_RISCV64": 0xC00000F3,
}

# enum scmp_filter_attr
_FLTATR_CTL_NNP = 3
_FLTATR_CTL_TSYNC = 4
_FLTATR_CTL_LOG = 6
_FLTATR_CTL_SSB = 7

_SECCOMP_SET_MODE_FILTER = 1  # seccomp(2) operation

# OCI flag -> (libseccomp attribute, seccomp(2) flag bit)
_FLAGS: dict[str, tuple[int, int]] = {
    "SECCOMP_FILTER_FLAG_TSYNC": (_FLTATR_CTL_TSYNC, 1 << 0),
    "SECCOMP_FILTER_FLAG_LOG": (_FLTATR_CTL_LOG, 1 << 1),
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": (_FLTATR_CTL_SSB, 1 << 2),
}
# Known to the OCI spec but meaningful only with a notify listener.
_NOTIFY_FLAGS = ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",)

_PROFILE_KEYS = (
    "defaultAction", "defaultErrnoRet", "architectures", "flags",
    "listenerPath", "listenerMetadata", "syscalls",
)
_SYSCALL_KEYS = ("names", "action", "errnoRet", "args")
_ARG_KEYS = ("index", "value", "valueTwo", "op")
_MAX_ARGS = 6
_U64 = (1 << 64) - 1
_NOTIFY = "seccomp notify (SCMP_ACT_NOTIFY, listenerPath) is not supported by xc-runtime"

FEATURES: dict[str, Any] = {
    "enabled": True,
    "actions": sorted(_ACTIONS),
    "operators": sorted(_OPERATORS),
    "archs": sorted(_ARCHES),
    "knownFlags": [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ],
    "supportedFlags": [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_LOG",
    ],
}

_WHERE = "linux.seccomp"


# --- validation -------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_keys(obj: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for k in obj:
        if k not in known:
            raise ConfigError(f"{where}.{field_name(k)}: unknown field")


def _check_action(v: Any, where: str) -> str:
    if v is None:
        raise ConfigError(f"{where}: required")
    if not isinstance(v, str):
        raise ConfigError(f"{where}: must be a string, not {shown(v)}")
    if v == "SCMP_ACT_NOTIFY":
        raise ConfigError(f"{where}: {_NOTIFY}")
    if v not in _ACTIONS:
        raise ConfigError(f"{where}: unknown action {quoted(v)}")
    return v


def _check_errno(v: Any, where: str) -> None:
    if v is None:
        return
    if not _is_int(v) or v < 0 or v > _ERRNO_MAX:
        raise ConfigError(f"{where}: must be an integer between 0 and {_ERRNO_MAX}, not {shown(v)}")


def _check_str_list(v: Any, where: str) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{where}: must be an array of strings")
    return v


def _check_arg(a: Any, where: str) -> None:
    if not isinstance(a, dict):
        raise ConfigError(f"{where}: must be an object")
    _check_keys(a, _ARG_KEYS, where)
    idx = a.get("index")
    if not _is_int(idx) or idx < 0 or idx >= _MAX_ARGS:
        raise ConfigError(f"{where}.index: must be an integer between 0 and {_MAX_ARGS - 1}, not {shown(idx)}")
    for key, required in (("value", True), ("valueTwo", False)):
        v = a.get(key)
        if v is None and not required:
            continue
        if not _is_int(v) or v < 0 or v > _U64:
            raise ConfigError(f"{where}.{key}: must be an integer between 0 and {_U64}, not {shown(v)}")
    op = a.get("op")
    if not isinstance(op, str):
        raise ConfigError(f"{where}.op: must be a string, not {shown(op)}")
    if op not in _OPERATORS:
        raise ConfigError(f"{where}.op: unknown operator {quoted(op)}")


def _check_syscall(sc: Any, where: str) -> None:
    if not isinstance(sc, dict):
        raise ConfigError(f"{where}: must be an object")
    _check_keys(sc, _SYSCALL_KEYS, where)
    names = sc.get("names")
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise ConfigError(f"{where}.names: must be an array of strings")
    _check_action(sc.get("action"), f"{where}.action")
    _check_errno(sc.get("errnoRet"), f"{where}.errnoRet")
    args = sc.get("args")
    if args is None:
        return
    if not isinstance(args, list):
        raise ConfigError(f"{where}.args: must be an array")
    for j, a in enumerate(args):
        _check_arg(a, f"{where}.args[{j}]")


def check_profile(profile: dict[str, Any]) -> None:
    """Check an OCI ``linux.seccomp`` object; raise ConfigError naming the bad field.

    Syscall names are not checked: like runc, names the library does not
    know are skipped when the filter is built.
    """
    w = _WHERE
    if not isinstance(profile, dict):
        raise ConfigError(f"{w}: must be an object")
    _check_keys(profile, _PROFILE_KEYS, w)
    for key in ("listenerPath", "listenerMetadata"):
        if profile.get(key) not in (None, ""):
            raise ConfigError(f"{w}.{key}: {_NOTIFY}")
    _check_action(profile.get("defaultAction"), f"{w}.defaultAction")
    _check_errno(profile.get("defaultErrnoRet"), f"{w}.defaultErrnoRet")
    for i, arch in enumerate(_check_str_list(profile.get("architectures"), f"{w}.architectures")):
        if arch not in _ARCHES:
            raise ConfigError(f"{w}.architectures[{i}]: unknown architecture {quoted(arch)}")
    for i, flag in enumerate(_check_str_list(profile.get("flags"), f"{w}.flags")):
        if flag in _NOTIFY_FLAGS:
            raise ConfigError(f"{w}.flags[{i}]: {flag} needs seccomp notify; {_NOTIFY}")
        if flag not in _FLAGS:
            raise ConfigError(f"{w}.flags[{i}]: unknown flag {quoted(flag)}")
    syscalls = profile.get("syscalls")
    if syscalls is None:
        return
    if not isinstance(syscalls, list):
        raise ConfigError(f"{w}.syscalls: must be an array")
    for i, sc in enumerate(syscalls):
        _check_syscall(sc, f"{w}.syscalls[{i}]")


# --- libseccomp through ctypes ----------------------------------------------

_lib_cache: Any = None


def _lib() -> Any:
    """libseccomp.so.2 with prototypes set, loaded once."""
    global _lib_cache
    if _lib_cache is not None:
        return _lib_cache
    import ctypes

    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as e:
        raise SetupError(f"libseccomp: cannot load libseccomp.so.2: {e}") from None

    class ScmpArgCmp(ctypes.Structure):
        _fields_ = [
            ("arg", ctypes.c_uint),
            ("op", ctypes.c_int),
            ("datum_a", ctypes.c_uint64),
            ("datum_b", ctypes.c_uint64),
        ]

    ctx_t = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = ctx_t
    lib.seccomp_release.argtypes = [ctx_t]
    lib.seccomp_release.restype = None
    lib.seccomp_arch_add.argtypes = [ctx_t, ctypes.c_uint32]
    lib.seccomp_arch_add.restype = ctypes.c_int
    lib.seccomp_attr_set.argtypes = [ctx_t, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_attr_set.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [
        ctx_t, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(ScmpArgCmp)
    ]
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctx_t, ctypes.c_int]
    lib.seccomp_export_bpf.restype = ctypes.c_int
    lib.ScmpArgCmp = ScmpArgCmp
    _lib_cache = lib
    return lib


def _fail(func: str, rc: int) -> SetupError:
    # libseccomp returns -errno.
    return SetupError(f"{func}: {os.strerror(-rc)}")


def _action_value(name: str, errno_ret: int | None) -> int:
    value = _ACTIONS[name]
    if name in _WITH_ERRNO:
        value |= (_errno.EPERM if errno_ret is None else errno_ret) & _ERRNO_MAX
    return value


def _rule_groups(args: list[dict[str, Any]]) -> list[list[tuple[int, int, int, int]]]:
    """The condition sets to add for one syscalls entry.

    All conditions go into one rule (they must all hold), unless two of them
    test the same argument: libseccomp refuses that, and runc then adds one
    rule per condition; so do we.
    """
    conds = [
        (a["index"], _OPERATORS[a["op"]], a["value"], a.get("valueTwo") or 0)
        for a in args
    ]
    if len({c[0] for c in conds}) != len(conds):
        return [[c] for c in conds]
    return [conds]


def _build(lib: Any, profile: dict[str, Any]) -> int:
    """A libseccomp context holding the profile; the caller releases it."""
    default = _action_value(profile["defaultAction"], profile.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise SetupError(
            f"seccomp_init: cannot create a filter with default action {profile['defaultAction']}"
        )
    try:
        for arch in profile.get("architectures") or []:
            rc = lib.seccomp_arch_add(ctx, _ARCHES[arch])
            if rc < 0 and rc != -_errno.EEXIST:
                raise _fail(f"seccomp_arch_add({arch})", rc)
        # The runtime sets no_new_privs itself when process.noNewPrivileges
        # asks for it; the library must not.
        rc = lib.seccomp_attr_set(ctx, _FLTATR_CTL_NNP, 0)
        if rc < 0:
            raise _fail("seccomp_attr_set(SCMP_FLTATR_CTL_NNP)", rc)
        for flag in profile.get("flags") or []:
            rc = lib.seccomp_attr_set(ctx, _FLAGS[flag][0], 1)
            if rc < 0:
                raise _fail(f"seccomp_attr_set({flag})", rc)
        numbers: dict[str, int] = {}
        for i, sc in enumerate(profile.get("syscalls") or []):
            action = _action_value(sc["action"], sc.get("errnoRet"))
            if action == default:
                continue  # libseccomp rejects a rule that repeats the default
            groups = _rule_groups(sc.get("args") or [])
            for name in sc["names"]:
                if name not in numbers:
                    numbers[name] = lib.seccomp_syscall_resolve_name(name.encode())
                nr = numbers[name]
                if nr == -1:  # __NR_SCMP_ERROR: unknown to this libseccomp
                    continue
                for conds in groups:
                    arr = (lib.ScmpArgCmp * len(conds))(*(lib.ScmpArgCmp(*c) for c in conds))
                    rc = lib.seccomp_rule_add_array(ctx, action, nr, len(conds), arr)
                    if rc < 0:
                        raise _fail(f"seccomp_rule_add_array({name}) for {_WHERE}.syscalls[{i}]", rc)
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return ctx


def _export(lib: Any, ctx: int) -> bytes:
    fd = os.memfd_create("xc-seccomp-bpf", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise _fail("seccomp_export_bpf", rc)
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def _compile(profile: dict[str, Any]) -> bytes:
    check_profile(profile)
    lib = _lib()
    ctx = _build(lib, profile)
    try:
        return _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def export_bpf(profile: dict[str, Any]) -> bytes:
    """The classic-BPF program (``struct sock_filter[]``, 8 bytes each) the
    profile compiles to, exactly what :func:`load` would install."""
    return _compile(profile)


def load(profile: dict[str, Any]) -> None:
    """Compile the profile and install it on the calling thread (all threads
    with SECCOMP_FILTER_FLAG_TSYNC).

    Needs CAP_SYS_ADMIN or no_new_privs already set.  The ``seccomp(2)`` call
    that installs the filter is the last system call made here.
    """
    import ctypes

    prog = _compile(profile)
    flags = 0
    for flag in profile.get("flags") or []:
        flags |= _FLAGS[flag][1]
    nr = _lib().seccomp_syscall_resolve_name(b"seccomp")
    if nr < 0:
        raise SetupError("seccomp_syscall_resolve_name(seccomp): no seccomp(2) on this architecture")

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    count = len(prog) // 8
    if count == 0 or count > 0xFFFF:
        raise SetupError(f"seccomp_export_bpf: unusable program of {len(prog)} bytes")
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = SockFprog(count, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    args = (ctypes.c_long(nr), ctypes.c_long(_SECCOMP_SET_MODE_FILTER), ctypes.c_long(flags), ctypes.byref(fprog))
    ctypes.set_errno(0)
    rc = syscall(*args)
    if rc == 0:
        return
    if rc > 0:  # TSYNC: the id of a thread that could not be synchronised
        raise SetupError(f"seccomp(SECCOMP_SET_MODE_FILTER): thread {rc} cannot take the filter (TSYNC)")
    err = ctypes.get_errno()
    hint = " (needs CAP_SYS_ADMIN or no_new_privs)" if err == _errno.EACCES else ""
    raise SetupError(f"seccomp(SECCOMP_SET_MODE_FILTER): {os.strerror(err)}{hint}")
