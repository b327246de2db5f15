/*
 * evr cluster: a local cluster on loopback for each mode in turn — child
 * `evr serve` processes on temporary data directories, `evr bench` against
 * them, `evr check` for convergence, a clean stop — and one comparison
 * table. Everything runs as child processes of this binary, the way a user
 * would run them by hand.
 */
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "verifier/verifier.h"

#define MODES_MAX 3
#define ARGS_MAX 128
#define STOP_WAIT_MS 20000

struct mode_run {
    char mode[32];
    bool ran, converged;
    double throughput, p50, p90, p99, seconds;
    double ops, errors, rollbacks, repairs, batches;
    char *bench_json; /* the bench's own JSON object */
};

struct cluster {
    uint64_t replicas, threads, duration, warmup, clients;
    const char *app, *json, *log_level;
    bool keep;
    char self[4096];
    char root[256];
    char modes[MODES_MAX][32];
    int nmodes;
    struct evr_app_opt *rest;
    int nrest;
    struct mode_run runs[MODES_MAX];
};

static void help(void)
{
    printf(
        "usage: evr cluster [--replicas 3] [--app tpcw] "
        "[--modes eve,agree-execute]\n"
        "                   [--threads 2] [--clients 32] [--duration 20] "
        "[--warmup 3]\n"
        "                   [--json FILE] [--keep] [--log-level warn] "
        "[application options]\n"
        "\n"
        "For each mode (eve, agree-execute, unreplicated) in turn: starts a\n"
        "local cluster on loopback (child processes, temporary data\n"
        "directories), runs evr bench against it, checks that the replicas\n"
        "converged (evr check), stops it cleanly, and prints a comparison\n"
        "table with the ratio eve / agree-execute. Application options go to\n"
        "both the replicas (population) and the bench (load), e.g.\n"
        "--items 1000 --mix browsing for tpcw, --keys 10000 for kv.\n");
}

/* ------------------------------------------------------------ processes */

static pid_t spawn(char **argv, const char *log_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (log_path != NULL) {
            FILE *f = freopen(log_path, "w", stderr);
            (void)f;
        }
        execv(argv[0], argv);
        fprintf(stderr, "evr cluster: exec %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Waits for pid; -1 if it did not exit within wait_ms (then killed). */
static int reap(pid_t pid, int wait_ms)
{
    for (int waited = 0; waited <= wait_ms; waited += 10) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (r < 0) {
            return -1;
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static int run_child(char **argv)
{
    pid_t pid = spawn(argv, NULL);
    return pid < 0 ? -1 : reap(pid, 24 * 3600 * 1000);
}

/* Free loopback ports, from the kernel (a small race with other programs
 * is possible; the replicas then fail to bind and say so). */
static int free_ports(int *ports, int n)
{
    int fds[EVR_REPLICAS_MAX];
    int rc = 0;
    for (int i = 0; i < n; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) ||
            getsockname(fds[i], (struct sockaddr *)&a, &len)) {
            rc = -1;
        }
        ports[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    return rc;
}

/* ------------------------------------------------------------ one mode */

static void add_rest(const struct cluster *c, char **argv, int *n,
                     char store[][300])
{
    for (int i = 0; i < c->nrest && *n < ARGS_MAX - 8; i++) {
        snprintf(store[i], 300, "--%s=%s", c->rest[i].name,
                 c->rest[i].value);
        argv[(*n)++] = store[i];
    }
}

static int start_replicas(struct cluster *c, const char *mode,
                          const char *addrs, pid_t *pids)
{
    static char store[64][300];
    for (uint64_t i = 0; i < c->replicas; i++) {
        char id[24], data[400], log[400], threads[24];
        snprintf(id, sizeof id, "%llu", (unsigned long long)i);
        snprintf(data, sizeof data, "%s/%s/r%llu", c->root, mode,
                 (unsigned long long)i);
        snprintf(log, sizeof log, "%s/%s/r%llu.log", c->root, mode,
                 (unsigned long long)i);
        snprintf(threads, sizeof threads, "%llu",
                 (unsigned long long)c->threads);
        char *argv[ARGS_MAX] = {c->self, "serve", "--id", id, "--cluster",
                                (char *)addrs, "--data", data, "--app",
                                (char *)c->app, "--mode", (char *)mode,
                                "--threads", threads, "--log-level",
                                (char *)c->log_level};
        int n = 16;
        add_rest(c, argv, &n, store);
        argv[n] = NULL;
        pids[i] = spawn(argv, log);
        if (pids[i] < 0) {
            fprintf(stderr, "evr cluster: fork: %s\n", strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int run_bench(struct cluster *c, const char *addrs, const char *json)
{
    static char store[64][300];
    char clients[24], duration[24], warmup[24];
    snprintf(clients, sizeof clients, "%llu", (unsigned long long)c->clients);
    snprintf(duration, sizeof duration, "%llu",
             (unsigned long long)c->duration);
    snprintf(warmup, sizeof warmup, "%llu", (unsigned long long)c->warmup);
    char *argv[ARGS_MAX] = {c->self, "bench", "--cluster", (char *)addrs,
                            "--app", (char *)c->app, "--clients", clients,
                            "--duration", duration, "--warmup", warmup,
                            "--json", (char *)json};
    int n = 14;
    add_rest(c, argv, &n, store);
    argv[n] = NULL;
    return run_child(argv);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    char *text = calloc(1, 1u << 20);
    if (text != NULL) {
        size_t k = fread(text, 1, (1u << 20) - 1, f);
        text[k] = '\0';
        while (k > 0 && (text[k - 1] == '\n' || text[k - 1] == ' ')) {
            text[--k] = '\0';
        }
    }
    fclose(f);
    return text;
}

/* The number after "key": at or after `from` in a JSON text we wrote. */
static double json_number(const char *text, const char *from,
                          const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(from ? from : text, pat);
    return p ? strtod(p + strlen(pat), NULL) : 0.0;
}

static void read_bench(struct mode_run *m, const char *path)
{
    m->bench_json = slurp(path);
    const char *t = m->bench_json;
    if (t == NULL) {
        return;
    }
    m->ops = json_number(t, NULL, "ops");
    m->errors = json_number(t, NULL, "errors");
    m->seconds = json_number(t, NULL, "seconds");
    m->throughput = json_number(t, NULL, "throughput_ops");
    m->rollbacks = json_number(t, NULL, "rollbacks");
    m->repairs = json_number(t, NULL, "repairs");
    m->batches = json_number(t, NULL, "batches");
    const char *lat = strstr(t, "\"latency_ms\":");
    m->p50 = json_number(t, lat, "p50");
    m->p90 = json_number(t, lat, "p90");
    m->p99 = json_number(t, lat, "p99");
}

static void stop_replicas(struct cluster *c, pid_t *pids, int n)
{
    for (int i = 0; i < n; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
        }
    }
    for (int i = 0; i < n; i++) {
        if (pids[i] > 0) {
            int st = reap(pids[i], STOP_WAIT_MS);
            if (st != 0) {
                fprintf(stderr, "evr cluster: replica %d exited with %d "
                                "(log: %s)\n", i, st, c->root);
            }
        }
    }
}

static void run_mode(struct cluster *c, struct mode_run *m)
{
    int ports[EVR_REPLICAS_MAX];
    int n = (int)c->replicas;
    if (strcmp(m->mode, "unreplicated") == 0) {
        n = 1;
    }
    char addrs[EVR_REPLICAS_MAX * 24] = "", dir[400], json[400];
    snprintf(dir, sizeof dir, "%s/%s", c->root, m->mode);
    mkdir(dir, 0755);
    if (free_ports(ports, n) != 0) {
        fprintf(stderr, "evr cluster: no free loopback ports\n");
        return;
    }
    for (int i = 0; i < n; i++) {
        size_t k = strlen(addrs);
        snprintf(addrs + k, sizeof addrs - k, "%s127.0.0.1:%d",
                 i ? "," : "", ports[i]);
    }
    uint64_t replicas = c->replicas;
    c->replicas = (uint64_t)n;
    pid_t pids[EVR_REPLICAS_MAX] = {0};
    fprintf(stderr, "evr cluster: %s: %d replica(s) on %s, %llu s of "
            "load from %llu clients\n", m->mode, n, addrs,
            (unsigned long long)c->duration, (unsigned long long)c->clients);
    if (start_replicas(c, m->mode, addrs, pids) == 0) {
        snprintf(json, sizeof json, "%s/%s/bench.json", c->root, m->mode);
        m->ran = run_bench(c, addrs, json) == 0;
        read_bench(m, json);
        char *argv[] = {c->self, "check", "--cluster", addrs, NULL};
        m->converged = run_child(argv) == 0;
    }
    stop_replicas(c, pids, n);
    c->replicas = replicas;
}

/* ------------------------------------------------------------ report */

static const struct mode_run *find(const struct cluster *c, const char *m)
{
    for (int i = 0; i < c->nmodes; i++) {
        if (strcmp(c->runs[i].mode, m) == 0 && c->runs[i].ran) {
            return &c->runs[i];
        }
    }
    return NULL;
}

static double ratio(const struct cluster *c)
{
    const struct mode_run *e = find(c, "eve");
    const struct mode_run *a = find(c, "agree-execute");
    return e && a && a->throughput > 0 ? e->throughput / a->throughput : 0;
}

static void print_table(const struct cluster *c)
{
    int cores = cli_nproc();
    printf("\n%-14s %12s %9s %9s %9s %10s %9s\n", "mode", "ops/s",
           "p50 ms", "p99 ms", "errors", "rollbacks", "converged");
    for (int i = 0; i < c->nmodes; i++) {
        const struct mode_run *m = &c->runs[i];
        if (!m->ran) {
            printf("%-14s %12s (bench failed; logs in %s/%s)\n", m->mode,
                   "-", c->root, m->mode);
            continue;
        }
        printf("%-14s %12.0f %9.2f %9.2f %9.0f %10.0f %9s\n", m->mode,
               m->throughput, m->p50, m->p99, m->errors, m->rollbacks,
               m->converged ? "yes" : "NO");
    }
    if (ratio(c) > 0) {
        printf("\neve / agree-execute: %.2fx\n", ratio(c));
    }
    uint64_t want = c->replicas * c->threads;
    printf("\n%llu replicas x %llu threads share %d cores",
           (unsigned long long)c->replicas, (unsigned long long)c->threads,
           cores);
    if (want > (uint64_t)cores) {
        printf(": the replicas compete for the same cores, so this ratio "
               "cannot show\nEve's parallel speedup. 'evr bench-exec' "
               "measures it on one replica.\n");
    } else {
        printf(".\n");
    }
}

static int write_json(const struct cluster *c)
{
    struct json j;
    json_begin(&j);
    json_str(&j, "app", c->app);
    json_u64(&j, "replicas", c->replicas);
    json_u64(&j, "threads", c->threads);
    json_u64(&j, "clients", c->clients);
    json_u64(&j, "duration", c->duration);
    json_u64(&j, "cores", (uint64_t)cli_nproc());
    json_arr_begin(&j, "modes");
    for (int i = 0; i < c->nmodes; i++) {
        const struct mode_run *m = &c->runs[i];
        json_obj_begin(&j, NULL);
        json_str(&j, "mode", m->mode);
        json_bool(&j, "ran", m->ran);
        json_bool(&j, "converged", m->converged);
        json_num(&j, "throughput_ops", m->throughput);
        json_num(&j, "errors", m->errors);
        json_num(&j, "rollbacks", m->rollbacks);
        json_obj_begin(&j, "latency_ms");
        json_num(&j, "p50", m->p50);
        json_num(&j, "p90", m->p90);
        json_num(&j, "p99", m->p99);
        json_obj_end(&j);
        if (m->bench_json != NULL && m->bench_json[0] == '{') {
            json_key(&j, "bench");
            evr_buf_put(&j.b, m->bench_json, strlen(m->bench_json));
            j.need_comma = true;
        }
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_num(&j, "ratio_eve_over_agree_execute", ratio(c));
    return json_write(&j, "cluster", c->json);
}

/* ------------------------------------------------------------ main */

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int parse_modes(struct cluster *c, const char *list)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", list);
    c->nmodes = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "eve") != 0 && strcmp(t, "agree-execute") != 0 &&
            strcmp(t, "unreplicated") != 0) {
            fprintf(stderr, "evr cluster: unknown mode '%s' (eve, "
                            "agree-execute, unreplicated)\n", t);
            return 2;
        }
        if (c->nmodes == MODES_MAX) {
            fprintf(stderr, "evr cluster: at most %d modes\n", MODES_MAX);
            return 2;
        }
        snprintf(c->modes[c->nmodes++], sizeof c->modes[0], "%s", t);
    }
    return c->nmodes > 0 ? 0 : 2;
}

static int parse(struct cluster *c, int argc, char **argv)
{
    struct cli_opt opts[] = {
        {"replicas", false, NULL}, {"app", false, NULL},
        {"modes", false, NULL},    {"threads", false, NULL},
        {"clients", false, NULL},  {"duration", false, NULL},
        {"warmup", false, NULL},   {"json", false, NULL},
        {"keep", true, NULL},      {"log-level", false, NULL},
        {"help", true, NULL},
    };
    static struct cli_args a;
    a.opts = opts;
    a.nopts = (int)(sizeof opts / sizeof opts[0]);
    int rc = cli_parse("cluster", argc, argv, &a, true);
    if (rc != 0) {
        return rc;
    }
    if (cli_get(&a, "help")) {
        help();
        return -1;
    }
    c->replicas = 3;
    c->threads = 2;
    c->clients = 32;
    c->duration = 20;
    c->warmup = 3;
    rc = cli_u64("cluster", &a, "replicas", 1, EVR_REPLICAS_MAX, &c->replicas);
    rc = rc ? rc : cli_u64("cluster", &a, "threads", 1, 256, &c->threads);
    rc = rc ? rc : cli_u64("cluster", &a, "clients", 1, 4096, &c->clients);
    rc = rc ? rc : cli_u64("cluster", &a, "duration", 1, 86400, &c->duration);
    rc = rc ? rc : cli_u64("cluster", &a, "warmup", 0, 3600, &c->warmup);
    const char *modes = cli_get(&a, "modes");
    rc = rc ? rc : parse_modes(c, modes ? modes : "eve,agree-execute");
    if (rc == 0 && c->replicas % 2 == 0) {
        fprintf(stderr, "evr cluster: --replicas must be odd\n");
        rc = 2;
    }
    c->app = cli_get(&a, "app") ? cli_get(&a, "app") : "tpcw";
    c->json = cli_get(&a, "json");
    c->keep = cli_get(&a, "keep") != NULL;
    c->log_level = cli_get(&a, "log-level") ? cli_get(&a, "log-level")
                                            : "warn";
    c->rest = a.rest;
    c->nrest = a.nrest;
    return rc;
}

int evr_cmd_cluster(int argc, char **argv)
{
    static struct cluster c;
    memset(&c, 0, sizeof c);
    int rc = parse(&c, argc, argv);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    ssize_t k = readlink("/proc/self/exe", c.self, sizeof c.self - 1);
    if (k <= 0) {
        fprintf(stderr, "evr cluster: cannot find its own binary\n");
        return 1;
    }
    c.self[k] = '\0';
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(c.root, sizeof c.root, "%s/evr-cluster-XXXXXX", tmp);
    if (mkdtemp(c.root) == NULL) {
        fprintf(stderr, "evr cluster: %s: %s\n", c.root, strerror(errno));
        return 1;
    }
    for (int i = 0; i < c.nmodes; i++) {
        memcpy(c.runs[i].mode, c.modes[i], sizeof c.runs[i].mode);
        run_mode(&c, &c.runs[i]);
    }
    print_table(&c);
    int status = 0;
    for (int i = 0; i < c.nmodes; i++) {
        if (!c.runs[i].ran || !c.runs[i].converged) {
            status = 1;
        }
    }
    if (c.json != NULL && write_json(&c) != 0) {
        status = 1;
    }
    if (c.keep || status != 0) {
        printf("data directories and logs kept in %s\n", c.root);
    } else {
        nftw(c.root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    for (int i = 0; i < c.nmodes; i++) {
        free(c.runs[i].bench_json);
    }
    return status;
}
