/* Container state on disk (see state.h). */
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

bool id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 1024)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '+' && c != '.' && c != '-')))
            return false;
    }
    return true;
}

char *state_dir(const char *root, const char *id)
{
    return path_join(root, id);
}

static const char *const FIELDS[] = {"id", "bundle", "status", "pid", "pid_start", "created",
                                     "rootfs", "annotations", "cgroup", "config", "owner"};
#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])

static void sync_doc(struct state *st)
{
    struct jval *d = json_new(J_OBJ);
    json_set(d, "id", json_str(st->id));
    json_set(d, "bundle", json_str(st->bundle));
    json_set(d, "status", json_str(st->status));
    json_set(d, "pid", json_int_new(st->pid));
    json_set(d, "pid_start", json_int_new(st->pid_start));
    json_set(d, "created", json_str(st->created));
    json_set(d, "rootfs", json_str(st->rootfs));
    json_set(d, "annotations", st->annotations);
    json_set(d, "cgroup", st->cgroup);
    json_set(d, "config", st->config);
    json_set(d, "owner", json_str(st->owner));
    st->doc = d;
}

void state_init(struct state *st, const char *id, const char *bundle, const char *created,
                const char *rootfs, struct jval *annotations, struct jval *cgroup, struct jval *config)
{
    memset(st, 0, sizeof *st);
    st->id = id;
    st->bundle = bundle;
    st->status = ST_CREATING;
    st->created = created;
    st->rootfs = rootfs;
    st->owner = "root";
    st->annotations = annotations;
    st->cgroup = cgroup;
    st->config = config;
    sync_doc(st);
}

static bool known_status(const char *s)
{
    return strcmp(s, ST_CREATING) == 0 || strcmp(s, ST_CREATED) == 0 || strcmp(s, ST_RUNNING) == 0 ||
           strcmp(s, ST_PAUSED) == 0 || strcmp(s, ST_STOPPED) == 0;
}

int state_load(const char *root, const char *id, struct state *st)
{
    memset(st, 0, sizeof *st);
    if (!id_valid(id))
        return xcr_fail("invalid container id");
    char *dir = state_dir(root, id);
    char *path = path_join(dir, "state.json");
    size_t len;
    char *text = read_file(path, JSON_MAX_SIZE, &len);
    free(path);
    free(dir);
    if (text == NULL)
        return xcr_fail_errno("state.json");
    struct jval *d = json_parse(text, len);
    free(text);
    if (d == NULL)
        return -1;
    if (d->t != J_OBJ || d->n != NFIELDS)
        return xcr_fail("state.json: not the fields of a state");
    for (size_t i = 0; i < NFIELDS; i++)
        if (json_get(d, FIELDS[i]) == NULL)
            return xcr_fail("state.json: no %s", FIELDS[i]);
    const char *strs[] = {"id", "bundle", "status", "created", "rootfs", "owner"};
    for (size_t i = 0; i < 6; i++)
        if (!json_is_str(json_get(d, strs[i])))
            return xcr_fail("state.json: %s is not a string", strs[i]);
    st->id = json_get(d, "id")->s;
    st->bundle = json_get(d, "bundle")->s;
    st->status = json_get(d, "status")->s;
    st->created = json_get(d, "created")->s;
    st->rootfs = json_get(d, "rootfs")->s;
    st->owner = json_get(d, "owner")->s;
    if (!known_status(st->status))
        return xcr_fail("state.json: unknown status");
    if (!json_int_in(json_get(d, "pid"), -(1LL << 31), (1LL << 31) - 1, &st->pid) ||
        !json_int_in(json_get(d, "pid_start"), 0, (1LL << 62), &st->pid_start))
        return xcr_fail("state.json: pid");
    st->annotations = json_get(d, "annotations");
    st->cgroup = json_get(d, "cgroup");
    st->config = json_get(d, "config");
    if (st->annotations->t != J_OBJ || st->cgroup->t != J_OBJ || st->config->t != J_OBJ)
        return xcr_fail("state.json: annotations, cgroup or config");
    for (size_t i = 0; i < st->annotations->n; i++)
        if (st->annotations->v[i]->t != J_STR)
            return xcr_fail("state.json: annotations");
    st->doc = d;
    return 0;
}

int state_save(const char *root, struct state *st)
{
    sync_doc(st);
    struct sbuf b = {0};
    json_dump(&b, st->doc);
    char *dir = state_dir(root, st->id);
    int dfd AUTOCLOSE = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    int fd AUTOCLOSE = dfd < 0 ? -1 : openat(dfd, ".state.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, b.s, b.len) < 0) {
        rc = xcr_fail_errno("saving the state of container %s", st->id);
    } else if (syscall(SYS_renameat2, dfd, ".state.json.tmp", dfd, "state.json", RENAME_EXCHANGE) == 0) {
        /* The new state is in place; the old one, now at the temporary
         * name, goes.  (Renaming over the old file would be as atomic, but
         * ext4 then starts writing the new file out at once, and unlinking
         * it later waits for that: milliseconds per save here.) */
        unlinkat(dfd, ".state.json.tmp", 0);
    } else if (renameat(dfd, ".state.json.tmp", dfd, "state.json") < 0) {
        /* no state.json yet (ENOENT), or no RENAME_EXCHANGE on this file system */
        rc = xcr_fail_errno("saving the state of container %s", st->id);
    }
    free(b.s);
    free(dir);
    return rc;
}

void state_set(struct state *st, const char *status)
{
    st->status = status;
}

void state_set_pid(struct state *st, long long pid, long long start)
{
    st->pid = pid;
    st->pid_start = start;
}

void state_set_cgroup(struct state *st, struct jval *cgroup)
{
    st->cgroup = cgroup;
}

bool state_alive(const struct state *st)
{
    if (st->pid <= 0)
        return false;
    return process_start_time(st->pid) == st->pid_start;
}

const char *state_live(const struct state *st)
{
    if (strcmp(st->status, ST_CREATING) == 0 || strcmp(st->status, ST_STOPPED) == 0)
        return ST_STOPPED;
    if (!state_alive(st))
        return ST_STOPPED;
    return st->status;
}

bool state_has_hooks(const struct state *st)
{
    struct jval *h = json_opt(st->config, "hooks");
    if (h == NULL)
        return false;
    if (h->t != J_OBJ)
        return true;
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i]->t != J_ARR || h->v[i]->n != 0)
            return true;
    return false;
}

int store_reserve(const char *root, const char *id)
{
    if (makedirs(root, 0711) < 0)
        return -1;
    char *dir = state_dir(root, id);
    int rc = mkdir(dir, 0711);
    free(dir);
    return rc;
}

void store_remove(const char *root, const char *id)
{
    char *dir = state_dir(root, id);
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        int dfd = dirfd(d);
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            unlinkat(dfd, e->d_name, 0);
        }
        closedir(d);
        rmdir(dir);
    }
    free(dir);
}
