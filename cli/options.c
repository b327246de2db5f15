#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static struct cli_opt *find(struct cli_args *a, const char *name, size_t n)
{
    for (int i = 0; i < a->nopts; i++) {
        if (strlen(a->opts[i].name) == n &&
            strncmp(a->opts[i].name, name, n) == 0) {
            return &a->opts[i];
        }
    }
    return NULL;
}

static int add_rest(const char *cmd, struct cli_args *a, char *name,
                    size_t n, const char *value)
{
    if (a->nrest == (int)(sizeof a->rest / sizeof a->rest[0])) {
        fprintf(stderr, "evr %s: too many options\n", cmd);
        return 2;
    }
    name[n] = '\0'; /* argv strings are ours to cut */
    a->rest[a->nrest].name = name;
    a->rest[a->nrest].value = value;
    a->nrest++;
    return 0;
}

int cli_parse(const char *cmd, int argc, char **argv, struct cli_args *a,
              bool collect_rest)
{
    a->nrest = 0;
    a->npositional = 0;
    for (int i = 0; i < argc; i++) {
        char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (a->npositional == 8) {
                fprintf(stderr, "evr %s: too many arguments\n", cmd);
                return 2;
            }
            a->positional[a->npositional++] = arg;
            continue;
        }
        char *name = arg + 2;
        char *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        struct cli_opt *o = find(a, name, n);
        const char *value = eq ? eq + 1 : NULL;
        if (o != NULL && o->flag) {
            if (value != NULL) {
                fprintf(stderr, "evr %s: --%s takes no value\n", cmd, o->name);
                return 2;
            }
            o->value = "1";
            continue;
        }
        if (value == NULL) {
            if (i + 1 == argc) {
                fprintf(stderr, "evr %s: --%.*s needs a value\n", cmd, (int)n,
                        name);
                return 2;
            }
            value = argv[++i];
        }
        if (o != NULL) {
            o->value = value;
        } else if (collect_rest) {
            int rc = add_rest(cmd, a, name, n, value);
            if (rc != 0) {
                return rc;
            }
        } else {
            fprintf(stderr, "evr %s: unknown option --%.*s (see evr %s "
                    "--help)\n", cmd, (int)n, name, cmd);
            return 2;
        }
    }
    return 0;
}

const char *cli_get(const struct cli_args *a, const char *name)
{
    for (int i = 0; i < a->nopts; i++) {
        if (strcmp(a->opts[i].name, name) == 0) {
            return a->opts[i].value;
        }
    }
    return NULL;
}

int cli_u64(const char *cmd, const struct cli_args *a, const char *name,
            uint64_t lo, uint64_t hi, uint64_t *out)
{
    const char *v = cli_get(a, name);
    if (v == NULL) {
        return 0;
    }
    struct evr_app_opt o = {name, v};
    struct evr_err err = {0};
    if (evr_opt_u64(&o, lo, hi, out, &err) != 0) {
        fprintf(stderr, "evr %s: %s\n", cmd, err.msg);
        return 2;
    }
    return 0;
}
