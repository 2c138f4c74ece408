/* log.c - the process-wide logger (see log.h).
 *
 * Settings live in atomics so logging threads read them without a lock; rf_log_setup is not meant
 * to race with them, but a torn read could at worst log one record in the old form. Each record is
 * formatted on the caller's stack and written with one write(2): with O_APPEND or a pipe under
 * PIPE_BUF, records from several threads never interleave.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "rftime.h"

#define RF_LOG_MSG_MAX 4096        /* formatted message bytes kept; longer ones are cut */
#define RF_LOG_COMPONENT_MAX 64    /* component bytes kept */
#define RF_LOG_RECORD_MAX 16384    /* one record, escaping included */

static atomic_int s_level = RF_LOG_INFO;
static atomic_int s_json = 0;
static atomic_int s_fd = 2;
static atomic_int s_ready = 0; /* 0 until configured (explicitly or from the environment) */

static const char *const s_level_names[] = {"debug", "info", "warn", "error", "off"};
static const char *const s_level_text[] = {"DEBUG", "INFO ", "WARN ", "ERROR", "OFF  "};

int rf_log_level_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i <= RF_LOG_OFF; i++)
        if (strcasecmp(name, s_level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return RF_LOG_WARN;
    return -1;
}

/* The environment wins over the level a program passes: it is how an operator turns on debug
 * logging without touching a config. $REELFARM_LOG_FORMAT only replaces AUTO, so a program that
 * asks for a form explicitly (tests, `--log-format`) gets it. */
void rf_log_setup(rf_log_level_t level, rf_log_format_t format, int fd)
{
    const char *env_level = getenv("REELFARM_LOG_LEVEL");
    int parsed = rf_log_level_parse(env_level);
    if (parsed >= 0)
        level = (rf_log_level_t)parsed;
    if (level < RF_LOG_DEBUG || level > RF_LOG_OFF)
        level = RF_LOG_INFO;

    if (format == RF_LOG_AUTO) {
        const char *env_format = getenv("REELFARM_LOG_FORMAT");
        if (env_format != NULL && strcasecmp(env_format, "json") == 0)
            format = RF_LOG_JSON;
        else if (env_format != NULL && strcasecmp(env_format, "text") == 0)
            format = RF_LOG_TEXT;
    }
    if (fd < 0)
        fd = 2;
    if (format == RF_LOG_AUTO)
        format = isatty(fd) ? RF_LOG_TEXT : RF_LOG_JSON;

    atomic_store(&s_level, (int)level);
    atomic_store(&s_json, format == RF_LOG_JSON);
    atomic_store(&s_fd, fd);
    atomic_store(&s_ready, 1);
}

static void s_ensure_setup(void)
{
    /* Two threads may both configure from the environment here; they compute the same result. */
    if (!atomic_load(&s_ready))
        rf_log_setup(RF_LOG_INFO, RF_LOG_AUTO, 2);
}

rf_log_level_t rf_log_level(void)
{
    s_ensure_setup();
    return (rf_log_level_t)atomic_load(&s_level);
}

bool rf_log_enabled(rf_log_level_t level)
{
    s_ensure_setup();
    return level < RF_LOG_OFF && (int)level >= atomic_load(&s_level);
}

/* A small append-only buffer that never overflows: once full, further appends are ignored. */
typedef struct s_buf {
    char *data;
    size_t len;
    size_t cap; /* bytes usable, one kept back for the newline */
} s_buf_t;

static void s_put(s_buf_t *b, const char *s, size_t n)
{
    if (n > b->cap - b->len)
        n = b->cap - b->len;
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void s_puts(s_buf_t *b, const char *s)
{
    s_put(b, s, strlen(s));
}

/* JSON string escaping (RFC 8259): quote, backslash and control characters. Bytes >= 0x80 pass
 * through unchanged. An escape is written whole or not at all, so a cut record stays valid JSON
 * up to the cut and the closing quote we add. */
static void s_put_json_string(s_buf_t *b, const char *s, size_t reserve)
{
    s_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        char esc[8];
        size_t n;
        switch (*p) {
        case '"': n = (size_t)snprintf(esc, sizeof esc, "\\\""); break;
        case '\\': n = (size_t)snprintf(esc, sizeof esc, "\\\\"); break;
        case '\n': n = (size_t)snprintf(esc, sizeof esc, "\\n"); break;
        case '\r': n = (size_t)snprintf(esc, sizeof esc, "\\r"); break;
        case '\t': n = (size_t)snprintf(esc, sizeof esc, "\\t"); break;
        case '\b': n = (size_t)snprintf(esc, sizeof esc, "\\b"); break;
        case '\f': n = (size_t)snprintf(esc, sizeof esc, "\\f"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
            else {
                esc[0] = (char)*p;
                n = 1;
            }
        }
        if (b->len + n + reserve > b->cap)
            break;
        s_put(b, esc, n);
    }
    s_puts(b, "\"");
}

static void s_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere to report a failing log fd */
        }
        data += n;
        len -= (size_t)n;
    }
}

static void s_logv(rf_log_level_t level, const char *component, const rf_log_ctx_t *ctx,
                   const char *fmt, va_list ap)
{
    char msg[RF_LOG_MSG_MAX];
    int mlen = vsnprintf(msg, sizeof msg, fmt, ap);
    if (mlen < 0)
        snprintf(msg, sizeof msg, "(unformattable log message)");
    else if ((size_t)mlen >= sizeof msg)
        memcpy(msg + sizeof msg - 4, "...", 4); /* mark the cut */

    char comp[RF_LOG_COMPONENT_MAX];
    snprintf(comp, sizeof comp, "%s", component != NULL ? component : "-");

    char ts[32];
    rf_wall_format(rf_wall_ms(), ts, sizeof ts);

    char record[RF_LOG_RECORD_MAX];
    char num[32];
    s_buf_t b = {.data = record, .len = 0, .cap = sizeof record - 1};
    if (atomic_load(&s_json)) {
        s_puts(&b, "{\"ts\":\"");
        s_puts(&b, ts);
        s_puts(&b, "\",\"level\":\"");
        s_puts(&b, s_level_names[level]);
        s_puts(&b, "\",\"component\":");
        s_put_json_string(&b, comp, 16);
        if (ctx && ctx->job) {
            s_puts(&b, ",\"job\":");
            s_put_json_string(&b, ctx->job, 16);
        }
        if (ctx && ctx->chunk >= 0) {
            snprintf(num, sizeof num, ",\"chunk\":%lld", (long long)ctx->chunk);
            s_puts(&b, num);
        }
        if (ctx && ctx->attempt >= 0) {
            snprintf(num, sizeof num, ",\"attempt\":%lld", (long long)ctx->attempt);
            s_puts(&b, num);
        }
        if (ctx && ctx->worker) {
            s_puts(&b, ",\"worker\":");
            s_put_json_string(&b, ctx->worker, 16);
        }
        s_puts(&b, ",\"msg\":");
        s_put_json_string(&b, msg, 2); /* keep room for the closing quote and brace */
        s_puts(&b, "}");
    } else {
        s_puts(&b, ts);
        s_puts(&b, " ");
        s_puts(&b, s_level_text[level]);
        s_puts(&b, " ");
        s_puts(&b, comp);
        s_puts(&b, ": ");
        if (ctx && (ctx->job || ctx->chunk >= 0 || ctx->attempt >= 0 || ctx->worker)) {
            const char *sep = "[";
            if (ctx->job) {
                s_puts(&b, "[job=");
                s_puts(&b, ctx->job);
                sep = " ";
            }
            if (ctx->chunk >= 0) {
                snprintf(num, sizeof num, "%schunk=%lld", sep, (long long)ctx->chunk);
                s_puts(&b, num);
                sep = " ";
            }
            if (ctx->attempt >= 0) {
                snprintf(num, sizeof num, "%sattempt=%lld", sep, (long long)ctx->attempt);
                s_puts(&b, num);
                sep = " ";
            }
            if (ctx->worker) {
                s_puts(&b, sep);
                s_puts(&b, "worker=");
                s_puts(&b, ctx->worker);
            }
            s_puts(&b, "] ");
        }
        s_puts(&b, msg);
    }
    record[b.len++] = '\n'; /* cap kept one byte back for it */
    s_write_all(atomic_load(&s_fd), record, b.len);
}

void rf_log(rf_log_level_t level, const char *component, const char *fmt, ...)
{
    if (!rf_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    s_logv(level, component, NULL, fmt, ap);
    va_end(ap);
}

void rf_log_ctx(rf_log_level_t level, const char *component, const rf_log_ctx_t *ctx,
                const char *fmt, ...)
{
    if (!rf_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    s_logv(level, component, ctx, fmt, ap);
    va_end(ap);
}
