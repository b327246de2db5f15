/* A minimal JSON writer for result files, and machine facts. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static void raw(struct json *j, const char *s)
{
    evr_buf_put(&j->b, s, strlen(s));
}

static void comma(struct json *j)
{
    if (j->need_comma) {
        raw(j, ", ");
    }
    j->need_comma = true;
}

static void quoted(struct json *j, const char *s)
{
    raw(j, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            snprintf(esc, sizeof esc, "\\%c", *p);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
        } else {
            esc[0] = (char)*p;
            esc[1] = '\0';
        }
        raw(j, esc);
    }
    raw(j, "\"");
}

void json_begin(struct json *j)
{
    evr_buf_init(&j->b, 1u << 24);
    j->need_comma = false;
    raw(j, "{");
}

void json_key(struct json *j, const char *key)
{
    comma(j);
    quoted(j, key);
    raw(j, ": ");
}

void json_str(struct json *j, const char *key, const char *v)
{
    json_key(j, key);
    quoted(j, v);
}

static void number(struct json *j, double v)
{
    char s[64];
    if (!isfinite(v)) {
        snprintf(s, sizeof s, "null");
    } else if (v == (double)(long long)v && fabs(v) < 1e15) {
        snprintf(s, sizeof s, "%lld", (long long)v);
    } else {
        snprintf(s, sizeof s, "%.6g", v);
    }
    raw(j, s);
}

void json_num(struct json *j, const char *key, double v)
{
    json_key(j, key);
    number(j, v);
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%llu", (unsigned long long)v);
    json_key(j, key);
    raw(j, s);
}

void json_bool(struct json *j, const char *key, bool v)
{
    json_key(j, key);
    raw(j, v ? "true" : "false");
}

void json_obj_begin(struct json *j, const char *key)
{
    if (key != NULL) {
        json_key(j, key);
    } else {
        comma(j);
    }
    raw(j, "{");
    j->need_comma = false;
}

void json_obj_end(struct json *j)
{
    raw(j, "}");
    j->need_comma = true;
}

void json_arr_begin(struct json *j, const char *key)
{
    json_key(j, key);
    raw(j, "[");
    j->need_comma = false;
}

void json_arr_end(struct json *j)
{
    raw(j, "]");
    j->need_comma = true;
}

void json_arr_num(struct json *j, double v)
{
    comma(j);
    number(j, v);
}

int json_write(struct json *j, const char *cmd, const char *path)
{
    raw(j, "}\n");
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (f == NULL || fwrite(j->b.data, 1, j->b.len, f) != j->b.len) {
        rc = 1;
    }
    if (f != NULL && fclose(f) != 0) {
        rc = 1;
    }
    if (rc != 0) {
        fprintf(stderr, "evr %s: cannot write '%s'\n", cmd, path);
    }
    evr_buf_free(&j->b);
    return rc;
}

int cli_nproc(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void cli_cpu_model(char *out, size_t n)
{
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL) {
        return;
    }
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v != NULL) {
                v += 1 + strspn(v + 1, " \t");
                v[strcspn(v, "\n")] = '\0';
                snprintf(out, n, "%s", v);
            }
            break;
        }
    }
    fclose(f);
}
