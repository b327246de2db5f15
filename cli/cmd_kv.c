/*
 * evr kv: one request to a cluster running the kv application
 * (workloads/kv/kv.h), through the client library: put, get or delete one
 * key, and say what happened.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "include/evr/client.h"
#include "workloads/kv/kv.h"

static void help(void)
{
    printf("usage: evr kv --cluster LIST [options] put KEY VALUE\n"
           "       evr kv --cluster LIST [options] get KEY\n"
           "       evr kv --cluster LIST [options] del KEY\n"
           "\n"
           "Sends one request to the cluster's primary (found with STATUS,\n"
           "retried until the deadline) and waits for it to commit. get\n"
           "prints the value and a newline. Exit 0 when the request\n"
           "committed and did its work; 1 when it failed, timed out, or the\n"
           "key was not there (get, del: a message on stderr); 2 for bad\n"
           "usage. KEY is 1..255 bytes.\n"
           "\n" CLI_CLIENT_HELP);
}

struct kv_cmd {
    enum evr_kv_op op;
    const char *key, *value;
};

static int parse_op(const struct cli_args *a, struct kv_cmd *k)
{
    static const struct {
        const char *name;
        enum evr_kv_op op;
        int args;
    } ops[] = {{"put", EVR_KV_PUT, 3}, {"get", EVR_KV_GET, 2},
               {"del", EVR_KV_DEL, 2}};
    for (size_t i = 0; a->npositional > 0 && i < 3; i++) {
        if (strcmp(a->positional[0], ops[i].name) != 0) {
            continue;
        }
        if (a->npositional != ops[i].args) {
            break;
        }
        k->op = ops[i].op;
        k->key = a->positional[1];
        k->value = ops[i].args == 3 ? a->positional[2] : NULL;
        size_t kl = strlen(k->key);
        if (kl == 0 || kl > 255) {
            fprintf(stderr, "evr kv: KEY must be 1..255 bytes\n");
            return 2;
        }
        return 0;
    }
    fprintf(stderr, "evr kv: expected put KEY VALUE, get KEY or del KEY "
                    "(see evr kv --help)\n");
    return 2;
}

/* What a committed reply means for this command: exit status. */
static int report(const struct kv_cmd *k, int32_t status,
                  const struct evr_buf *resp)
{
    if (status != 0) {
        fprintf(stderr, "evr kv: the service refused the request: status %d "
                        "(%s)\n", status, evr_errname(status));
        return 1;
    }
    if (k->op == EVR_KV_PUT) {
        return 0;
    }
    if (resp->len < 1) {
        fprintf(stderr, "evr kv: empty response\n");
        return 1;
    }
    if (resp->data[0] == 0) {
        fprintf(stderr, "evr kv: %s: no such key%s\n", k->key,
                k->op == EVR_KV_DEL ? " (nothing deleted)" : "");
        return 1;
    }
    if (k->op == EVR_KV_GET) {
        fwrite(resp->data + 1, 1, resp->len - 1, stdout);
        fputc('\n', stdout);
    }
    return 0;
}

static int run(struct evr_client *c, const struct kv_cmd *k)
{
    struct evr_buf req, resp;
    evr_buf_init(&req, EVR_REQUEST_BYTES_MAX);
    evr_buf_init(&resp, (size_t)1 << 30);
    size_t vl = k->value ? strlen(k->value) : 0;
    int rc = evr_kv_encode(&req, k->op, k->key, (uint32_t)strlen(k->key),
                           k->value, (uint32_t)vl, 0);
    int status = 2;
    if (rc != 0) {
        fprintf(stderr, "evr kv: a request of %zu value bytes does not "
                        "fit in %u bytes\n", vl, EVR_REQUEST_BYTES_MAX);
    } else {
        struct evr_err err = {0};
        int32_t app_status = 0;
        rc = evr_client_call(c, 0, req.data, (uint32_t)req.len, &resp,
                             &app_status, &err);
        if (rc != 0) {
            fprintf(stderr, "evr kv: %s\n", err.msg);
            status = 1;
        } else {
            status = report(k, app_status, &resp);
        }
    }
    evr_buf_free(&req);
    evr_buf_free(&resp);
    return status;
}

int evr_cmd_kv(int argc, char **argv)
{
    struct cli_opt opts[] = {CLI_CLIENT_OPTS, {"help", true, NULL}};
    struct cli_args a = {.opts = opts,
                         .nopts = (int)(sizeof opts / sizeof opts[0])};
    int rc = cli_parse("kv", argc, argv, &a, false);
    if (rc != 0) {
        return rc;
    }
    if (cli_get(&a, "help")) {
        help();
        return 0;
    }
    struct kv_cmd k;
    rc = parse_op(&a, &k);
    struct evr_client *c = NULL;
    rc = rc ? rc : cli_client_open("kv", &a, 1, &c);
    if (rc != 0) {
        return rc;
    }
    rc = run(c, &k);
    evr_client_free(c);
    return rc;
}
