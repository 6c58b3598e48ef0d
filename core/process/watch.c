/* watch.c — the file watcher (see watch.h). */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "base/log.h"
#include "lua/vm.h"
#include "process/watch.h"

#define WATCH_EVENTS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE)

struct torii_watch_s {
    int fd;
    unsigned ndirs;
};

static void add_dir(torii_watch_t *w, const char *dir)
{
    /* The same directory twice gives the same watch: no need to dedupe. */
    if (inotify_add_watch(w->fd, dir, WATCH_EVENTS | IN_ONLYDIR) >= 0)
        w->ndirs++;
    else if (errno != ENOENT)
        torii_log_warn("watch: cannot watch %s: %s", dir, strerror(errno));
}

/* A plugin directory and its folder plugins (NAME/init.lua). */
static void add_plugin_dir(torii_watch_t *w, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    add_dir(w, dir);
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        char sub[PATH_MAX];
        if (e->d_name[0] == '.' || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
            continue;
        if (snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) < (int)sizeof sub)
            add_dir(w, sub); /* a non-directory is refused by IN_ONLYDIR */
    }
    closedir(d);
}

torii_watch_t *torii_watch_new(const torii_config_t *conf)
{
    torii_watch_t *w = calloc(1, sizeof *w);
    char buf[PATH_MAX];
    if (!w)
        abort();
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        torii_log_error("watch: inotify: %s; changes are applied by torii -s reload only", strerror(errno));
        free(w);
        return NULL;
    }
    snprintf(buf, sizeof buf, "%s", conf->path);
    add_dir(w, dirname(buf));
    for (uint32_t i = 0; i < conf->ninclude_dirs; i++)
        add_dir(w, conf->include_dirs[i]);
    for (uint32_t i = 0; i < conf->nplugin_dirs; i++)
        add_plugin_dir(w, conf->plugin_dirs[i]);
    if (torii_vm_home(buf, sizeof buf - 16)) {
        strcat(buf, "/plugins");
        add_plugin_dir(w, buf);
    }
    return w;
}

int torii_watch_fd(const torii_watch_t *w)
{
    return w->fd;
}

unsigned torii_watch_count(const torii_watch_t *w)
{
    return w->ndirs;
}

/* Editors' swap and backup files must not trigger reloads. */
static bool relevant(const char *name)
{
    static const char *const exts[] = {".yaml", ".yml", ".json", ".lua"};
    size_t n = strlen(name);
    if (name[0] == '.')
        return false;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t k = strlen(exts[i]);
        if (n > k && strcmp(name + n - k, exts[i]) == 0)
            return true;
    }
    return false;
}

bool torii_watch_changed(torii_watch_t *w)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool changed = false;
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0)
            return changed; /* EAGAIN: drained */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            if (e->mask & IN_Q_OVERFLOW)
                changed = true; /* events were lost: assume the worst */
            else if (e->len > 0 && (relevant(e->name) || (e->mask & IN_ISDIR)))
                changed = true;
            p += sizeof *e + e->len;
        }
    }
}

void torii_watch_free(torii_watch_t *w)
{
    if (!w)
        return;
    close(w->fd);
    free(w);
}
