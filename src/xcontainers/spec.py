"""Reading and checking an OCI bundle's config.json.

The OCI runtime spec describes a container as JSON.  We check every field we
act on before anything touches the kernel, so a malformed or unsupported
config fails early with a message naming the field (``process.args[0]:
must be a string``), and leaves nothing behind.  Fields the spec lists but
that mean nothing on Linux (windows, solaris, vm) are refused only if set to
something we would have to act on.
"""

from __future__ import annotations

import os

from . import _json as json
from ._record import field, record
from .errors import ConfigError
from .errors import field_name as _key, quoted as _q, shown as _shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Mount", "Namespace", "IdMapping", "Hook", "Process", "Spec", "load_bundle", "parse"]

KNOWN_NAMESPACES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
RLIMITS = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
U32 = (1 << 32) - 1


@record
class Mount:
    destination: str
    type: str | None
    source: str | None
    options: list[str]


@record
class Namespace:
    type: str
    path: str | None


@record
class IdMapping:
    container_id: int
    host_id: int
    size: int


@record
class Hook:
    path: str
    args: list[str]
    env: list[str]
    timeout: int | None


@record
class Process:
    args: list[str]
    env: list[str]
    cwd: str
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    umask: int | None = None
    terminal: bool = False
    console_size: tuple[int, int] | None = None
    capabilities: dict[str, list[str]] = field(default_factory=dict)
    rlimits: list[tuple[int, int, int, str]] = field(default_factory=list)
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    apparmor_profile: str | None = None
    selinux_label: str | None = None


@record
class Spec:
    """A checked config.json; ``raw`` keeps the document as given."""

    raw: dict[str, Any]
    bundle: str
    process: Process | None
    root_path: str
    root_readonly: bool
    hostname: str | None
    domainname: str | None
    mounts: list[Mount]
    namespaces: list[Namespace]
    uid_mappings: list[IdMapping]
    gid_mappings: list[IdMapping]
    hooks: dict[str, list[Hook]]
    annotations: dict[str, str]
    cgroups_path: str | None
    resources: dict[str, Any]
    devices: list[dict[str, Any]]
    sysctl: dict[str, str]
    seccomp: dict[str, Any] | None
    masked_paths: list[str]
    readonly_paths: list[str]
    rootfs_propagation: str | None
    oci_version: str

    def has_namespace(self, kind: str) -> bool:
        return any(ns.type == kind for ns in self.namespaces)

    def namespace(self, kind: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == kind:
                return ns
        return None


# --- small checkers -------------------------------------------------------


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "a boolean", list: "an array", dict: "an object"}
    if isinstance(t, tuple):
        return " or ".join(names.get(x, x.__name__) for x in t)
    return names.get(t, t.__name__)


def _get(obj: dict[str, Any], key: str, t: type | tuple[type, ...], where: str, default: Any = None) -> Any:
    if key not in obj or obj[key] is None:
        return default
    v = obj[key]
    ok = isinstance(v, t) and not (isinstance(v, bool) and t in (int, (int,)))
    if not ok:
        raise ConfigError(f"{where}{key}: must be {_type_name(t)}, not {_shown(v)}")
    return v


def _list(v: Any, where: str) -> list[Any]:
    """An optional array (None: empty)."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise ConfigError(f"{where}: must be an array")
    return v


def _str_list(v: Any, where: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{where}: must be an array of strings")
    return list(v)


def _uint(v: Any, where: str, limit: int = U32) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > limit:
        raise ConfigError(f"{where}: must be an integer between 0 and {limit}")
    return v


def _obj(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ConfigError(f"{where}: must be an object")
    return v


# --- sections -------------------------------------------------------------


def _parse_process(p: Any) -> Process:
    p = _obj(p, "process")
    args = p.get("args")
    if args is None or not isinstance(args, list) or not args:
        raise ConfigError("process.args: must be a non-empty array of strings")
    args = _str_list(args, "process.args")
    env = _str_list(p.get("env") or [], "process.env")
    for i, e in enumerate(env):
        if "=" not in e:
            raise ConfigError(f"process.env[{i}]: {_q(e)} is not of the form NAME=VALUE")
    cwd = _get(p, "cwd", str, "process.", "/")
    if not cwd.startswith("/"):
        raise ConfigError(f"process.cwd: {_q(cwd, 300)} must be an absolute path")
    proc = Process(args=args, env=env, cwd=cwd)
    user = _obj(p.get("user") or {}, "process.user")
    proc.uid = _uint(user.get("uid", 0), "process.user.uid")
    proc.gid = _uint(user.get("gid", 0), "process.user.gid")
    gids = user.get("additionalGids") or []
    if not isinstance(gids, list):
        raise ConfigError("process.user.additionalGids: must be an array of integers")
    proc.additional_gids = [_uint(g, f"process.user.additionalGids[{i}]") for i, g in enumerate(gids)]
    if user.get("umask") is not None:
        proc.umask = _uint(user["umask"], "process.user.umask", 0o777)
    if user.get("username"):
        raise ConfigError("process.user.username: only meaningful on Windows; use uid and gid")
    proc.terminal = bool(_get(p, "terminal", bool, "process.", False))
    cs = p.get("consoleSize")
    if cs is not None:
        cs = _obj(cs, "process.consoleSize")
        proc.console_size = (
            _uint(cs.get("height", 0), "process.consoleSize.height", 0xFFFF),
            _uint(cs.get("width", 0), "process.consoleSize.width", 0xFFFF),
        )
    caps = _obj(p.get("capabilities") or {}, "process.capabilities")
    from .kernel import cap_number

    for kind, names in caps.items():
        if kind not in ("bounding", "effective", "inheritable", "permitted", "ambient"):
            raise ConfigError(f"process.capabilities.{_key(kind)}: unknown capability set")
        names = _str_list(names or [], f"process.capabilities.{kind}")
        for n in names:
            if cap_number(n) is None:
                raise ConfigError(f"process.capabilities.{kind}: unknown capability {_q(n)}")
        proc.capabilities[kind] = names
    seen: set[str] = set()
    for i, rl in enumerate(_list(p.get("rlimits"), "process.rlimits")):
        rl = _obj(rl, f"process.rlimits[{i}]")
        t = rl.get("type")
        if not isinstance(t, str) or t not in RLIMITS:
            raise ConfigError(f"process.rlimits[{i}].type: unknown rlimit {_shown(t)}")
        if t in seen:
            raise ConfigError(f"process.rlimits[{i}].type: {t} given twice")
        seen.add(t)
        hard = _uint(rl.get("hard"), f"process.rlimits[{i}].hard", (1 << 64) - 1)
        soft = _uint(rl.get("soft"), f"process.rlimits[{i}].soft", (1 << 64) - 1)
        proc.rlimits.append((RLIMITS[t], soft, hard, t))
    proc.no_new_privileges = bool(_get(p, "noNewPrivileges", bool, "process.", False))
    if p.get("oomScoreAdj") is not None:
        v = p["oomScoreAdj"]
        if isinstance(v, bool) or not isinstance(v, int) or not -1000 <= v <= 1000:
            raise ConfigError("process.oomScoreAdj: must be an integer between -1000 and 1000")
        proc.oom_score_adj = v
    proc.apparmor_profile = _get(p, "apparmorProfile", str, "process.")
    proc.selinux_label = _get(p, "selinuxLabel", str, "process.")
    if p.get("ioPriority") is not None or p.get("scheduler") is not None:
        raise ConfigError("process.ioPriority/scheduler: not supported by xc-runtime")
    return proc


def _parse_mounts(ms: Any) -> list[Mount]:
    if ms is None:
        return []
    if not isinstance(ms, list):
        raise ConfigError("mounts: must be an array")
    out = []
    for i, m in enumerate(ms):
        m = _obj(m, f"mounts[{i}]")
        dest = m.get("destination")
        if not isinstance(dest, str) or not dest:
            raise ConfigError(f"mounts[{i}].destination: must be a non-empty string")
        if not dest.startswith("/"):
            raise ConfigError(f"mounts[{i}].destination: {_q(dest, 300)} must be an absolute path")
        typ = _get(m, "type", str, f"mounts[{i}].")
        src = _get(m, "source", str, f"mounts[{i}].")
        opts = _str_list(m.get("options") or [], f"mounts[{i}].options")
        if m.get("uidMappings") or m.get("gidMappings"):
            raise ConfigError(f"mounts[{i}].uidMappings: idmapped mounts are not supported")
        out.append(Mount(dest, typ, src, opts))
    return out


def _parse_mappings(v: Any, where: str) -> list[IdMapping]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise ConfigError(f"{where}: must be an array")
    out = []
    for i, m in enumerate(v):
        m = _obj(m, f"{where}[{i}]")
        out.append(
            IdMapping(
                _uint(m.get("containerID"), f"{where}[{i}].containerID"),
                _uint(m.get("hostID"), f"{where}[{i}].hostID"),
                _uint(m.get("size"), f"{where}[{i}].size"),
            )
        )
    return out


def _parse_hooks(h: Any) -> dict[str, list[Hook]]:
    if h is None:
        return {}
    h = _obj(h, "hooks")
    out: dict[str, list[Hook]] = {}
    for kind, lst in h.items():
        if kind not in HOOK_KINDS:
            raise ConfigError(f"hooks.{_key(kind)}: unknown hook kind")
        if not isinstance(lst, list):
            raise ConfigError(f"hooks.{kind}: must be an array")
        hooks = []
        for i, e in enumerate(lst):
            where = f"hooks.{kind}[{i}]"
            e = _obj(e, where)
            path = e.get("path")
            if not isinstance(path, str) or not path.startswith("/"):
                raise ConfigError(f"{where}.path: must be an absolute path")
            timeout = e.get("timeout")
            if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0):
                raise ConfigError(f"{where}.timeout: must be a positive integer")
            hooks.append(
                Hook(path, _str_list(e.get("args") or [], f"{where}.args"),
                     _str_list(e.get("env") or [], f"{where}.env"), timeout)
            )
        out[kind] = hooks
    return out


def _parse_linux(lx: Any) -> dict[str, Any]:
    lx = _obj(lx or {}, "linux")
    known = {
        "namespaces", "uidMappings", "gidMappings", "devices", "cgroupsPath", "resources",
        "sysctl", "seccomp", "rootfsPropagation", "maskedPaths", "readonlyPaths",
        "mountLabel", "personality", "intelRdt", "timeOffsets",
    }
    for k in lx:
        if k not in known:
            raise ConfigError(f"linux.{_key(k)}: unknown field")
    if lx.get("intelRdt"):
        raise ConfigError("linux.intelRdt: not supported by xc-runtime")
    if lx.get("timeOffsets"):
        raise ConfigError("linux.timeOffsets: not supported by xc-runtime")
    if lx.get("personality"):
        pers = _obj(lx["personality"], "linux.personality")
        if pers.get("domain") not in ("LINUX", None) or pers.get("flags"):
            raise ConfigError("linux.personality: only the LINUX domain without flags is supported")
    nss: list[Namespace] = []
    for i, n in enumerate(_list(lx.get("namespaces"), "linux.namespaces")):
        n = _obj(n, f"linux.namespaces[{i}]")
        t = n.get("type")
        if t not in KNOWN_NAMESPACES:
            raise ConfigError(f"linux.namespaces[{i}].type: unknown namespace type {_q(t)}")
        if t == "time":
            raise ConfigError("linux.namespaces: the time namespace is not supported by xc-runtime")
        if any(x.type == t for x in nss):
            raise ConfigError(f"linux.namespaces[{i}]: namespace {_q(t)} given twice")
        path = _get(n, "path", str, f"linux.namespaces[{i}].")
        if path is not None and not os.path.exists(path):
            raise ConfigError(f"linux.namespaces[{i}].path: {_q(path, 300)} does not exist")
        nss.append(Namespace(t, path or None))
    sysctl = _obj(lx.get("sysctl") or {}, "linux.sysctl")
    for k, v in sysctl.items():
        if not isinstance(v, str):
            raise ConfigError(f"linux.sysctl.{_key(k)}: value must be a string")
        if "/" in k.replace(".", "/").strip("/") and ".." in k:
            raise ConfigError(f"linux.sysctl.{_key(k)}: invalid name")
    devices = lx.get("devices") or []
    if not isinstance(devices, list):
        raise ConfigError("linux.devices: must be an array")
    for i, d in enumerate(devices):
        d = _obj(d, f"linux.devices[{i}]")
        if not isinstance(d.get("path"), str) or not d["path"].startswith("/dev/"):
            raise ConfigError(f"linux.devices[{i}].path: must be a path under /dev")
        if d.get("type") not in ("c", "b", "u", "p"):
            raise ConfigError(f"linux.devices[{i}].type: must be one of c, b, u, p")
    prop = _get(lx, "rootfsPropagation", str, "linux.")
    if prop is not None and prop not in (
        "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable"
    ):
        raise ConfigError(f"linux.rootfsPropagation: unknown propagation {_q(prop)}")
    res = _obj(lx.get("resources") or {}, "linux.resources")
    _check_resources(res)
    seccomp = lx.get("seccomp")
    if seccomp is not None:
        seccomp = _obj(seccomp, "linux.seccomp")
        from .seccomp import check_profile

        check_profile(seccomp)
    return {
        "namespaces": nss,
        "uid_mappings": _parse_mappings(lx.get("uidMappings"), "linux.uidMappings"),
        "gid_mappings": _parse_mappings(lx.get("gidMappings"), "linux.gidMappings"),
        "devices": devices,
        "cgroups_path": _get(lx, "cgroupsPath", str, "linux."),
        "resources": res,
        "sysctl": sysctl,
        "seccomp": seccomp,
        "masked_paths": _str_list(lx.get("maskedPaths") or [], "linux.maskedPaths"),
        "readonly_paths": _str_list(lx.get("readonlyPaths") or [], "linux.readonlyPaths"),
        "rootfs_propagation": prop,
    }


def _check_resources(res: dict[str, Any]) -> None:
    known = {"memory", "cpu", "pids", "devices", "blockIO", "hugepageLimits", "network", "rdma", "unified"}
    for k in res:
        if k not in known:
            raise ConfigError(f"linux.resources.{_key(k)}: unknown field")
    mem = _obj(res.get("memory") or {}, "linux.resources.memory")
    for k in ("limit", "reservation", "swap", "kernel", "kernelTCP"):
        v = mem.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < -1):
            raise ConfigError(f"linux.resources.memory.{k}: must be an integer (-1 for unlimited)")
    if mem.get("limit") not in (None, -1) and mem["limit"] < 4096 * 2 and mem["limit"] != 0:
        raise ConfigError(f"linux.resources.memory.limit: {mem['limit']} is too small (minimum 8192)")
    cpu = _obj(res.get("cpu") or {}, "linux.resources.cpu")
    for k in ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "burst"):
        v = cpu.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise ConfigError(f"linux.resources.cpu.{k}: must be an integer")
    for k in ("cpus", "mems"):
        v = cpu.get(k)
        if v is not None and (not isinstance(v, str)):
            raise ConfigError(f"linux.resources.cpu.{k}: must be a string such as '0-1'")
    pids = _obj(res.get("pids") or {}, "linux.resources.pids")
    v = pids.get("limit")
    if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
        raise ConfigError("linux.resources.pids.limit: must be an integer")
    devs = res.get("devices") or []
    if not isinstance(devs, list):
        raise ConfigError("linux.resources.devices: must be an array")
    for i, d in enumerate(devs):
        d = _obj(d, f"linux.resources.devices[{i}]")
        if not isinstance(d.get("allow"), bool):
            raise ConfigError(f"linux.resources.devices[{i}].allow: must be a boolean")
        if d.get("type", "a") not in ("a", "b", "c"):
            raise ConfigError(f"linux.resources.devices[{i}].type: must be a, b or c")
    unified = _obj(res.get("unified") or {}, "linux.resources.unified")
    for k, v in unified.items():
        if not isinstance(v, str) or "/" in k:
            raise ConfigError(f"linux.resources.unified.{_key(k)}: must be a cgroup file name with a string value")


def parse(doc: Any, bundle: str) -> Spec:
    """Check a config.json document and return the typed spec."""
    if not isinstance(doc, dict):
        raise ConfigError("config.json: the top level must be a JSON object")
    ver = doc.get("ociVersion")
    if not isinstance(ver, str) or not ver:
        raise ConfigError("ociVersion: must be a non-empty string")
    if not ver.startswith("1."):
        raise ConfigError(f"ociVersion: {_q(ver)} is not a 1.x version")
    for k in ("windows", "solaris", "vm", "zos"):
        if doc.get(k):
            raise ConfigError(f"{k}: not supported on Linux")
    root = _obj(doc.get("root") or {}, "root")
    root_path = root.get("path")
    if not isinstance(root_path, str) or not root_path:
        raise ConfigError("root.path: must be a non-empty string")
    root_path = os.path.normpath(os.path.join(bundle, root_path))
    if not os.path.isdir(root_path):
        raise ConfigError(f"root.path: rootfs {_q(root_path, 300)} does not exist or is not a directory")
    readonly = bool(_get(root, "readonly", bool, "root.", False))
    process = _parse_process(doc["process"]) if doc.get("process") is not None else None
    lx = _parse_linux(doc.get("linux"))
    hostname = _get(doc, "hostname", str, "")
    domainname = _get(doc, "domainname", str, "")
    annotations = _obj(doc.get("annotations") or {}, "annotations")
    for k, v in annotations.items():
        if not isinstance(v, str):
            raise ConfigError(f"annotations.{_key(k)}: value must be a string")
    spec = Spec(
        raw=doc,
        bundle=bundle,
        process=process,
        root_path=root_path,
        root_readonly=readonly,
        hostname=hostname,
        domainname=domainname,
        mounts=_parse_mounts(doc.get("mounts")),
        hooks=_parse_hooks(doc.get("hooks")),
        annotations=dict(annotations),
        oci_version=ver,
        **lx,
    )
    if (hostname or domainname) and not spec.has_namespace("uts"):
        raise ConfigError("hostname: setting a hostname needs a new uts namespace (linux.namespaces)")
    if spec.has_namespace("user"):
        if not spec.uid_mappings or not spec.gid_mappings:
            ns = spec.namespace("user")
            if ns is not None and ns.path is None:
                raise ConfigError("linux.uidMappings: a new user namespace needs uid and gid mappings")
    elif spec.uid_mappings or spec.gid_mappings:
        raise ConfigError("linux.uidMappings: mappings given without a user namespace")
    if spec.sysctl:
        for k in spec.sysctl:
            if k.startswith("net.") and not spec.has_namespace("network"):
                raise ConfigError(f"linux.sysctl.{_key(k)}: needs a network namespace")
    return spec


def load_bundle(bundle: str) -> Spec:
    """Load and check BUNDLE/config.json."""
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(f"bundle {bundle!r}: config.json not found") from None
    except OSError as e:
        raise ConfigError(f"bundle {bundle!r}: cannot read config.json: {e.strerror}") from None
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ConfigError(f"{path}: malformed JSON: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: malformed JSON: nested too deeply") from None
    return parse(doc, bundle)
