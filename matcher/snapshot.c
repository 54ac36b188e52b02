/* snapshot.c — atomic, checksummed snapshot files (see snapshot.h).
 *
 * Why temp + fsync + rename + dir fsync: a crash at any point leaves either
 * the old set of snapshots or the new one, never a half file under a real
 * name. Why a CRC on top: a disk that returns garbage must make us fall back
 * to an older snapshot, not load a wrong book. */
#include "matcher/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpux_assert.h"
#include "gpux_err.h"
#include "matcher/journal.h"

#define SNAPSHOT_MAX_BYTES (64ull << 30) /* sanity bound for a header */


static void snap_path(const char *dir, uint64_t seq, const char *suffix,
                      char *out, size_t n)
{
    snprintf(out, n, "%s/snapshot-%020llu.snap%s", dir,
             (unsigned long long)seq, suffix);
}

static uint32_t snap_crc(const snapshot_header *h, const uint8_t *engine,
                         const uint8_t *service)
{
    size_t off = offsetof(snapshot_header, seq);
    uint32_t c = journal_crc32c(0, (const uint8_t *)h + off, sizeof *h - off);
    c = journal_crc32c(c, engine, h->engine_bytes);
    return journal_crc32c(c, service, h->service_bytes);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int snapshot_write(const char *dir, snapshot_header *hdr, const uint8_t *engine,
                   const uint8_t *service, char *err, size_t errlen)
{
    GPUX_ASSERT(hdr->seq > 0);
    hdr->magic = SNAPSHOT_MAGIC;
    hdr->crc32c = snap_crc(hdr, engine, service);
    char tmp[512], path[512];
    snap_path(dir, hdr->seq, ".tmp", tmp, sizeof tmp);
    snap_path(dir, hdr->seq, "", path, sizeof path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0)
        return gpux_errf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
    if (write_all(fd, (const uint8_t *)hdr, sizeof *hdr) < 0 ||
        write_all(fd, engine, hdr->engine_bytes) < 0 ||
        write_all(fd, service, hdr->service_bytes) < 0 || fsync(fd) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return gpux_errf(err, errlen, "cannot write %s: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return gpux_errf(err, errlen, "cannot rename %s: %s", tmp, strerror(e));
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0 || fsync(dfd) < 0) {
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        return gpux_errf(err, errlen, "fsync %s: %s", dir, strerror(e));
    }
    close(dfd);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int snapshot_list(const char *dir, uint64_t *seqs, size_t cap, char *err,
                  size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return gpux_errf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        unsigned long long seq;
        char tail[8];
        if (strlen(de->d_name) != 9 + 20 + 5 ||
            sscanf(de->d_name, "snapshot-%20llu%5s", &seq, tail) != 2 ||
            strcmp(tail, ".snap") != 0 || seq == 0)
            continue;
        if (n == cap) {
            closedir(d);
            return gpux_errf(err, errlen, "more than %zu snapshots in %s", cap, dir);
        }
        seqs[n++] = seq;
    }
    closedir(d);
    qsort(seqs, n, sizeof seqs[0], cmp_u64);
    return (int)n;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int open_header(const char *dir, uint64_t seq, snapshot_header *h,
                       char *path, size_t pathlen, char *err, size_t errlen)
{
    snap_path(dir, seq, "", path, pathlen);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return gpux_errf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || read_all(fd, (uint8_t *)h, sizeof *h) < 0) {
        close(fd);
        return gpux_errf(err, errlen, "%s: truncated header", path);
    }
    if (h->magic != SNAPSHOT_MAGIC || h->seq != seq ||
        h->engine_bytes > SNAPSHOT_MAX_BYTES ||
        h->service_bytes > SNAPSHOT_MAX_BYTES ||
        (uint64_t)st.st_size != sizeof *h + h->engine_bytes + h->service_bytes) {
        close(fd);
        return gpux_errf(err, errlen, "%s: not a whole snapshot (bad magic, seq or size)",
                    path);
    }
    return fd;
}

int snapshot_read_header(const char *dir, uint64_t seq, snapshot_header *out,
                         char *err, size_t errlen)
{
    char path[512];
    int fd = open_header(dir, seq, out, path, sizeof path, err, errlen);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

int snapshot_read(const char *dir, uint64_t seq, snapshot_data *out,
                  char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char path[512];
    int fd = open_header(dir, seq, &out->hdr, path, sizeof path, err, errlen);
    if (fd < 0)
        return -1;
    size_t n = out->hdr.engine_bytes + out->hdr.service_bytes;
    out->buf = malloc(n ? n : 1);
    if (!out->buf) {
        close(fd);
        return gpux_errf(err, errlen, "%s: out of memory for %zu bytes", path, n);
    }
    if (read_all(fd, out->buf, n) < 0) {
        close(fd);
        snapshot_free(out);
        return gpux_errf(err, errlen, "%s: short read", path);
    }
    close(fd);
    out->engine = out->buf;
    out->service = out->buf + out->hdr.engine_bytes;
    if (snap_crc(&out->hdr, out->engine, out->service) != out->hdr.crc32c) {
        snapshot_free(out);
        return gpux_errf(err, errlen, "%s: checksum mismatch", path);
    }
    return 0;
}

void snapshot_free(snapshot_data *d)
{
    free(d->buf);
    d->buf = NULL;
    d->engine = d->service = NULL;
}

int snapshot_remove(const char *dir, uint64_t seq)
{
    char path[512];
    snap_path(dir, seq, "", path, sizeof path);
    return unlink(path);
}
