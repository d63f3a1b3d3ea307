#!/usr/bin/env python3
"""How many host system calls a container can reach, counted from the sources of truth.

    bench/surface.py [--json]

  linux      the x86-64 system call numbers in the kernel headers installed here
             (asm/unistd_64.h), and the ones the running kernel adds beyond them
  runc       no filter (`runc spec`'s default config): all of them
  profile    containers-common's default seccomp profile
             (/usr/share/containers/seccomp.json, podman's; the project's bench
             calls it Docker's), resolved for x86-64 the way runtimes apply it
             (includes/excludes by architecture and capabilities) and counted
             with libseccomp's own name table: calls allowed unconditionally,
             and allowed only with argument rules
  xc         the exokernel interface (`xc libos interface`): calls allowed from
             the LibOS's gate, and how many carry an argument check

gVisor's figures are not measured here: they come from runsc's filter lists
(docs/security.md says where).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

PROFILE = Path("/usr/share/containers/seccomp.json")
XC_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
# Added after Debian 12's headers (6.1) and present in the kernels this project runs on (6.15+).
NEWER = {451: "cachestat", 452: "fchmodat2", 453: "map_shadow_stack", 454: "futex_wake", 455: "futex_wait",
         456: "futex_requeue", 457: "statmount", 458: "listmount", 459: "lsm_get_self_attr",
         460: "lsm_set_self_attr", 461: "lsm_list_modules", 462: "mseal", 463: "setxattrat", 464: "getxattrat",
         465: "listxattrat", 466: "removexattrat", 467: "open_tree_attr"}


def linux() -> dict[str, int]:
    hdr = next(p for p in ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h")
               if os.path.exists(p))
    nrs = {int(m.group(1)) for m in re.finditer(r"^#define __NR_\w+ (\d+)$", Path(hdr).read_text(), re.M)}
    newer = {n for n in NEWER if n not in nrs}
    release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
    return {"headers": len(nrs), "newer_in_running_kernel": len(newer) if release >= (6, 15) else 0}


def profile(caps: list[str]) -> dict[str, int]:
    from xcontainers.benchharness.runtimes import oci_seccomp

    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    x86_64 = 0xC000003E
    oci = oci_seccomp(json.loads(PROFILE.read_text()), caps)
    plain, with_args = set(), set()
    for rule in oci["syscalls"]:
        if rule["action"] != "SCMP_ACT_ALLOW":
            continue
        for name in rule["names"]:
            nr = lib.seccomp_syscall_resolve_name_arch(x86_64, name.encode())
            if nr >= 0:
                (with_args if rule.get("args") else plain).add(nr)
    return {"unconditional": len(plain), "argument_rules_only": len(with_args - plain),
            "total": len(plain | with_args)}


def xc() -> dict[str, int]:
    from xcontainers import libos

    rows = libos.interface()
    return {"total": len(rows), "argument_checks": sum(1 for _, _, c in rows if c != "ANY")}


def main() -> int:
    out = {"linux": linux(), "xc": xc()}
    if PROFILE.exists():
        out["profile_xc_caps"] = profile(XC_CAPS)
        out["profile_docker_caps"] = profile(DOCKER_CAPS)
    if "--json" in sys.argv[1:]:
        print(json.dumps(out, indent=1))
        return 0
    lx = out["linux"]
    print(f"linux x86-64: {lx['headers']} numbers in the headers installed here, "
          f"{lx['newer_in_running_kernel']} more in the running kernel")
    print(f"runc without a filter: all of them ({lx['headers'] + lx['newer_in_running_kernel']})")
    for key, label in (("profile_xc_caps", "xc's default capabilities"),
                       ("profile_docker_caps", "Docker's default capabilities")):
        if key in out:
            p = out[key]
            print(f"runc + containers-common's profile, {label}: {p['total']} "
                  f"({p['unconditional']} unconditionally, {p['argument_rules_only']} only with argument rules)")
    print(f"xc (the exokernel interface): {out['xc']['total']}, {out['xc']['argument_checks']} with an "
          "argument check, all only from the LibOS's gate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
