/*
 * xc's native entry point: `xc run` of a stored image without Python.
 *
 * `xc` (src/xcontainers/xc_cli.py) is a Python program: its start-up and
 * imports alone took 25-40 ms here, several times what the native runtime
 * takes for a whole container (src/native/runtime/).  This program is
 * installed as `xc`; it does `xc run` itself when everything about the
 * command is something it does exactly as the Python command line would:
 *
 *   - root (rootless `xc` is Python's), and neither XC_NATIVE=0 nor
 *     XC_RUNTIME_NATIVE=0 set;
 *   - the flags --rm, -d/--detach, -i, --name, --hostname, -e/--env,
 *     -m/--memory, --pids-limit, --no-libos, --no-abom, --entrypoint and
 *     --network host|none, in argparse's exact spellings (`--flag VALUE`,
 *     `--flag=VALUE`, `-x VALUE`), then the image and the command;
 *   - an image of the store (names and id prefixes looked up as
 *     imagestore.lookup does) that has a run template of this FORMAT
 *     (xcontainers/runtemplate.py: the config apply_config makes for the
 *     image, written by Python when the image is imported or first run);
 *   - nothing for the garbage collector to do (no stale bundle, no network
 *     whose container is gone): Python's `xc run` collects it first.
 *
 * Everything else -- other commands, -t, --stats, --trace, --libos, -p, the
 * default bridge network, the built-in busybox and rootfs directories, an
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

/* runtemplate.FORMAT: the template layout this program reads. */
#define XC_TEMPLATE_FORMAT 1

struct run_args {
    bool rm, detach, no_libos, no_abom;
    const char *name, *hostname, *memory, *entrypoint, *network;
    long long pids_limit; /* 0: none (argparse's None, and `if a.pids_limit` of 0) */
    const char **env;
    int nenv;
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
/* network.attach for host and none: resolv.conf, hosts, hostname in the
 * bundle; returns the mounts to add to the config (NULL: failed). */
struct jval *bundle_dns_files(const char *bundle, const char *mode, const char *hostname);
/* imagerun.remove_bundle: unmount bundle/rootfs, remove the bundle.  -1
 * (xcr_error set) if the overlay stays mounted (the bundle is then kept). */
int bundle_remove(const char *bundle);
/* The same for `--rm` once the container is deleted: unmount, then move the
 * bundle to trash_dir(bundles)/ID.PID-START and let a child (PID) remove it
 * after this process has exited and reported the exit status.  A remover
 * killed half-way leaves an entry whose PID is gone: imagerun.gc removes it
 * (and until then the native path falls back, so that Python's gc runs). */
int bundle_remove_later(const char *bundles, const char *bundle, const char *cid);
/* imagerun.trash_dir: BUNDLES/../.xc-trash */
char *trash_dir(const char *bundles);

/* --- run.c ----------------------------------------------------------------------------- */

int xc_run(const struct where *w, struct run_args *a);

#endif
