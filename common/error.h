/* error.h - reelfarm error codes and error messages a user can act on.
 *
 * Functions return 0 on success or a negative RF_E* code. Where a bare code would not tell the user
 * what to fix, the function also fills an rf_err_t: the code plus one message naming what went wrong
 * and where ("job.yaml:12: key 'encode.crf': expected an integer, got 'high'").
 */
#ifndef RF_ERROR_H
#define RF_ERROR_H

#include <stdarg.h>
#include <stddef.h>

enum {
    RF_OK = 0,
    RF_EINVAL = -1,     /* invalid argument or value */
    RF_ENOMEM = -2,     /* out of memory, or over a byte budget */
    RF_EIO = -3,        /* file or socket I/O failed */
    RF_ENOENT = -4,     /* no such file, job, chunk or blob */
    RF_EPROTO = -5,     /* malformed or unexpected message */
    RF_ETOOBIG = -6,    /* over a named size limit */
    RF_EMEDIA = -7,     /* media that cannot be demuxed, decoded or encoded */
    RF_ECONFIG = -8,    /* invalid config or job spec */
    RF_ETIMEDOUT = -9,  /* a peer or an operation took too long */
    RF_ECANCELED = -10, /* cancelled on request */
    RF_EUNAVAIL = -11,  /* the coordinator or a capability is not reachable/present */
    RF_EVERIFY = -12,   /* a result failed verification (count, checksum, hash) */
    RF_EDB = -13,       /* the state database failed */
    RF_EAGAIN = -14,    /* try again later */
    RF_EEXIST = -15,    /* already exists */
    RF_EPERM = -16,     /* not allowed */
};

/* The short, constant description of a code ("invalid argument"). Never NULL. */
const char *rf_strerror(int code);

/* A code with its message. Embedded by value; no init/release needed (zero is "no error"). */
typedef struct rf_err {
    int code;       /* RF_E* or 0 */
    char msg[1024]; /* one line, no trailing newline, "" when code is 0 */
} rf_err_t;

/* Sets err (when err is not NULL) and returns code, so callers can `return rf_err_set(...)`.
 * The message is printf-formatted and truncated to fit. */
int rf_err_set(rf_err_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int rf_err_vset(rf_err_t *err, int code, const char *fmt, va_list ap);

/* Prefixes an existing message: "chunk 3: " + old message. Keeps the code. Returns err->code. */
int rf_err_prefix(rf_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void rf_err_clear(rf_err_t *err);

#endif
