/*
 * evr error codes and error reports.
 *
 * Every fallible evr function returns 0 on success or a negative EVR_E*
 * code, and, when given a non-NULL `struct evr_err *`, leaves a one-line
 * message there that names what failed and why (file, table, record, SQLite's
 * own message). Callers print err->msg; they never have to guess.
 *
 * Codes are negative so that they never collide with SQLite's positive
 * result codes, which some interfaces (the application's execute function)
 * pass through unchanged.
 */
#ifndef EVR_COMMON_ERR_H
#define EVR_COMMON_ERR_H

#include <stddef.h>

/* XX(name, value, text) */
#define EVR_ERRNO_MAP(XX)                                                     \
    XX(EINVAL, -1, "invalid argument")                                        \
    XX(ENOMEM, -2, "out of memory")                                           \
    XX(ENOENT, -3, "no such file")                                            \
    XX(EIO, -4, "input/output error")                                         \
    XX(ENOSPC, -5, "no space left on device")                                 \
    XX(ESQL, -6, "SQLite error")                                              \
    XX(ESCHEMA, -7, "unsupported schema")                                     \
    XX(ECORRUPT, -8, "corrupt input")                                         \
    XX(EMISMATCH, -9, "digest mismatch")                                      \
    XX(ESTATE, -10, "operation not valid in this state")                      \
    XX(ELIMIT, -11, "limit exceeded")                                         \
    XX(EBUSY, -12, "resource busy")                                           \
    XX(EAPP, -13, "application error")                                        \
    XX(ETIMEDOUT, -14, "timed out")

enum evr_errno {
#define EVR__ERR_ENUM(name, value, text) EVR_##name = (value),
    EVR_ERRNO_MAP(EVR__ERR_ENUM)
#undef EVR__ERR_ENUM
};

#define EVR_ERR_MSG_MAX 512

struct evr_err {
    int code;                  /* 0 or an EVR_E* code */
    char msg[EVR_ERR_MSG_MAX]; /* NUL-terminated, one line */
};

/* Static text for a code ("unknown error" for codes outside the map). */
const char *evr_strerror(int code);

/* Symbolic name ("EVR_ECORRUPT") for a code. */
const char *evr_errname(int code);

/*
 * Records code and a printf-style message in err (which may be NULL) and
 * returns code, so that `return evr_err_set(err, EVR_EIO, "...")` reads
 * naturally. A message longer than EVR_ERR_MSG_MAX is truncated.
 */
int evr_err_set(struct evr_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Prefixes err->msg with more context ("snapshot 'x': " + old message),
 * keeping the code. Returns err->code (or code when err is NULL).
 */
int evr_err_wrap(struct evr_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void evr_err_clear(struct evr_err *err);

#endif
