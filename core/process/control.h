/*
 * control.h — the master's control socket, through which `torii -s
 * reload` asks for a reload and waits for its outcome.
 *
 * It is a Linux abstract-namespace Unix socket named after the master's
 * pid: no file to clean up, no path length limit, and the pid file
 * already tells the command line which master to talk to. Only the same
 * user (or root) is answered.
 */
#ifndef TORII_CONTROL_H
#define TORII_CONTROL_H

#include <stddef.h>
#include <sys/types.h>

/* The master's listening socket (non-blocking), or -1 with err. */
int torii_control_listen(pid_t pid, char *err, size_t errlen);

/* Accept one command: the connection's fd with the command (one line,
 * without the newline) in cmd, or -1 (nothing to accept, a stranger, or
 * no command in time). */
int torii_control_accept(int lfd, char *cmd, size_t cap);

/* From the command line: send cmd to the master `pid` and wait for its
 * one-line answer, "ok ..." or "error ...", put in reply. -1 with err when
 * the master cannot be reached or does not answer within timeout_s. */
int torii_control_call(pid_t pid, const char *cmd, double timeout_s, char *reply, size_t cap, char *err, size_t errlen);

#endif
