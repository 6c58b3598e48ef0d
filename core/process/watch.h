/*
 * watch.h — the opt-in file watcher (`watch: true`): inotify on the
 * configuration's directory, the directories its include patterns look
 * in, and the plugin directories, telling the master when a file that
 * can change behaviour (.yaml, .yml, .json, .lua) was written, moved in
 * or removed. The master debounces and reloads.
 */
#ifndef TORII_WATCH_H
#define TORII_WATCH_H

#include <stdbool.h>

#include "config/config.h"

typedef struct torii_watch_s torii_watch_t;

/* Watch what conf reads. NULL (logged) when inotify is not available. */
torii_watch_t *torii_watch_new(const torii_config_t *conf);

/* The descriptor to poll for reading. */
int torii_watch_fd(const torii_watch_t *w);

/* Read the pending events: true if one concerns a relevant file. */
bool torii_watch_changed(torii_watch_t *w);

/* How many directories are watched. */
unsigned torii_watch_count(const torii_watch_t *w);

void torii_watch_free(torii_watch_t *w);

#endif
