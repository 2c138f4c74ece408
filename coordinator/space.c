/* space.c - free space in the coordinator's state folder (see space.h). */
#include "space.h"

#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

int64_t rf_space_free(const char *path)
{
    struct statvfs vfs;
    if (statvfs(path, &vfs) != 0)
        return -1;
    return (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
}

int rf_space_check(const char *path, uint64_t min, rf_err_t *err)
{
    int64_t avail = rf_space_free(path);
    if (avail < 0)
        return rf_err_set(err, RF_EIO, "state folder '%s': cannot read its free space: %s", path,
                          strerror(errno));
    if ((uint64_t)avail < min)
        return rf_err_set(err, RF_EIO,
                          "the coordinator's disk is full: its state folder '%s' has %.1f MiB free "
                          "and needs %.0f MiB; new jobs are refused until space is freed (jobs "
                          "already accepted are kept and go on when it is)",
                          path, (double)avail / 1048576.0, (double)min / 1048576.0);
    return 0;
}
