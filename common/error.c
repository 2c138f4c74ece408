/* error.c - error codes and the messages that go with them (see error.h). */
#include "error.h"

#include <stdio.h>
#include <string.h>

const char *rf_strerror(int code)
{
    switch (code) {
    case RF_OK: return "success";
    case RF_EINVAL: return "invalid argument";
    case RF_ENOMEM: return "out of memory or over a byte budget";
    case RF_EIO: return "input/output error";
    case RF_ENOENT: return "not found";
    case RF_EPROTO: return "malformed or unexpected message";
    case RF_ETOOBIG: return "over a size limit";
    case RF_EMEDIA: return "unsupported or corrupt media";
    case RF_ECONFIG: return "invalid configuration";
    case RF_ETIMEDOUT: return "timed out";
    case RF_ECANCELED: return "cancelled";
    case RF_EUNAVAIL: return "not reachable or not available";
    case RF_EVERIFY: return "verification failed";
    case RF_EDB: return "state database error";
    case RF_EAGAIN: return "try again later";
    case RF_EEXIST: return "already exists";
    case RF_EPERM: return "not allowed";
    default: return "unknown error";
    }
}

int rf_err_vset(rf_err_t *err, int code, const char *fmt, va_list ap)
{
    if (err == NULL)
        return code;
    err->code = code;
    err->msg[0] = '\0';
    if (fmt != NULL)
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    /* Messages are one line: a newline from a peer's text would break log records. */
    for (char *p = err->msg; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return code;
}

int rf_err_set(rf_err_t *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = rf_err_vset(err, code, fmt, ap);
    va_end(ap);
    return rc;
}

int rf_err_prefix(rf_err_t *err, const char *fmt, ...)
{
    if (err == NULL)
        return RF_EINVAL;
    char prefix[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Joined by hand: the two parts together may be longer than the message, and the old text
     * is cut at the end, never the prefix. */
    size_t plen = strlen(prefix);
    size_t mlen = strlen(err->msg);
    if (mlen > sizeof err->msg - 1 - plen)
        mlen = sizeof err->msg - 1 - plen;
    memmove(err->msg + plen, err->msg, mlen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen + mlen] = '\0';
    return err->code;
}

void rf_err_clear(rf_err_t *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}
