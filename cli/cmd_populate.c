/* evr populate --app NAME --out FILE [app options] */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "cow_state/cow_state.h"

static void help(void)
{
    printf("usage: evr populate --app NAME --out FILE [application options]\n"
           "\n"
           "Writes the application's schema and deterministic start state "
           "to FILE (which\nmust not exist), in WAL mode, and prints its "
           "digest, size and build time. Applications: %s.\n",
           evr_app_names());
    evr_app_print_usage(stdout);
}

int evr_cmd_populate(int argc, char **argv)
{
    struct cli_opt opts[] = {{"app", false, NULL}, {"out", false, NULL},
                             {"help", true, NULL}};
    struct cli_args a = {.opts = opts, .nopts = 3};
    int rc = cli_parse("populate", argc, argv, &a, true);
    if (rc != 0) {
        return rc;
    }
    if (cli_get(&a, "help")) {
        help();
        return 0;
    }
    const char *name = cli_get(&a, "app");
    const char *out = cli_get(&a, "out");
    if (name == NULL || out == NULL || a.npositional != 0) {
        fprintf(stderr, "usage: evr populate --app NAME --out FILE "
                        "[application options]\n");
        return 2;
    }
    struct evr_app app;
    struct evr_err err = {0};
    if (evr_app_open(name, a.rest, a.nrest, &app, &err) != 0) {
        fprintf(stderr, "evr populate: %s\n", err.msg);
        return 2;
    }
    uint64_t t0 = evr_now_ns();
    rc = evr_app_populate_file(&app, out, &err);
    double seconds = (double)(evr_now_ns() - t0) / 1e9;
    evr_h128 h;
    if (rc == 0) {
        rc = evr_digest_file(out, &h, &err);
    }
    evr_app_close(&app);
    if (rc != 0) {
        fprintf(stderr, "evr populate: %s\n", err.msg);
        return 1;
    }
    struct stat st;
    char hex[EVR_H128_HEX_LEN + 1];
    evr_h128_to_hex(h, hex);
    printf("%s: app %s, %lld bytes, %.2f s, digest %s\n", out, name,
           stat(out, &st) == 0 ? (long long)st.st_size : -1LL, seconds, hex);
    return 0;
}
