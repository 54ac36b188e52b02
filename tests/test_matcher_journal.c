/* test_matcher_journal.c — the journal and snapshot files on a real disk:
 * records come back as written, across segments; a torn or corrupt tail is
 * detected and cut back to the last whole record; corruption followed by
 * good records refuses to open (or is cut with --repair); snapshots are
 * atomic and a damaged one is detected. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "matcher/journal.h"
#include "matcher/snapshot.h"

typedef struct fx {
    char dir[256];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/gpux-jtest-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static wire_cmd cmd_for(uint64_t seq)
{
    wire_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_DEPOSIT;
    c.account = (uint32_t)(seq % 7 + 1);
    c.amount_micros = (int64_t)seq * 1000;
    c.ts_us = (int64_t)seq;
    return c;
}

/* Appends records first..last in batches of `per`. */
static void append_range(journal *j, uint64_t first, uint64_t last, size_t per)
{
    journal_record *recs = calloc(per, sizeof *recs);
    char err[256];
    for (uint64_t s = first; s <= last;) {
        size_t n = 0;
        while (n < per && s <= last) {
            wire_cmd c = cmd_for(s);
            journal_record_encode(&recs[n++], s++, &c);
        }
        assert_int_equal(journal_append(j, recs, n, err, sizeof err), 0);
    }
    free(recs);
}

typedef struct visit {
    uint64_t next;
    uint64_t count;
} visit;

static int check_visit(void *ctx, uint64_t seq, const wire_cmd *c)
{
    visit *v = ctx;
    wire_cmd want = cmd_for(seq);
    if (seq != v->next || memcmp(c, &want, sizeof want) != 0)
        return 7;
    v->next++;
    v->count++;
    return 0;
}

static journal *reopen(fx *f, int repair, journal_report *rep, int expect_ok)
{
    journal *j = NULL;
    char err[512];
    int rc = journal_open(&j, f->dir, 64 * 1024, repair, rep, err, sizeof err);
    if (expect_ok) {
        if (rc != 0)
            fail_msg("journal_open: %s", err);
    } else {
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err, "corrupt"));
    }
    return j;
}

static char *last_segment(fx *f, char *out, size_t n)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls '%s'/journal-*.log | tail -1", f->dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(fgets(out, (int)n, p));
    pclose(p);
    out[strcspn(out, "\n")] = 0;
    return out;
}

static void test_round_trip_segments(void **state)
{
    fx *f = *state;
    journal_report rep;
    journal *j = reopen(f, 0, &rep, 1);
    assert_int_equal(rep.last_seq, 0);
    append_range(j, 1, 2000, 97); /* 64 KiB segments: several files */
    journal_close(j);
    j = reopen(f, 0, &rep, 1);
    assert_int_equal(rep.first_seq, 1);
    assert_int_equal(rep.last_seq, 2000);
    assert_true(rep.segments > 3);
    assert_int_equal(rep.cut_bytes, 0);
    visit v = {.next = 1};
    char err[256];
    assert_int_equal(journal_replay(j, 0, check_visit, &v, err, sizeof err), 0);
    assert_int_equal(v.count, 2000);
    v = (visit){.next = 1501};
    assert_int_equal(journal_replay(j, 1500, check_visit, &v, err, sizeof err), 0);
    assert_int_equal(v.count, 500);
    /* prune drops whole old segments only, and replay before them fails */
    int removed = journal_prune(j, 1000, err, sizeof err);
    assert_true(removed > 0);
    assert_true(journal_first_seq(j) <= 1001);
    assert_true(journal_first_seq(j) > 1);
    v = (visit){.next = 1001};
    assert_int_equal(journal_replay(j, 1000, check_visit, &v, err, sizeof err), 0);
    assert_int_equal(journal_replay(j, 0, check_visit, &v, err, sizeof err), -1);
    journal_close(j);
}

static void test_torn_tail_cut(void **state)
{
    fx *f = *state;
    journal_report rep;
    journal *j = reopen(f, 0, &rep, 1);
    append_range(j, 1, 100, 10);
    journal_close(j);
    char path[512];
    last_segment(f, path, sizeof path);
    /* a crash in the middle of writing record 100 */
    assert_int_equal(truncate(path, 100 * JOURNAL_RECORD_BYTES - 50), 0);
    j = reopen(f, 0, &rep, 1);
    assert_int_equal(rep.last_seq, 99);
    assert_int_equal(rep.cut_bytes, JOURNAL_RECORD_BYTES - 50);
    assert_non_null(strstr(rep.cut_reason, "torn tail"));
    /* appending continues where the good records end */
    append_range(j, 100, 120, 7);
    journal_close(j);
    j = reopen(f, 0, &rep, 1);
    assert_int_equal(rep.last_seq, 120);
    assert_int_equal(rep.cut_bytes, 0);
    visit v = {.next = 1};
    char err[256];
    assert_int_equal(journal_replay(j, 0, check_visit, &v, err, sizeof err), 0);
    assert_int_equal(v.count, 120);
    journal_close(j);
}

/* The end of the records in a segment: the first slot without the
 * record magic (direct writes pad the file with zeros to a whole block,
 * and a preallocated segment is zeros after its data). */
static off_t data_end(const char *path)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    off_t off = 0;
    for (;; off += JOURNAL_RECORD_BYTES) {
        uint32_t magic = 0;
        if (pread(fd, &magic, 4, off) != 4 || magic != JOURNAL_MAGIC)
            break;
    }
    close(fd);
    return off;
}

static off_t size_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void test_corrupt_last_record_and_zero_tail(void **state)
{
    fx *f = *state;
    journal_report rep;
    journal *j = reopen(f, 0, &rep, 1);
    append_range(j, 1, 50, 50);
    journal_close(j);
    char path[512];
    last_segment(f, path, sizeof path);
    flip_byte(path, 49 * JOURNAL_RECORD_BYTES + 60); /* inside record 50 */
    /* and a preallocated-looking zero tail after it */
    int fd = open(path, O_WRONLY | O_APPEND);
    uint8_t zeros[3 * JOURNAL_RECORD_BYTES] = {0};
    assert_int_equal(write(fd, zeros, sizeof zeros), (ssize_t)sizeof zeros);
    close(fd);
    off_t before = size_of(path);
    j = reopen(f, 0, &rep, 1);
    assert_int_equal(rep.last_seq, 49);
    assert_int_equal(rep.cut_bytes, before - 49 * JOURNAL_RECORD_BYTES);
    assert_non_null(strstr(rep.cut_reason, "checksum"));
    journal_close(j);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 49 * JOURNAL_RECORD_BYTES);
}

static void test_corruption_in_the_middle(void **state)
{
    fx *f = *state;
    journal_report rep;
    journal *j = reopen(f, 0, &rep, 1);
    append_range(j, 1, 60, 60);
    journal_close(j);
    char path[512];
    last_segment(f, path, sizeof path);
    flip_byte(path, 20 * JOURNAL_RECORD_BYTES + 100); /* record 21 */
    /* good records follow: not a torn tail, refuse */
    off_t before = size_of(path);
    assert_int_equal(data_end(path), 60 * JOURNAL_RECORD_BYTES);
    reopen(f, 0, &rep, 0);
    assert_int_equal(size_of(path), before); /* untouched */
    /* the operator asks for repair: cut at the bad record */
    j = reopen(f, 1, &rep, 1);
    assert_int_equal(rep.last_seq, 20);
    assert_int_equal(rep.cut_bytes, before - 20 * JOURNAL_RECORD_BYTES);
    journal_close(j);
}

/* Corruption in a segment that is not the last: refused; repair cuts
 * there and drops every later segment (this used to re-check the cut
 * segment as if it were the next one and fail with a "gap"). */
static void test_repair_in_an_earlier_segment(void **state)
{
    fx *f = *state;
    journal_report rep;
    journal *j = reopen(f, 0, &rep, 1);
    append_range(j, 1, 1000, 97); /* 64 KiB segments: several files */
    journal_close(j);
    char path[512];
    snprintf(path, sizeof path, "%s/journal-%020d.log", f->dir, 1);
    flip_byte(path, 20 * JOURNAL_RECORD_BYTES + 100); /* record 21 */
    reopen(f, 0, &rep, 0);
    j = reopen(f, 1, &rep, 1);
    assert_int_equal(rep.last_seq, 20);
    assert_int_equal(rep.segments, 1);
    assert_true(rep.dropped_records > 0);
    char err[256];
    visit v = {.next = 1};
    assert_int_equal(journal_replay(j, 0, check_visit, &v, err, sizeof err), 0);
    assert_int_equal(v.count, 20);
    append_range(j, 21, 30, 10); /* and the journal goes on from there */
    journal_close(j);
    j = reopen(f, 0, &rep, 1);
    assert_int_equal(rep.last_seq, 30);
    journal_close(j);
}

/* Direct writes rewrite the block holding the data end: records written
 * before (in this run or an earlier one) come back unchanged, whatever
 * block boundary the data end falls on. */
static void test_direct_partial_blocks(void **state)
{
    fx *f = *state;
    journal_report rep;
    char err[256];
    uint64_t last = 0;
    /* 7 records = 1568 bytes: reopens land at many offsets in a block */
    for (int round = 0; round < 12; round++) {
        journal *j = reopen(f, 0, &rep, 1);
        assert_int_equal(rep.last_seq, last);
        append_range(j, last + 1, last + 7, round % 2 ? 3 : 7);
        last += 7;
        journal_close(j);
    }
    journal *j = reopen(f, 0, &rep, 1);
    assert_int_equal(rep.last_seq, last);
    assert_int_equal(rep.cut_bytes, 0);
    visit v = {.next = 1};
    assert_int_equal(journal_replay(j, 0, check_visit, &v, err, sizeof err), 0);
    assert_int_equal(v.count, last);
    journal_close(j);
}

/* The buffered way (pwrite + fdatasync): records come back across
 * segments, and files hold exactly the records (no block padding). */
static void test_buffered_mode(void **state)
{
    fx *f = *state;
    journal_report rep;
    char err[256];
    journal *j = reopen(f, 0, &rep, 1);
    assert_int_equal(journal_set_buffered(j, err, sizeof err), 0);
    assert_false(journal_is_direct(j));
    append_range(j, 1, 700, 97); /* 64 KiB segments: several files */
    journal_close(j);
    j = reopen(f, 0, &rep, 1);
    assert_int_equal(journal_set_buffered(j, err, sizeof err), 0);
    assert_int_equal(rep.last_seq, 700);
    assert_true(rep.segments > 1);
    visit v = {.next = 1};
    assert_int_equal(journal_replay(j, 0, check_visit, &v, err, sizeof err), 0);
    assert_int_equal(v.count, 700);
    append_range(j, 701, 750, 50); /* appends after a reopen */
    journal_close(j);
    char path[512];
    last_segment(f, path, sizeof path);
    assert_int_equal(size_of(path) % JOURNAL_RECORD_BYTES, 0);
    assert_int_equal(size_of(path), data_end(path));
    j = reopen(f, 0, &rep, 1);
    assert_int_equal(rep.last_seq, 750);
    assert_int_equal(rep.cut_bytes, 0);
    journal_close(j);
}

static void test_seq_gap_detected(void **state)
{
    fx *f = *state;
    journal_report rep;
    journal *j = reopen(f, 0, &rep, 1);
    append_range(j, 1, 10, 10);
    journal_close(j);
    /* a record with a valid checksum but the wrong seq at the end */
    char path[512];
    last_segment(f, path, sizeof path);
    journal_record r;
    wire_cmd c = cmd_for(12);
    journal_record_encode(&r, 12, &c);
    int fd = open(path, O_WRONLY);
    assert_int_equal(pwrite(fd, &r, sizeof r, data_end(path)), (ssize_t)sizeof r);
    close(fd);
    j = reopen(f, 0, &rep, 1);
    assert_int_equal(rep.last_seq, 10);
    assert_non_null(strstr(rep.cut_reason, "expected"));
    journal_close(j);
}

static off_t file_size(fx *f, uint64_t first)
{
    char path[512];
    snprintf(path, sizeof path, "%s/journal-%020llu.log", f->dir, (unsigned long long)first);
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return st.st_size;
}

/* Waits (bounded) until j has a spare ready; returns its size. */
static off_t wait_spare(fx *f, journal *j)
{
    for (int i = 0; i < 20000 && !journal_spare_ready(j); i++)
        usleep(1000);
    assert_true(journal_spare_ready(j));
    char spare[400];
    snprintf(spare, sizeof spare, "%s/journal.spare", f->dir);
    struct stat st;
    assert_int_equal(stat(spare, &st), 0);
    return st.st_size;
}

static void test_preallocated_segments(void **state)
{
    fx *f = *state;
    journal_report rep;
    char err[256];
    journal *j = reopen(f, 0, &rep, 1);
    assert_int_equal(journal_start_prealloc(j, err, sizeof err), 0);
    /* an empty journal gets a spare at once (waited for, bounded): the
     * first segment is a preallocated one; half of it in, the helper makes
     * the next spare, which the next roll uses */
    wait_spare(f, j);
    append_range(j, 1, 200, 50);
    wait_spare(f, j);
    append_range(j, 201, 1000, 33);
    journal_close(j);
    struct stat st;
    /* the current segment is zero-filled past its data: not damage */
    char path[512];
    last_segment(f, path, sizeof path);
    assert_int_equal(stat(path, &st), 0);
    j = reopen(f, 0, &rep, 1);
    assert_int_equal(rep.last_seq, 1000);
    assert_int_equal(rep.cut_bytes, 0);
    visit v = {.next = 1};
    assert_int_equal(journal_replay(j, 0, check_visit, &v, err, sizeof err), 0);
    assert_int_equal(v.count, 1000);
    /* appending continues inside the zeros, and a torn record there is
     * still cut */
    append_range(j, 1001, 1010, 10);
    journal_close(j);
    last_segment(f, path, sizeof path);
    int fd = open(path, O_RDWR);
    journal_record r;
    wire_cmd c = cmd_for(1011);
    journal_record_encode(&r, 1011, &c);
    /* find the data end: first zero slot */
    off_t off = 0;
    for (;; off += JOURNAL_RECORD_BYTES) {
        uint32_t magic = 0;
        if (pread(fd, &magic, 4, off) != 4 || magic == 0)
            break; /* the end of the file, or of the data in a preallocated one */
    }
    assert_int_equal(pwrite(fd, &r, 50, off), 50); /* a torn record: the rest is zeros */
    close(fd);
    j = reopen(f, 0, &rep, 1);
    assert_int_equal(rep.last_seq, 1010);
    assert_true(rep.cut_bytes > 0);
    v = (visit){.next = 1};
    assert_int_equal(journal_replay(j, 0, check_visit, &v, err, sizeof err), 0);
    assert_int_equal(v.count, 1010);
    journal_close(j);
}

/* A journal that grows by append asks for a spare at once and moves onto
 * it at the next write; spares double (4 MiB, 8 MiB, ...); a preallocated
 * segment is rolled before a write would run past its zeros, so it never
 * grows; a reopened preallocated segment keeps being filled in place. */
static void test_spare_sizes_and_early_roll(void **state)
{
    fx *f = *state;
    journal_report rep;
    char err[512];
    journal *j = NULL;
    const uint64_t seg = 32u << 20, rec = JOURNAL_RECORD_BYTES;
    const uint64_t first = 4u << 20, cap1 = first / rec;
    assert_int_equal(journal_open(&j, f->dir, seg, 0, &rep, err, sizeof err), 0);
    append_range(j, 1, 100, 100); /* no helper yet: grows by append */
    assert_int_equal(journal_start_prealloc(j, err, sizeof err), 0);
    assert_int_equal(wait_spare(f, j), (off_t)first);
    append_range(j, 101, 200, 100); /* rolls onto the spare at once */
    /* (a direct write pads to a whole 4 KiB block) */
    assert_true(file_size(f, 1) >= (off_t)(100 * rec) &&
                file_size(f, 1) < (off_t)(100 * rec + 4096));
    assert_int_equal(file_size(f, 101), (off_t)first);
    /* fill segment 101 exactly: its zeros end at seq 100 + cap1 */
    append_range(j, 201, 100 + cap1, 100);
    assert_int_equal(file_size(f, 101), (off_t)first);
    assert_int_equal(wait_spare(f, j), (off_t)(2 * first)); /* doubled */
    append_range(j, 101 + cap1, 300 + cap1, 50);
    assert_int_equal(file_size(f, 101), (off_t)first); /* never grew */
    assert_int_equal(file_size(f, 101 + cap1), (off_t)(2 * first));
    journal_close(j);
    assert_int_equal(journal_open(&j, f->dir, seg, 0, &rep, err, sizeof err), 0);
    assert_int_equal(rep.segments, 3);
    assert_int_equal(rep.last_seq, 300 + cap1);
    assert_int_equal(rep.cut_bytes, 0);
    visit v = {.next = 1};
    assert_int_equal(journal_replay(j, 0, check_visit, &v, err, sizeof err), 0);
    assert_int_equal(v.count, 300 + cap1);
    /* reopened: the last segment still has zeros, appending stays there */
    assert_int_equal(journal_start_prealloc(j, err, sizeof err), 0);
    append_range(j, 301 + cap1, 400 + cap1, 100);
    journal_close(j);
    assert_int_equal(file_size(f, 101 + cap1), (off_t)(2 * first));
    assert_int_equal(journal_open(&j, f->dir, seg, 0, &rep, err, sizeof err), 0);
    assert_int_equal(rep.segments, 3);
    assert_int_equal(rep.last_seq, 400 + cap1);
    journal_close(j);
}

static void test_snapshot_files(void **state)
{
    fx *f = *state;
    uint8_t eng[1000], svc[333];
    for (size_t i = 0; i < sizeof eng; i++)
        eng[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof svc; i++)
        svc[i] = (uint8_t)(i * 13);
    char err[512];
    snapshot_header h = {.seq = 77, .state_hash = 0xabcdef, .ledger_seq = 70,
                         .engine_bytes = sizeof eng, .service_bytes = sizeof svc};
    assert_int_equal(snapshot_write(f->dir, &h, eng, svc, err, sizeof err), 0);
    h.seq = 5;
    assert_int_equal(snapshot_write(f->dir, &h, eng, svc, err, sizeof err), 0);
    uint64_t seqs[8];
    assert_int_equal(snapshot_list(f->dir, seqs, 8, err, sizeof err), 2);
    assert_int_equal(seqs[0], 5);
    assert_int_equal(seqs[1], 77);
    snapshot_data d;
    assert_int_equal(snapshot_read(f->dir, 77, &d, err, sizeof err), 0);
    assert_int_equal(d.hdr.state_hash, 0xabcdef);
    assert_int_equal(d.hdr.ledger_seq, 70);
    assert_memory_equal(d.engine, eng, sizeof eng);
    assert_memory_equal(d.service, svc, sizeof svc);
    snapshot_free(&d);
    char path[512];
    snprintf(path, sizeof path, "%s/snapshot-%020d.snap", f->dir, 77);
    flip_byte(path, sizeof(snapshot_header) + 500);
    assert_int_equal(snapshot_read(f->dir, 77, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "checksum"));
    assert_int_equal(truncate(path, 100), 0);
    assert_int_equal(snapshot_read(f->dir, 77, &d, err, sizeof err), -1);
    assert_int_equal(snapshot_remove(f->dir, 77), 0);
    assert_int_equal(snapshot_list(f->dir, seqs, 8, err, sizeof err), 1);
}

static void test_crc32c_known_value(void **state)
{
    (void)state;
    /* the standard CRC-32C check value */
    assert_int_equal(journal_crc32c(0, "123456789", 9), 0xe3069283u);
    /* incremental equals one-shot */
    uint32_t c = journal_crc32c(0, "1234", 4);
    assert_int_equal(journal_crc32c(c, "56789", 5), 0xe3069283u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_value),
        cmocka_unit_test_setup_teardown(test_round_trip_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_last_record_and_zero_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_in_the_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_gap_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preallocated_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spare_sizes_and_early_roll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repair_in_an_earlier_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_buffered_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_partial_blocks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
