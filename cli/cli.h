/*
 * The evr command line: one binary, one subcommand per file (cmd_*.c).
 * Commands return a process exit status: 0 success, 1 failure of the work,
 * 2 bad usage. They print errors to stderr as "evr <command>: message".
 */
#ifndef EVR_CLI_H
#define EVR_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "workloads/app.h"

#define EVR_VERSION "0.1.0"

int evr_cmd_digest(int argc, char **argv);
int evr_cmd_populate(int argc, char **argv);
int evr_cmd_bench_exec(int argc, char **argv);
int evr_cmd_serve(int argc, char **argv);
int evr_cmd_cluster(int argc, char **argv);
int evr_cmd_kv(int argc, char **argv);
int evr_cmd_status(int argc, char **argv);
int evr_cmd_check(int argc, char **argv);
int evr_cmd_bench(int argc, char **argv);

/* ---------------------------------------------------------------- options
 *
 * Options are "--name value" or "--name=value"; flags are "--name". A
 * command declares the options it knows; with `rest` set, unknown options
 * are collected there (bench-exec passes them to the application).
 */
struct cli_opt {
    const char *name;
    bool flag;          /* takes no value */
    const char *value;  /* set by parsing; "1" for a flag given */
};

struct cli_args {
    struct cli_opt *opts;
    int nopts;
    struct evr_app_opt rest[64];
    int nrest;
    char *positional[8];
    int npositional;
};

/* Returns 0, or 2 after printing the problem (command named in `cmd`). */
int cli_parse(const char *cmd, int argc, char **argv, struct cli_args *a,
              bool collect_rest);

const char *cli_get(const struct cli_args *a, const char *name);

/* Parse an option value; on error print "evr cmd: --name ..." and return 2.
 * A missing option keeps *out as it was (the default). */
int cli_u64(const char *cmd, const struct cli_args *a, const char *name,
            uint64_t lo, uint64_t hi, uint64_t *out);

/* ---------------------------------------------------------------- client
 *
 * The options every command that talks to a cluster shares, for its
 * cli_opt table and help text: --cluster LIST (required), --cluster-id N
 * (1), --try-timeout-ms M (1000), --deadline-ms M (30000).
 */
#define CLI_CLIENT_OPTS                                                       \
    {"cluster", false, NULL}, {"cluster-id", false, NULL},                    \
        {"try-timeout-ms", false, NULL}, {"deadline-ms", false, NULL}
#define CLI_CLIENT_HELP                                                       \
    "  --cluster LIST       replica addresses host:port,... in replica "     \
    "order\n"                                                                 \
    "  --cluster-id N       cluster id (1)\n"                                 \
    "  --try-timeout-ms M   wait for a reply before a retry (1000)\n"         \
    "  --deadline-ms M      give a request up after this (30000)\n"

struct evr_client;

/* Opens a client with `sessions` sessions from those options. 0, or the
 * exit status (2 bad usage, 1 failure) after printing the problem. */
int cli_client_open(const char *cmd, const struct cli_args *a,
                    uint32_t sessions, struct evr_client **out);

/* The server's mode byte of a STATUS_REPLY as a name ("eve"). */
const char *cli_mode_name(uint8_t mode);

/* ---------------------------------------------------------------- output */

struct json {
    struct evr_buf b;
    bool need_comma;
};

void json_begin(struct json *j);           /* "{" */
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const char *key, const char *v);
void json_num(struct json *j, const char *key, double v);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_bool(struct json *j, const char *key, bool v);
void json_obj_begin(struct json *j, const char *key); /* key may be NULL */
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j, const char *key);
void json_arr_end(struct json *j);
void json_arr_num(struct json *j, double v);
/* Closes the object and writes it to path; prints and returns 1 on error. */
int json_write(struct json *j, const char *cmd, const char *path);

/* Machine description for benchmark records. */
int cli_nproc(void);
void cli_cpu_model(char *out, size_t n);

#endif
