/*
 * xc's native entry point: `xc run` of a stored image without Python.
 *
 * `xc` (src/xcontainers/xc_cli.py) is a Python program: its start-up and
 * imports alone took 25-40 ms here, several times what the native runtime
 * takes for a whole container (src/native/runtime/).  This program is
 * installed as `xc`; it does `xc run` (and `xc rm [-f] ID`, `xc ps`, `xc stop`:
 * run.c's xc_rm, xc_ps, xc_stop) itself when everything about the command is something it does
 * exactly as the Python command line would:
 *
 *   - root (rootless `xc` is Python's), and neither XC_NATIVE=0 nor
 *     XC_RUNTIME_NATIVE=0 set;
 *   - the flags --rm, -d/--detach, -i, --stats, --name, --hostname, -e/--env,
 *     -m/--memory, --pids-limit, --no-libos, --no-abom, --entrypoint, -p and
 *     --network host|none|bridge (bridge, the default, only on a bridge
 *     Python made ready: net.c), in argparse's exact spellings (`--flag VALUE`,
 *     `--flag=VALUE`, `-x VALUE`), then the image and the command;
 *   - an image of the store (names and id prefixes looked up as
 *     imagestore.lookup does) that has a run template of this FORMAT
 *     (xcontainers/runtemplate.py: the config apply_config makes for the
 *     image, written by Python when the image is imported or first run);
 *   - nothing for the garbage collector to do (no stale bundle, no network
 *     whose container is gone): Python's `xc run` collects it first.
 *
 * Everything else -- other commands, -t, --trace, --libos, a
 * bridge not made yet, the built-in busybox and rootfs directories, an
 * image without a template, every error found before anything was made --
 * goes to the Python command line with the same arguments (fallback()), which
 * gives the error in its own words.  A failure once something was made (the
 * bundle, its overlay, a half-made container) is undone first, then the
 * command falls back the same way.  XC_DEBUG=1 writes which path took it:
 * `xc: debug: native path: run ID` or `xc: debug: python path: WHY`.
 *
 * The container is made by the native runtime's code in this process
 * (create_native, start_container, delete_after: the same state, cgroups,
 * LibOS and named points as `xc-runtime run`), on a bundle made as
 * xc_cli._bundle, imagerun.mount_rootfs and network.attach make it: the
 * same marker, overlay, DNS files and config.json, byte for byte.
 */
#ifndef XC_H
#define XC_H

#include "../runtime/json.h"
#include "../runtime/xcr.h"

#include <stdint.h>

/* runtemplate.FORMAT: the template layout this program reads. */
#define XC_TEMPLATE_FORMAT 1

struct run_args {
    bool rm, detach, no_libos, no_abom, stats;
    const char *name, *hostname, *memory, *entrypoint, *network;
    long long pids_limit; /* 0: none (argparse's None, and `if a.pids_limit` of 0) */
    const char **env;
    int nenv;
    const char **publish; /* -p/--publish */
    int npublish;
    const char *image;
    char **cmd;
    int ncmd;
};

/* Where xc keeps things (xc_cli.STATE_ROOT, BUNDLES; imagestore.STORAGE). */
struct where {
    const char *state_root, *bundles, *storage;
};

/* --- image.c: the store ---------------------------------------------------------------- */

struct image {
    char *id;           /* 64 hex digits */
    char **layers;      /* the layers' hex digests, bottom first */
    int nlayers;
    struct jval *tpl;   /* the run template */
};

/* imagestore.lookup of ref among the stored images, then its run template:
 * 0, or -1 with xcr_error saying why the native path does not take it. */
int image_find(const struct where *w, const char *ref, struct image *img);

struct bridge_net;

/* --- bundle.c: the container's bundle ---------------------------------------------------- */

/* imagerun.gc and network.collect_garbage would find nothing to do: 0, or
 * -1 with xcr_error naming what is to be collected (or not understood). */
int nothing_to_collect(const struct where *w);
/* imagerun.mount_rootfs into the new directory bundle: the marker, the
 * overlay of the image's layers with a fresh upper layer at bundle/rootfs
 * (volatile: no sync of the upper layer, for --rm).  -1 (xcr_error set) on
 * failure; the caller removes the bundle. */
int bundle_mount(const struct where *w, const char *bundle, const struct image *img, bool is_volatile);
/* The template's directories (the WorkingDir) in the fresh rootfs. */
int bundle_mkdirs(const char *bundle, const struct image *img);
/* network.attach's resolv.conf, hosts, hostname in the bundle (for a
 * bridge: with its address and gateway); returns the mounts to add to the
 * config (NULL: failed). */
struct jval *bundle_dns_files(const char *bundle, const char *mode, const char *hostname,
                              const struct bridge_net *bridge);
/* imagerun.remove_bundle: unmount bundle/rootfs, remove the bundle.  -1
 * (xcr_error set) if the overlay stays mounted (the bundle is then kept). */
int bundle_remove(const char *bundle);
/* The same for `--rm` once the container is deleted: unmount, then move the
 * bundle to trash_dir(bundles)/ID.PID-START and let a child (PID) remove it
 * after this process has exited and reported the exit status.  A remover
 * killed half-way leaves an entry whose PID is gone: imagerun.gc removes it
 * (and until then the native path falls back, so that Python's gc runs). */
int bundle_remove_later(const char *bundles, const char *bundle, const char *cid);
/* fork() a remover: in the child (0 returned) stdin, stdout and stderr are
 * /dev/null, sync[0] is fd 3 and no other file of the caller's is open, in
 * a session of its own; the parent gets the pid (-1: none) and keeps
 * sync[1], whose end the child sees once the parent has written or exited. */
pid_t fork_remover(int sync[2]);
/* imagerun.trash_dir: BUNDLES/../.xc-trash */
char *trash_dir(const char *bundles);

/* --- net.c, netlink.c: the bridge network -------------------------------------------------- */

/* network.PortMapping */
struct port {
    char host_ip[16]; /* "" for every address of the host */
    int host_port, container_port;
    const char *proto; /* "tcp" or "udp" */
};

struct bridge_net {
    char *bridge, *subnet, *gateway; /* XC_BRIDGE, XC_SUBNET and the subnet's first address */
    struct port *ports;              /* -p, checked by net_ready */
    int nports;
    uint32_t network, address;       /* host order */
    int prefixlen;
    char *key, *netns, *veth, *address_text; /* (net_attach's) */
};

/* The bridge of XC_BRIDGE/XC_SUBNET as Python's `xc run` leaves it ready
 * (it exists and is up with the gateway's address, forwarding on, xc's
 * nftables table there, the namespaces' directory a mount): 0, or -1 with
 * xcr_error saying what is not (the command then falls back). */
int net_ready(struct bridge_net *n, const char *const *publish, int npublish);
/* network.attach for a bridge without published ports: the attachment
 * recorded, then the namespace, veth pair, address and route; -1
 * (xcr_error) with everything undone on failure. */
int net_attach(const char *state_root, const char *cid, struct bridge_net *n);
/* network.detach: 0 (also when there is nothing), or -1 with xcr_error
 * naming what stays (the attachment is then kept for the collector). */
int net_detach(const char *state_root, const char *cid);
/* The same in a child of its own session (the container is gone; this
 * command need not wait the ~50 ms of the veth's removal and the
 * connection-tracking dumps), the attachment's owner made that child's
 * first; done here if that cannot be.  0, or net_detach's -1. */
int net_detach_later(const char *state_root, const char *cid);

int nl_open(int protocol);
int nl_veth_add(int fd, const char *host_name, const char *peer_name, int peer_netns);
int nl_link_set(int fd, int index, int master, bool up);
int nl_link_del(int fd, int index);
int nl_addr_add(int fd, int index, uint32_t addr_be, int prefixlen);
int nl_default_route(int fd, uint32_t gateway_be);
/* 1 if nftables has the ip table *name*, 0 if not, -errno */
int nl_nft_table_exists(const char *name);
int nl_conntrack_flush(uint32_t addr_be);

/* --- run.c ----------------------------------------------------------------------------- */

int xc_run(const struct where *w, struct run_args *a);
int xc_rm(const struct where *w, const char *cid, bool force);
int xc_ps(const struct where *w);
int xc_stop(const struct where *w, const char *cid, double timeout);

/* --- stats.c ---------------------------------------------------------------------------- */

/* libos.format_stats(read_stats(fd)) on stderr: 0, or -1 with xcr_error. */
int print_stats(int fd);

#endif
