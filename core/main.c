/*
 * main.c — the command line:
 *
 *   torii [-c FILE] [-p PREFIX] [-t] [-s quit|stop|reload] [-v] [--help]
 *   torii test [busted options] [spec files or directories]
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"
#include "config/config.h"
#include "lua/vm.h"
#include "shm/zones.h"
#include "process/control.h"
#include "process/master.h"
#include "process/pidfile.h"
#include "proxy/health.h"
#include "testmode/testmode.h"

#define RELOAD_WAIT 90.0 /* seconds; the master gives up on a worker after 60 */

static void usage(FILE *out)
{
    fprintf(out, "Usage: torii [-c FILE] [-p PREFIX] [-t] [-s SIGNAL] [-v]\n"
                 "       torii test [busted options] [spec files or directories]\n"
                 "\n"
                 "torii is an HTTP API gateway: a C core with Lua plugins.\n"
                 "\n"
                 "Options:\n"
                 "  -c FILE      configuration file (default: PREFIX/conf/torii.yaml)\n"
                 "  -p PREFIX    directory for relative paths: logs, pid file (default: current directory)\n"
                 "  -t           check the configuration and exit\n"
                 "  -s SIGNAL    send a signal to the running master: quit (graceful), stop (now), reload\n"
                 "  -v           print the version and exit\n"
                 "  -h, --help   print this help and exit\n");
}

typedef struct {
    char prefix[PATH_MAX];
    char conf[PATH_MAX + 32];
    const char *signal;
    bool test;
} options_t;

static int parse_args(int argc, char **argv, options_t *o)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'v'}, {NULL, 0, NULL, 0}};
    const char *prefix = NULL, *conf = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:p:ts:vh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': conf = optarg; break;
        case 'p': prefix = optarg; break;
        case 't': o->test = true; break;
        case 's': o->signal = optarg; break;
        case 'v': printf("torii %s\n", TORII_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "torii: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!realpath(prefix ? prefix : ".", o->prefix)) {
        fprintf(stderr, "torii: prefix \"%s\": %s\n", prefix ? prefix : ".", strerror(errno));
        return 1;
    }
    if (conf)
        snprintf(o->conf, sizeof o->conf, "%s", conf);
    else
        snprintf(o->conf, sizeof o->conf, "%s/conf/torii.yaml", o->prefix);
    return -1;
}

/* Ask the master for a reload and wait until it is live in every worker,
 * or failed (then the reason is printed as torii -t prints it). */
static int reload(pid_t pid)
{
    char reply[1100], err[TORII_ERRLEN];
    if (torii_control_call(pid, "reload", RELOAD_WAIT, reply, sizeof reply, err, sizeof err) != 0) {
        fprintf(stderr, "torii: reload: %s\n", err);
        return 1;
    }
    if (strncmp(reply, "ok ", 3) == 0) {
        printf("torii: reload: %s\n", reply + 3);
        return 0;
    }
    fprintf(stderr, "torii: %s\n", strncmp(reply, "error ", 6) == 0 ? reply + 6 : reply);
    fprintf(stderr, "torii: reload failed; the running configuration stays in force\n");
    return 1;
}

static int send_signal(const options_t *o)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {{"quit", SIGQUIT}, {"stop", SIGTERM}, {"reload", SIGHUP}};
    char err[TORII_ERRLEN], pidpath[PATH_MAX + 32];
    torii_config_t *conf;
    pid_t pid;
    int sig = 0;
    for (size_t i = 0; i < TORII_ARRAY_LEN(sigs); i++) {
        if (strcmp(o->signal, sigs[i].name) == 0)
            sig = sigs[i].sig;
    }
    if (!sig) {
        fprintf(stderr, "torii: unknown signal \"%s\" (use quit, stop or reload)\n", o->signal);
        return 2;
    }
    /* The pid file's place comes from the configuration when it loads. */
    conf = torii_config_load(o->conf, o->prefix, err, sizeof err);
    if (conf)
        snprintf(pidpath, sizeof pidpath, "%s", conf->pid_file);
    else
        snprintf(pidpath, sizeof pidpath, "%s/logs/torii.pid", o->prefix);
    torii_config_free(conf);
    pid = torii_pidfile_read(pidpath, err, sizeof err);
    if (pid < 0) {
        fprintf(stderr, "torii: %s\n", err);
        return 1;
    }
    if (sig == SIGHUP)
        return reload(pid);
    if (kill(pid, sig) != 0) {
        fprintf(stderr, "torii: cannot signal pid %d: %s\n", (int)pid, strerror(errno));
        return 1;
    }
    return 0;
}

static void make_log_dir(const char *prefix)
{
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/logs", prefix);
    mkdir(dir, 0755); /* the default home of logs and the pid file */
}

static int open_logs(const torii_config_t *conf)
{
    char err[TORII_ERRLEN];
    if (torii_log_open(conf->error_log, conf->log_level, err, sizeof err) != TORII_OK ||
        torii_access_log_open(conf->access_log, err, sizeof err) != TORII_OK) {
        fprintf(stderr, "torii: %s\n", err);
        return TORII_ERROR;
    }
    return TORII_OK;
}

/* Shared dicts, before any worker forks: the configured ones, then those
 * the plugins in use want and the configuration does not declare. */
static int open_zones(const torii_config_t *conf, const torii_vm_t *vm, bool check_only, char *err, size_t errlen)
{
    char *const *names;
    const uint64_t *sizes;
    size_t n = torii_vm_dicts(vm, &names, &sizes);
    for (size_t i = 0; i < n; i++) {
        char why[256];
        if (!torii_zones_check(names[i], sizes[i], why, sizeof why)) {
            snprintf(err, errlen, "a plugin's shared_dicts: %s", why);
            return TORII_ERROR;
        }
    }
    if (check_only)
        return TORII_OK;
    /* Active health checks: worker 1 probes, every worker reads. */
    if (!torii_zones_add(TORII_HEALTH_ZONE, TORII_HEALTH_ZONE_SIZE, err, errlen))
        return TORII_ERROR;
    for (uint32_t i = 0; i < conf->nshdicts; i++)
        if (!torii_zones_add(conf->shdict_names[i], conf->shdict_sizes[i], err, errlen))
            return TORII_ERROR;
    for (size_t i = 0; i < n; i++)
        if (!torii_zones_has(names[i]) && !torii_zones_add(names[i], sizes[i], err, errlen))
            return TORII_ERROR;
    return TORII_OK;
}

int main(int argc, char **argv)
{
    options_t o = {0};
    char err[1024];
    torii_config_t *conf;
    int rc;
    if (argc > 1 && strcmp(argv[1], "test") == 0) /* plugins' specs, run in this process */
        return torii_testmode_main(argc - 1, argv + 1);
    rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.signal)
        return send_signal(&o);
    conf = torii_config_load(o.conf, o.prefix, err, sizeof err);
    if (!conf) {
        fprintf(stderr, "torii: %s\n", err);
        if (o.test)
            fprintf(stderr, "torii: configuration file %s test failed\n", o.conf);
        return 1;
    }
    {
        /* Plugins and their configurations are checked by loading them
         * once, as every worker will. */
        torii_vm_t *vm = torii_vm_new(conf, err, sizeof err);
        if (!vm) {
            fprintf(stderr, "torii: %s\n", err);
            if (o.test)
                fprintf(stderr, "torii: configuration file %s test failed\n", o.conf);
            torii_config_free(conf);
            return 1;
        }
        if (open_zones(conf, vm, o.test, err, sizeof err) != TORII_OK) {
            fprintf(stderr, "torii: %s\n", err);
            if (o.test)
                fprintf(stderr, "torii: configuration file %s test failed\n", o.conf);
            torii_vm_free(vm);
            torii_config_free(conf);
            return 1;
        }
        torii_vm_free(vm);
    }
    if (o.test) {
        printf("torii: configuration file %s test is successful\n", o.conf);
        torii_config_free(conf);
        return 0;
    }
    make_log_dir(o.prefix);
    if (open_logs(conf) != TORII_OK) {
        torii_config_free(conf);
        return 1;
    }
    rc = torii_master_run(conf);
    torii_zones_close();
    torii_log_close();
    return rc;
}
