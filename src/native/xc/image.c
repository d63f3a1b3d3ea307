/*
 * The image store, as far as `xc run` reads it: imagestore.ImageStore.lookup
 * (reference.parse and local_name for the candidate names, then an id
 * prefix of 4+ hex digits) over images.json, and the image's run template
 * (xcontainers/runtemplate.py).  Whatever this does not read exactly as
 * Python does (an index or template of another shape, an ambiguous id
 * prefix) is a reason to fall back, never an error of its own.
 */
#include "xc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool in_set(char c, const char *set)
{
    return c != 0 && strchr(set, c) != NULL;
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define HEX "0123456789abcdef"

static bool all_in(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (!in_set(s[i], set))
            return false;
    return true;
}

static bool is_obj(const struct jval *v)
{
    return v != NULL && v->t == J_OBJ;
}

static bool is_hex64(const char *s)
{
    return strlen(s) == 64 && all_in(s, 64, HEX);
}

/* reference.parse(text) (remote=False) as str(): NULL where it raises;
 * *registry, *repo_has_slash for lookup's candidates. */
static char *local_name(const char *text, bool *has_registry, bool *repo_slash)
{
    size_t len = strlen(text);
    if (len == 0 || in_set(text[0], " \t\n\r\v\f\x1c\x1d\x1e\x1f") ||
        in_set(text[len - 1], " \t\n\r\v\f\x1c\x1d\x1e\x1f"))
        return NULL;
    char *rest = xstrdup(text);
    const char *digest = "";
    char *at = strchr(rest, '@');
    if (at) {
        *at = 0;
        digest = at + 1;
        if (strncmp(digest, "sha256:", 7) != 0 || !is_hex64(digest + 7))
            return free(rest), NULL;
    }
    const char *tag = "";
    char *slash = strrchr(rest, '/'), *colon = strrchr(rest, ':');
    if (colon && (!slash || colon > slash)) {
        *colon = 0;
        tag = colon + 1;
        size_t n = strlen(tag);
        if (n == 0 || n > 128 || !all_in(tag, n, LOWER_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZ._-") || tag[0] == '.' ||
            tag[0] == '-')
            return free(rest), NULL;
    }
    const char *registry = "", *path = rest;
    char *sep = strchr(rest, '/');
    if (sep) {
        *sep = 0;
        if (strchr(rest, '.') || strchr(rest, ':') || strcmp(rest, "localhost") == 0) {
            registry = rest;
            path = sep + 1;
        } else {
            *sep = '/';
        }
    }
    size_t pn = strlen(path);
    if (pn == 0 || !all_in(path, pn, LOWER_DIGITS "._-/") || path[0] == '/' || path[pn - 1] == '/' ||
        strstr(path, "//"))
        return free(rest), NULL;
    for (const char *c = path; *c;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 0 || in_set(c[0], "._-") || in_set(c[n - 1], "._-"))
            return free(rest), NULL;
        c += n + (e != NULL);
    }
    if (!*tag && !*digest)
        tag = "latest";
    *has_registry = *registry != 0;
    *repo_slash = strchr(path, '/') != NULL;
    char *out = xasprintf("%s%s%s%s%s%s%s", registry, *registry ? "/" : "", path, *tag ? ":" : "", tag,
                          *digest ? "@" : "", digest);
    free(rest);
    return out;
}

static bool has_name(const struct jval *rec, const char *name)
{
    struct jval *names = json_get(rec, "names");
    if (names == NULL || names->t != J_ARR)
        return false;
    for (size_t i = 0; i < names->n; i++)
        if (names->v[i]->t == J_STR && strcmp(names->v[i]->s, name) == 0)
            return true;
    return false;
}

/* ImageStore.lookup: the record, or NULL (xcr_error: why). */
static struct jval *lookup(const struct jval *images, const char *ref)
{
    for (size_t i = 0; i < images->n; i++)
        if (images->v[i]->t != J_OBJ)
            return xcr_fail("the image index has an odd record"), NULL;
    char *cands[3] = {NULL, NULL, NULL};
    bool reg = false, slash = false;
    cands[0] = local_name(ref, &reg, &slash);
    if (cands[0] == NULL) {
        cands[0] = xstrdup(ref);
    } else if (!reg) {
        cands[1] = xasprintf("localhost/%s", cands[0]);
        cands[2] = xasprintf("docker.io/%s%s", slash ? "" : "library/", cands[0]);
    }
    for (int c = 0; c < 3 && cands[c]; c++)
        for (size_t i = 0; i < images->n; i++)
            if (has_name(images->v[i], cands[c]))
                return images->v[i];
    const char *h = strncmp(ref, "sha256:", 7) == 0 ? ref + 7 : ref;
    size_t hn = strlen(h);
    if (hn >= 4 && all_in(h, hn, HEX)) {
        struct jval *found = NULL;
        int n = 0;
        for (size_t i = 0; i < images->n; i++)
            if (strncmp(images->k[i], h, hn) == 0) {
                found = images->v[i];
                n++;
            }
        if (n == 1)
            return found;
        if (n > 1)
            return xcr_fail("image id prefix %s is ambiguous", ref), NULL;
    }
    return xcr_fail("image %s is not in the store", ref), NULL;
}

int image_find(const struct where *w, const char *ref, struct image *img)
{
    memset(img, 0, sizeof *img);
    char *index = path_join(w->storage, "images.json");
    size_t len;
    char *text = read_file(index, JSON_MAX_SIZE, &len);
    if (text == NULL)
        return xcr_fail_errno("%s", index);
    struct jval *doc = json_parse(text, len);
    if (doc == NULL || doc->t != J_OBJ)
        return xcr_fail("%s: not read natively", index);
    struct jval *images = json_get(doc, "images");
    if (images == NULL || images->t != J_OBJ)
        return xcr_fail("%s: no images", index);
    struct jval *rec = lookup(images, ref);
    if (rec == NULL)
        return -1;
    struct jval *id = json_get(rec, "id"), *layers = json_get(rec, "layers");
    if (!json_is_str(id) || !is_hex64(id->s) || !json_is_str_array(layers) || layers->n == 0)
        return xcr_fail("image %s: a record the native path does not take", ref);
    img->id = id->s;
    img->nlayers = layers->n;
    img->layers = xmalloc(sizeof(char *) * layers->n);
    for (size_t i = 0; i < layers->n; i++) {
        const char *d = layers->v[i]->s;
        if (strncmp(d, "sha256:", 7) != 0 || !is_hex64(d + 7))
            return xcr_fail("image %s: layer %s", ref, d);
        img->layers[i] = (char *)d + 7;
    }
    /* the run template */
    char *tpath = xasprintf("%s/templates/%s.json", w->storage, img->id);
    text = read_file(tpath, JSON_MAX_SIZE, &len);
    if (text == NULL)
        return xcr_fail_errno("image %s: no run template %s", ref, tpath);
    struct jval *tpl = json_parse(text, len);
    long long format;
    struct jval *tid = json_get(tpl, "image");
    if (tpl == NULL || !json_int_in(json_get(tpl, "format"), XC_TEMPLATE_FORMAT, XC_TEMPLATE_FORMAT, &format) ||
        !json_is_str(tid) || strcmp(tid->s, img->id) != 0)
        return xcr_fail("image %s: run template %s of another format", ref, tpath);
    struct jval *spec = json_get(tpl, "spec"), *proc = json_get(spec, "process"), *mk = json_get(tpl, "mkdirs");
    if (spec == NULL || spec->t != J_OBJ || proc == NULL || proc->t != J_OBJ ||
        !json_is_str_array(json_get(proc, "env")) || !json_is_str_array(json_get(tpl, "entrypoint")) ||
        !json_is_str_array(json_get(tpl, "cmd")) || !json_is_str_array(json_get(tpl, "warnings")) ||
        mk == NULL || mk->t != J_ARR || json_get(spec, "linux") == NULL ||
        !is_obj(json_get(json_get(spec, "linux"), "resources")) || !is_obj(json_get(spec, "annotations")))
        return xcr_fail("image %s: run template %s not read natively", ref, tpath);
    for (size_t i = 0; i < mk->n; i++) {
        struct jval *e = mk->v[i];
        if (e->t != J_ARR || e->n != 2 || e->v[0]->t != J_STR || !json_int_in(e->v[1], 0, 07777, NULL) ||
            e->v[0]->s[0] == '/' || strstr(e->v[0]->s, ".."))
            return xcr_fail("image %s: run template %s: mkdirs", ref, tpath);
    }
    img->tpl = tpl;
    return 0;
}
