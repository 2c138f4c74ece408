/* plugin.c - passes loaded from shared objects (passes.h "plugins", docs/passes.md).
 *
 * The registry is the one piece of process-wide state outside the logger: a worker loads its
 * plugins once at start, from main() before any slot thread exists, and only reads the table
 * afterwards, so rf_pass_lookup from slot threads needs no lock. A plugin is never unloaded while
 * the worker runs (its code may be on any slot's stack); rf_pass_plugins_unload is for tests and
 * the end of main.
 *
 * Checks, in this order, each with its own message naming the file: dlopen succeeds; the entry
 * symbol exists; the entry returns a vtable for our ABI (NULL = the plugin refuses our ABI); the
 * vtable's own abi is one we load (RF_PASS_ABI_MIN..RF_PASS_ABI) and it has create, run and
 * destroy; the name is well formed; no built-in and no loaded plugin has that name (a plugin
 * must not silently replace "grade", and two plugins must not race for one name).
 */
#include "passes.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"

#define RF_PASS_NAME_MAX 63

typedef struct s_plugin {
    const rf_pass_vtable_t *vt; /* inside the shared object */
    void *handle;               /* dlopen's; dlclose'd by rf_pass_plugins_unload */
} s_plugin_t;

/* Written only by the load/unload functions, before and after the worker's threads. */
static s_plugin_t s_plugins[RF_PASS_PLUGINS_MAX];
static size_t s_nplugins;

const rf_pass_vtable_t *rf_pass_plugin_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < s_nplugins; i++) {
        if (strcmp(s_plugins[i].vt->name, name) == 0)
            return s_plugins[i].vt;
    }
    return NULL;
}

size_t rf_pass_plugin_count(void)
{
    return s_nplugins;
}

const char *rf_pass_plugin_name(size_t i)
{
    return i < s_nplugins ? s_plugins[i].vt->name : NULL;
}

static bool s_name_ok(const char *name)
{
    size_t n = 0;
    if (!name)
        return false;
    for (; name[n]; n++) {
        const char ch = name[n];
        if (n >= RF_PASS_NAME_MAX ||
            !((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
            return false;
    }
    return n > 0;
}

int rf_pass_plugin_load(const char *path, rf_err_t *err)
{
    int rc = 0;
    void *handle = NULL;

    if (s_nplugins >= RF_PASS_PLUGINS_MAX) {
        rc = rf_err_set(err, RF_ETOOBIG, "plugin '%s': at most %d plugins can be loaded", path,
                        RF_PASS_PLUGINS_MAX);
        goto cleanup;
    }
    /* RTLD_LOCAL: a plugin's symbols never resolve another plugin's; RTLD_NOW: a missing symbol
     * fails here, at start, not in the middle of a chunk. */
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        rc = rf_err_set(err, RF_EUNAVAIL, "plugin '%s': cannot load: %s", path,
                        why ? why : "unknown reason");
        goto cleanup;
    }
    rf_pass_plugin_entry_fn entry = NULL;
    /* POSIX's sanctioned way to turn dlsym's void * into a function pointer. */
    *(void **)&entry = dlsym(handle, RF_PASS_PLUGIN_ENTRY);
    if (!entry) {
        rc = rf_err_set(err, RF_EUNAVAIL,
                        "plugin '%s': no symbol '%s' (a pass plugin exports "
                        "'const rf_pass_vtable_t *%s(int host_abi)')",
                        path, RF_PASS_PLUGIN_ENTRY, RF_PASS_PLUGIN_ENTRY);
        goto cleanup;
    }
    const rf_pass_vtable_t *vt = entry(RF_PASS_ABI);
    if (!vt) {
        rc = rf_err_set(err, RF_EUNAVAIL,
                        "plugin '%s': refuses this worker's pass ABI %d (rebuild it against this "
                        "worker's passes.h)",
                        path, RF_PASS_ABI);
        goto cleanup;
    }
    if (vt->abi < RF_PASS_ABI_MIN || vt->abi > RF_PASS_ABI) {
        rc = rf_err_set(err, RF_EUNAVAIL, "plugin '%s': pass ABI %d, this worker loads %d..%d",
                        path, vt->abi, RF_PASS_ABI_MIN, RF_PASS_ABI);
        goto cleanup;
    }
    if (!s_name_ok(vt->name)) {
        rc = rf_err_set(err, RF_EUNAVAIL,
                        "plugin '%s': pass name '%s' is not 1..%d characters of a-z, 0-9, '-' "
                        "and '_'",
                        path, vt->name ? vt->name : "(null)", RF_PASS_NAME_MAX);
        goto cleanup;
    }
    rc = rf_pass_vtable_check(vt, vt->name, err);
    if (rc < 0) {
        rf_err_prefix(err, "plugin '%s': ", path);
        goto cleanup;
    }
    if (rf_pass_builtin_only(vt->name)) {
        rc = rf_err_set(err, RF_EEXIST, "plugin '%s': pass '%s' is a built-in pass of this worker",
                        path, vt->name);
        goto cleanup;
    }
    if (rf_pass_plugin_find(vt->name)) {
        rc = rf_err_set(err, RF_EEXIST,
                        "plugin '%s': pass '%s' is already loaded from another "
                        "plugin",
                        path, vt->name);
        goto cleanup;
    }
    s_plugins[s_nplugins].vt = vt;
    s_plugins[s_nplugins].handle = handle;
    s_nplugins++;
    handle = NULL;

cleanup:
    if (handle)
        dlclose(handle);
    return rc;
}

static int s_by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int rf_pass_plugins_load_dir(const char *dir, rf_err_t *err)
{
    int rc = 0;
    DIR *d = NULL;
    char **names = NULL;
    size_t nnames = 0;

    d = opendir(dir);
    if (!d) {
        rc = rf_err_set(err, RF_ENOENT, "pass folder '%s': cannot open: %m", dir);
        goto cleanup;
    }
    names = calloc(RF_PASS_PLUGINS_MAX + 1, sizeof *names);
    if (!names) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (struct dirent *e = readdir(d); e; e = readdir(d)) {
        const size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0 || e->d_name[0] == '.')
            continue;
        if (nnames > RF_PASS_PLUGINS_MAX) {
            rc = rf_err_set(err, RF_ETOOBIG, "pass folder '%s': more than %d plugins", dir,
                            RF_PASS_PLUGINS_MAX);
            goto cleanup;
        }
        names[nnames] = strdup(e->d_name);
        if (!names[nnames]) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory");
            goto cleanup;
        }
        nnames++;
    }
    /* Name order: which plugin loads first must not depend on the file system. */
    qsort(names, nnames, sizeof *names, s_by_name);
    for (size_t i = 0; i < nnames; i++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path) {
            rc = rf_err_set(err, RF_ETOOBIG, "pass folder '%s': path of '%s' too long", dir,
                            names[i]);
            goto cleanup;
        }
        rc = rf_pass_plugin_load(path, err);
        if (rc < 0)
            goto cleanup;
    }

cleanup:
    if (d)
        closedir(d);
    for (size_t i = 0; names && i < nnames; i++)
        free(names[i]);
    free(names);
    return rc;
}

void rf_pass_plugins_unload(void)
{
    for (size_t i = s_nplugins; i > 0; i--)
        dlclose(s_plugins[i - 1].handle);
    memset(s_plugins, 0, sizeof s_plugins);
    s_nplugins = 0;
}
