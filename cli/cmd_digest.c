/* evr digest FILE: the full-scan state digest of a database file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cow_state/cow_state.h"

int evr_cmd_digest(int argc, char **argv)
{
    if (argc == 1 && (strcmp(argv[0], "--help") == 0)) {
        printf("usage: evr digest FILE\n\n"
               "Prints the state digest of the SQLite database FILE (32 hex "
               "digits): XXH3-128\nrow hashes summed into buckets per table, "
               "over every table, in the order-\nindependent form replicas "
               "compare (docs/DIGEST.md). Every table must declare\na PRIMARY "
               "KEY.\n");
        return 0;
    }
    if (argc != 1 || strncmp(argv[0], "--", 2) == 0) {
        fprintf(stderr, "usage: evr digest FILE\n");
        return 2;
    }
    evr_h128 h;
    struct evr_err err = {0};
    if (evr_digest_file(argv[0], &h, &err) != 0) {
        fprintf(stderr, "evr digest: %s\n", err.msg);
        return 1;
    }
    char hex[EVR_H128_HEX_LEN + 1];
    evr_h128_to_hex(h, hex);
    printf("%s\n", hex);
    return 0;
}
