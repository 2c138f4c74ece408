/* log.h - process-wide logger: human text on a TTY, JSON lines otherwise (for log collectors).
 *
 * The logger is the only global mutable state in reelfarm. It is thread-safe: every record is
 * formatted into one buffer and written with one write(2) to stderr (or the configured fd), so
 * records from several threads never interleave. Records under the level are dropped before
 * formatting, so debug logging costs a compare when disabled.
 *
 * Text form:  2026-11-27T10:00:00.123Z INFO  coordinator: job 'scene-12' planned 14 chunks
 * JSON form:  {"ts":"2026-11-27T10:00:00.123Z","level":"info","component":"coordinator","msg":"..."}
 *
 * A record about a job, a chunk, an attempt or a worker says so in fields (rf_log_ctx), so a log
 * collector can select "everything about chunk 12 of job j-3f..." without parsing messages:
 *   {"ts":...,"level":"warn","component":"coordinator","job":"j-3f","chunk":12,"attempt":2,
 *    "worker":"gpu-07","msg":"chunk 12 attempt 2 on 'gpu-07' failed: ..."}
 * Text form puts them before the message: "... coordinator: [job=j-3f chunk=12 ...] chunk 12 ...".
 */
#ifndef RF_LOG_H
#define RF_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum rf_log_level {
    RF_LOG_DEBUG = 0,
    RF_LOG_INFO = 1,
    RF_LOG_WARN = 2,
    RF_LOG_ERROR = 3,
    RF_LOG_OFF = 4,
} rf_log_level_t;

typedef enum rf_log_format {
    RF_LOG_AUTO = 0, /* text when the fd is a TTY, JSON lines otherwise */
    RF_LOG_TEXT = 1,
    RF_LOG_JSON = 2,
} rf_log_format_t;

/* Configures the logger. Safe to call again; not meant to race with logging threads.
 * Defaults: level INFO (or $REELFARM_LOG_LEVEL: debug|info|warn|error|off), format AUTO
 * (or $REELFARM_LOG_FORMAT: text|json), fd 2. */
void rf_log_setup(rf_log_level_t level, rf_log_format_t format, int fd);

/* Parses "debug", "info", "warn", "error", "off". Returns -1 when unknown. */
int rf_log_level_parse(const char *name);

rf_log_level_t rf_log_level(void);
bool rf_log_enabled(rf_log_level_t level);

/* Writes one record. component is a short word ("coordinator", "worker", "slot 2"). */
void rf_log(rf_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What a record is about. Unset members are left out of the record. */
typedef struct rf_log_ctx {
    const char *job;    /* job id, or NULL */
    int64_t chunk;      /* chunk index, or -1 */
    int64_t attempt;    /* attempt number, or -1 */
    const char *worker; /* worker name, or NULL */
} rf_log_ctx_t;

#define RF_LOG_CTX(job, chunk, attempt, worker)                                                  \
    (&(const rf_log_ctx_t){(job), (int64_t)(chunk), (int64_t)(attempt), (worker)})

/* rf_log with the fields of ctx (NULL = none) on the record. */
void rf_log_ctx(rf_log_level_t level, const char *component, const rf_log_ctx_t *ctx,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define RF_DEBUG(comp, ...) rf_log(RF_LOG_DEBUG, comp, __VA_ARGS__)
#define RF_INFO(comp, ...) rf_log(RF_LOG_INFO, comp, __VA_ARGS__)
#define RF_WARN(comp, ...) rf_log(RF_LOG_WARN, comp, __VA_ARGS__)
#define RF_ERROR(comp, ...) rf_log(RF_LOG_ERROR, comp, __VA_ARGS__)

#endif
