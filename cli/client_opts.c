/* The options of the commands that talk to a cluster (cli.h). */
#include <stdio.h>

#include "cli/cli.h"
#include "include/evr/client.h"
#include "server/server.h"

int cli_client_open(const char *cmd, const struct cli_args *a,
                    uint32_t sessions, struct evr_client **out)
{
    struct evr_client_opts o;
    evr_client_opts_default(&o);
    o.cluster = cli_get(a, "cluster");
    if (o.cluster == NULL) {
        fprintf(stderr, "evr %s: --cluster ADDR0,ADDR1,... is required\n",
                cmd);
        return 2;
    }
    uint64_t try_ms = o.try_timeout_ms, deadline_ms = o.deadline_ms;
    int rc = cli_u64(cmd, a, "cluster-id", 0, UINT64_MAX, &o.cluster_id);
    rc = rc ? rc : cli_u64(cmd, a, "try-timeout-ms", 1, 3600000, &try_ms);
    rc = rc ? rc : cli_u64(cmd, a, "deadline-ms", 1, 86400000, &deadline_ms);
    if (rc != 0) {
        return rc;
    }
    o.try_timeout_ms = (uint32_t)try_ms;
    o.deadline_ms = (uint32_t)deadline_ms;
    o.sessions = sessions;
    struct evr_err err = {0};
    rc = evr_client_new(&o, out, &err);
    if (rc != 0) {
        fprintf(stderr, "evr %s: %s\n", cmd, err.msg);
        return rc == EVR_EINVAL ? 2 : 1;
    }
    return 0;
}

const char *cli_mode_name(uint8_t mode)
{
    return mode <= EVR_SERVER_UNREPLICATED
               ? evr_server_mode_name((enum evr_server_mode)mode)
               : "?";
}
