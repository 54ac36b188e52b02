/* journal.h — the matcher's write-ahead journal: the source of truth.
 *
 * Every accepted command is appended as one fixed-size record (sequence
 * number, CRC32C, the wire_cmd with its stamped time) and made durable
 * (one O_DIRECT|O_DSYNC write, or write + fdatasync, per batch: group
 * commit) before its reply leaves the process. Records live in segment files DIR/journal-<first seq>.log
 * (20 digits, so names sort by seq).
 *
 * On open the journal checks every record (magic, length, CRC, seq
 * continuity). A bad record at the very end (no good record after it) is a
 * torn tail from a crash: it is reported and cut back to the last whole
 * record. A bad record with good records after it is corruption: open
 * fails (unless repair is asked for, which cuts there too and reports how
 * many good records were dropped).
 *
 * Threading: a journal is used by one thread at a time (the service's
 * journal thread appends; replay runs before that thread starts).
 * journal_record_encode is pure and may run on any thread. */
#ifndef GPUX_JOURNAL_H
#define GPUX_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpux_wire.h"

#define JOURNAL_MAGIC 0x314e524au /* "JRN1" */
#define JOURNAL_MAX_SEGMENTS 65536u

typedef struct journal_record {
    uint32_t magic;    /* JOURNAL_MAGIC */
    uint32_t crc32c;   /* over every byte after this field */
    uint64_t seq;
    uint32_t body_len; /* sizeof(wire_cmd) */
    uint32_t pad;      /* zero */
    wire_cmd cmd;
} journal_record;
_Static_assert(sizeof(journal_record) == 224, "journal record layout");
#define JOURNAL_RECORD_BYTES sizeof(journal_record)

/* What journal_open found and did, for the log. */
typedef struct journal_report {
    uint64_t first_seq;      /* first record on disk (0 = empty) */
    uint64_t last_seq;       /* last good record (0 = empty) */
    uint32_t segments;
    uint64_t cut_bytes;      /* bytes cut from the tail (torn or repaired) */
    uint64_t dropped_records;/* good records dropped by repair */
    uint64_t cut_offset;     /* where it was cut */
    char cut_file[512];      /* segment that was cut, "" if none */
    char cut_reason[200];    /* what was wrong with the first cut record */
} journal_report;

typedef struct journal journal;

/* CRC32C (Castagnoli) of n bytes, continuing from crc (start with 0). */
uint32_t journal_crc32c(uint32_t crc, const void *p, size_t n);

/* Fills rec for (seq, cmd) with magic and CRC. Pure. */
void journal_record_encode(journal_record *rec, uint64_t seq,
                           const wire_cmd *cmd);

/* Checks one record read from disk: magic, length, pad, CRC and that the
 * command decodes. Returns 0 or -1 with a reason. */
int journal_record_check(const journal_record *rec, char *err, size_t errlen);

/* Opens (creating dir's journal if there is none) and verifies it as
 * described above. repair: cut at the first bad record even when good
 * records follow. segment_bytes: roll to a new segment once the current one
 * reaches this size (>= one record). Returns 0 with *out owned by the caller
 * (journal_close), or -1 with a reason (I/O error, corruption). */
int journal_open(journal **out, const char *dir, uint64_t segment_bytes,
                 int repair, journal_report *rep, char *err, size_t errlen);

/* Calls fn for every record with seq > after_seq, in order; stops and
 * returns fn's value when it is not 0. Returns 0 when all were visited,
 * -1 with a reason on I/O error or when after_seq + 1 is not on disk
 * (journal starts later). Before any append. */
typedef int (*journal_visit_fn)(void *ctx, uint64_t seq, const wire_cmd *cmd);
int journal_replay(journal *j, uint64_t after_seq, journal_visit_fn fn,
                   void *ctx, char *err, size_t errlen);

/* Appends n encoded records (contiguous seqs continuing the journal) and
 * makes them durable (write, then fdatasync) before returning. Rolls to a
 * new segment first when the current one is full. Returns 0, or -1 with
 * the OS reason: the caller must then stop without acknowledging. */
int journal_append(journal *j, const journal_record *recs, size_t n,
                   char *err, size_t errlen);

/* Group commit in two steps: journal_write appends records without
 * syncing (several batches may be written back to back; in direct mode
 * they are staged in memory, a full 1 MiB stage is written early),
 * journal_sync makes everything written so far durable (one direct write,
 * or one fdatasync). A segment roll syncs the old segment first. Same
 * errors as journal_append. */
int journal_write(journal *j, const journal_record *recs, size_t n,
                  char *err, size_t errlen);
int journal_sync(journal *j, char *err, size_t errlen);

/* Starts a helper thread that makes one zero-filled spare segment
 * (DIR/journal.spare) ahead of need: at once when the current segment
 * grows by append (a fresh or reopened journal), else once the current
 * segment is half used. A roll renames the spare into place and the
 * journal then overwrites zeros instead of growing the file, which makes
 * each fdatasync much cheaper (no file size to commit); a segment that
 * grows by append is rolled as soon as a spare is ready, and a
 * preallocated one just before a write would run past its zeros. Spares
 * start at 4 MiB and double up to the segment size, so a small journal
 * never writes zeros it does not use. A zero-filled tail is not damage:
 * open treats it as the end of the data. Optional (without it segments
 * grow by append). Returns 0 or -1 with a reason. journal_close stops the
 * thread. */
int journal_start_prealloc(journal *j, char *err, size_t errlen);

/* Writes go O_DIRECT|O_DSYNC by default (one write per group commit,
 * durable when it returns; journal_sync then only writes what is staged),
 * or buffered (pwrite, then fdatasync in journal_sync) when the
 * filesystem refuses O_DIRECT or after journal_set_buffered. Both are
 * equally durable: a record counts as durable only once journal_sync has
 * returned 0. journal_set_buffered: before any write after open (asserted:
 * nothing unsynced); returns 0 or -1 with a reason. */
int journal_set_buffered(journal *j, char *err, size_t errlen);
bool journal_is_direct(const journal *j);

/* Is a spare ready for the next roll? Any thread (an atomic read); for
 * tests and figures. */
bool journal_spare_ready(const journal *j);

/* Last durable seq (0 = empty) and first seq still on disk. */
uint64_t journal_last_seq(const journal *j);
uint64_t journal_first_seq(const journal *j);

/* Deletes whole segments whose records all have seq <= upto_seq (never the
 * current one). Returns the number of files deleted, or -1 on error. */
int journal_prune(journal *j, uint64_t upto_seq, char *err, size_t errlen);

void journal_close(journal *j);

#endif
