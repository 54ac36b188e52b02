/* snapshot.h — snapshot files on disk around matcher_save / matcher_load.
 *
 * A snapshot is the whole matcher service state at one journal sequence:
 * the engine's bytes (matcher_save) and the service's bytes (names, keys,
 * order history, fills), with the engine's state hash so a loaded snapshot
 * can be verified, and the feed position the ledger had reached (so the
 * journal it still needs is kept). File DIR/snapshot-<seq, 20 digits>.snap,
 * written to a temp name, fsynced, renamed, directory fsynced: a snapshot
 * file either exists whole or not at all. A CRC32C covers the header and
 * both blobs.
 *
 * Threading: functions are independent; different files may be written and
 * read from different threads. */
#ifndef GPUX_SNAPSHOT_H
#define GPUX_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_MAGIC 0x31504e53u /* "SNP1" */
#define SNAPSHOT_MAX 1024u         /* snapshot files considered in a dir */

typedef struct snapshot_header {
    uint32_t magic;
    uint32_t crc32c;        /* over the rest of the header and both blobs */
    uint64_t seq;           /* last command included */
    uint64_t state_hash;    /* matcher_state_hash at seq */
    uint64_t ledger_seq;    /* highest seq the feed consumer had passed */
    uint64_t engine_bytes;
    uint64_t service_bytes;
} snapshot_header;
_Static_assert(sizeof(snapshot_header) == 48, "snapshot header layout");

/* A snapshot read into memory: one malloc'd buffer holding both blobs. */
typedef struct snapshot_data {
    snapshot_header hdr;
    uint8_t *buf;              /* free with snapshot_free */
    const uint8_t *engine;     /* hdr.engine_bytes */
    const uint8_t *service;    /* hdr.service_bytes */
} snapshot_data;

/* Writes the snapshot for hdr->seq atomically (see above); fills the magic
 * and CRC. Returns 0 or -1 with the OS reason. */
int snapshot_write(const char *dir, snapshot_header *hdr, const uint8_t *engine,
                   const uint8_t *service, char *err, size_t errlen);

/* Sequences of the snapshot files in dir, ascending, at most cap. Returns
 * the count, or -1 with a reason. */
int snapshot_list(const char *dir, uint64_t *seqs, size_t cap, char *err,
                  size_t errlen);

/* Reads and checks (magic, sizes, CRC) the snapshot for seq. Returns 0
 * with *out owned by the caller, or -1 with a reason. */
int snapshot_read(const char *dir, uint64_t seq, snapshot_data *out,
                  char *err, size_t errlen);

/* Reads only the header (magic checked, CRC not). */
int snapshot_read_header(const char *dir, uint64_t seq, snapshot_header *out,
                         char *err, size_t errlen);

void snapshot_free(snapshot_data *d);

/* Deletes the snapshot file for seq. Returns 0 or -1. */
int snapshot_remove(const char *dir, uint64_t seq);

#endif
