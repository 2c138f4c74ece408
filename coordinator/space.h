/* space.h - free space in the coordinator's state folder (DESIGN §7; docs/RELIABILITY.md).
 *
 * The coordinator refuses new jobs while the filesystem that holds state.db and blobs/ has less
 * than RF_STATE_MIN_FREE bytes free, so a disk that fills up stops new work with a clear error
 * instead of failing writes halfway through a job. */
#ifndef RF_SPACE_H
#define RF_SPACE_H

#include <stdint.h>

#include "error.h"

#define RF_STATE_MIN_FREE ((uint64_t)32 * 1024 * 1024)

/* Bytes an unprivileged writer may still use in the filesystem holding path (statvfs f_bavail *
 * f_frsize); -1 when statvfs fails. */
int64_t rf_space_free(const char *path);

/* 0 when at least min bytes are free under path. Otherwise RF_EIO (or what statvfs said) with
 * a message for the user naming the folder, what is free and what is needed. */
int rf_space_check(const char *path, uint64_t min, rf_err_t *err);

#endif
