"""Constants shared with the LibOS (src/libos/abi.h); a test checks they agree."""

XC_LIBOS_BASE = 0x10000000
XC_LIBOS_FD = 1023
XC_ARG_INIT = "--xc-init"
XC_ARG_EXEC = "--xc-exec"
XC_IMAGE_NAME = "xc-libos"
XC_STATS_FD = 1022
XC_STATS_SIZE = 16384
XC_NR_MAX = 512
XC_STATS_MAGIC = 0x3253544154534358
XC_FLAG_ABOM = 1
XC_ARG_EXEC_FD = "--xc-exec-fd"
