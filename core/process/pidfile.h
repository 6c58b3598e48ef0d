/* pidfile.h — the master's pid file, which `torii -s` reads. */
#ifndef TORII_PIDFILE_H
#define TORII_PIDFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Write our pid; refuses (TORII_ERROR) if another live torii holds it. */
int torii_pidfile_write(const char *path, char *err, size_t errlen);

/* The pid in the file, or -1 with the reason in err. */
pid_t torii_pidfile_read(const char *path, char *err, size_t errlen);

/* Remove the file if it still names us. */
void torii_pidfile_remove(const char *path);

#endif
