"""Constants shared with the LibOS (src/libos/abi.h); a test checks they agree."""

import os

XC_LIBOS_BASE = 0x10000000
XC_LIBOS_FD = 127
XC_ARG_INIT = "--xc-init"
XC_ARG_EXEC = "--xc-exec"
XC_IMAGE_NAME = "xc-libos"
XC_STATS_FD = 126
XC_STATS_SIZE = 69632   # sparse: the exec requests' page is 64 KB in
XC_NR_MAX = 512
XC_STATS_MAGIC = 0x3453544154534358
XC_FLAG_ABOM = 1
XC_FLAG_TRACE = 2
XC_FLAG_PROFILE = 4   # some call has a profile entry: the LibOS reads profile[]
XC_TRACE_FD = 125
XC_ARG_EXEC_FD = "--xc-exec-fd"
XC_EXEC_REQS = 16
XC_EXEC_REQ_PATH = 120
XC_EXEC_REQ_EXE = 104
XC_REQ_INIT = 1
XC_REQ_EXEC = 2
XC_REQ_EXEC_FD = 3
STATS_EXEC_REQ_OFFSET = 65536   # struct xc_exec_req exec_req[XC_EXEC_REQS]: pid, mode, flags, argv_hash, fd, path, exe
XC_OWN_CHUNK = 131072   # ABOM's rewritten text is mapped again in aligned chunks of this

XC_PROFILE_DEFAULT = 0
XC_PROFILE_FORWARD = 1
XC_PROFILE_REFUSE = 2
XC_PROFILE_TRACE = 16

XC_ABOM_MOV32 = 0
XC_ABOM_MOV64 = 1
XC_ABOM_JUMP = 2
XC_ABOM_APART = 3
XC_ABOM_SPECIAL = 4
XC_ABOM_NOT_FILE = 5
XC_ABOM_NO_FUNCTION = 6
XC_ABOM_UNDECODABLE = 7
XC_ABOM_NOT_BOUNDARY = 8
XC_ABOM_IMM_MISMATCH = 9
XC_ABOM_NO_GAP = 10
XC_ABOM_CACHE_LINE = 11
XC_ABOM_NO_ROOM = 12
XC_ABOM_PROTECT = 13
XC_ABOM_VERDICTS = 16
XC_ABOM_TABLE = 0x10001000   # the entry table of pre-patched binaries (xc abom patch): the LibOS image's first code page

# The names the LibOS's trace prints for the verdicts (abom.c), by value.
ABOM_VERDICT_NAMES = ("mov32", "mov64", "jump", "apart", "special", "not-file", "no-function", "undecodable",
                      "not-boundary", "imm-mismatch", "no-gap", "cache-line", "no-room", "protect")

# struct xc_stats, as 64-bit words: the head, then calls[] and patched[]; then the profile.
STATS_HEAD_WORDS = 32
STATS_SITES_BY = 12          # sites_by[XC_ABOM_VERDICTS]
STATS_UTS_GENERATION = 28
STATS_PROFILE_OFFSET = 8 * (STATS_HEAD_WORDS + 2 * XC_NR_MAX)   # uint16_t profile[XC_NR_MAX]
STATS_UNAME_RELEASE_OFFSET = STATS_PROFILE_OFFSET + 2 * XC_NR_MAX
STATS_UNAME_VERSION_OFFSET = STATS_UNAME_RELEASE_OFFSET + 65
# then sites_from_cache (sitecache.c asserts it)
STATS_SITES_FROM_CACHE_OFFSET = (STATS_UNAME_VERSION_OFFSET + 65 + 7) // 8 * 8


def argv_hash(args: list[str]) -> int:
    """abi.h's xc_argv_hash: FNV-1a (32 bits) over argc, then each argument with its NUL."""
    h = (2166136261 ^ len(args)) & 0xFFFFFFFF
    for a in args:
        for c in os.fsencode(a) + b"\0":
            h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h
