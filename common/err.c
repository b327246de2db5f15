#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *evr_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define EVR__ERR_TEXT(name, value, text)                                      \
    case value:                                                               \
        return text;
        EVR_ERRNO_MAP(EVR__ERR_TEXT)
#undef EVR__ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *evr_errname(int code)
{
    switch (code) {
    case 0:
        return "0";
#define EVR__ERR_NAME(name, value, text)                                      \
    case value:                                                               \
        return "EVR_" #name;
        EVR_ERRNO_MAP(EVR__ERR_NAME)
#undef EVR__ERR_NAME
    default:
        return "EVR_E?";
    }
}

int evr_err_set(struct evr_err *err, int code, const char *fmt, ...)
{
    if (err == NULL) {
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

int evr_err_wrap(struct evr_err *err, int code, const char *fmt, ...)
{
    if (err == NULL) {
        return code;
    }
    if (err->code == 0) {
        err->code = code;
        err->msg[0] = '\0';
    }
    char prefix[EVR_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[EVR_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    size_t n = strlen(prefix);
    if (n + 2 < sizeof err->msg) {
        memcpy(err->msg, prefix, n);
        memcpy(err->msg + n, ": ", 2);
        size_t room = sizeof err->msg - n - 2;
        size_t m = strnlen(old, room - 1);
        memcpy(err->msg + n + 2, old, m);
        err->msg[n + 2 + m] = '\0';
    }
    return err->code;
}

void evr_err_clear(struct evr_err *err)
{
    if (err != NULL) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
