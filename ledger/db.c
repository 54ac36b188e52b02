/* db.c — the ledger's PostgreSQL connection: the only file that includes
 * libpq.
 *
 * Why one file: every SQL round trip, error classification (transient
 * server trouble vs. a broken constraint) and transaction boundary lives
 * here, so the rest of the ledger stays testable plain C and the rule
 * "only ledger/ talks libpq" holds by construction. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Debian puts libpq-fe.h in /usr/include/postgresql; the Makefile adds no
 * -I for it, and the header finds its siblings by quoted includes. */
#include <postgresql/libpq-fe.h>

#include "gpux_assert.h"
#include "ledger/ledger.h"
#include "ledger/plan.h"

#define MIGRATIONS_MAX 100             /* sql/NNN_*.sql files considered */
#define MIGRATION_MAX_BYTES (1 << 20)  /* one migration file */
#define MIGRATE_LOCK_KEY 0x67707578LL  /* 'gpux': serialises migrators */

struct ledger_db {
    PGconn *conn;
};

const char *ledger_status_name(ledger_status st)
{
    switch (st) {
    case LEDGER_OK: return "ok";
    case LEDGER_ERR_DB: return "db";
    case LEDGER_ERR_CONFLICT: return "conflict";
    case LEDGER_ERR_INVALID: return "invalid";
    case LEDGER_ERR_FATAL: return "fatal";
    }
    return "unknown";
}

/* Copies the server's or libpq's message into err, one line. */
static void set_err(char *err, size_t errlen, const char *what, const char *msg)
{
    snprintf(err, errlen, "%s: %s", what, msg ? msg : "unknown error");
    for (char *c = err; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    size_t n = strlen(err);
    while (n > 0 && err[n - 1] == ' ') err[--n] = '\0';
}

/* Transient (retry after reconnect) or a real problem with the data? */
static ledger_status classify(ledger_db *db, const PGresult *res)
{
    if (PQstatus(db->conn) != CONNECTION_OK) return LEDGER_ERR_DB;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state) return LEDGER_ERR_DB; /* no server answer: connection trouble */
    if (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3) ||
        !strncmp(state, "53", 2) || !strncmp(state, "58", 2) ||
        !strcmp(state, "40001") || !strcmp(state, "40P01"))
        return LEDGER_ERR_DB;
    if (!strncmp(state, "23", 2) || !strncmp(state, "22", 2))
        return LEDGER_ERR_INVALID; /* constraint / data exception */
    return LEDGER_ERR_FATAL;
}

/* Runs a statement that returns no rows. */
static ledger_status exec_cmd(ledger_db *db, const char *sql, const char *what,
                              char *err, size_t errlen)
{
    PGresult *res = PQexec(db->conn, sql);
    ExecStatusType rs = PQresultStatus(res);
    if (rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK) {
        PQclear(res);
        return LEDGER_OK;
    }
    ledger_status st = classify(db, res);
    set_err(err, errlen, what, res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
    PQclear(res);
    return st;
}

ledger_db *ledger_db_connect(const char *url, char *err, size_t errlen)
{
    GPUX_ASSERT(url && err && errlen > 0);
    ledger_db *db = calloc(1, sizeof *db);
    if (!db) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    db->conn = PQconnectdb(url);
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
        set_err(err, errlen, "cannot connect to PostgreSQL",
                db->conn ? PQerrorMessage(db->conn) : "out of memory");
        ledger_db_close(db);
        return NULL;
    }
    /* Durable commits whatever the server default; custom plans because a
     * cached generic plan over unnest() arrays is several times slower. */
    if (exec_cmd(db, "SET synchronous_commit = on; SET plan_cache_mode = force_custom_plan;"
                     " SET client_min_messages = warning; SET TIME ZONE 'UTC'",
                 "session setup", err, errlen) != LEDGER_OK) {
        ledger_db_close(db);
        return NULL;
    }
    return db;
}

void ledger_db_close(ledger_db *db)
{
    if (!db) return;
    if (db->conn) PQfinish(db->conn);
    free(db);
}

bool ledger_db_ok(const ledger_db *db)
{
    return db && db->conn && PQstatus(db->conn) == CONNECTION_OK;
}

/* ---- migrations ---------------------------------------------------------- */

typedef struct migration {
    int version;
    char name[256];
} migration;

static int migration_cmp(const void *a, const void *b)
{
    return ((const migration *)a)->version - ((const migration *)b)->version;
}

/* Lists NNN_name.sql files, sorted; two files with one number is an error. */
static int list_migrations(const char *dir, migration *out, int max, char *err,
                           size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot open migrations dir %s: %s", dir, strerror(errno));
        return -1;
    }
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        size_t len = strlen(nm);
        if (len < 9 || len >= sizeof out[0].name || strcmp(nm + len - 4, ".sql")) continue;
        if (nm[0] < '0' || nm[0] > '9' || nm[1] < '0' || nm[1] > '9' ||
            nm[2] < '0' || nm[2] > '9' || nm[3] != '_')
            continue;
        bool plain = true; /* the name goes into SQL text: keep it plain */
        for (size_t i = 0; i < len; i++)
            if (!((nm[i] >= 'a' && nm[i] <= 'z') || (nm[i] >= 'A' && nm[i] <= 'Z') ||
                  (nm[i] >= '0' && nm[i] <= '9') || nm[i] == '_' || nm[i] == '-' || nm[i] == '.'))
                plain = false;
        if (!plain) {
            closedir(d);
            snprintf(err, errlen, "migration file name %.100s: use only A-Z a-z 0-9 _ - .", nm);
            return -1;
        }
        if (n == max) {
            closedir(d);
            snprintf(err, errlen, "more than %d migrations in %s", max, dir);
            return -1;
        }
        out[n].version = (nm[0] - '0') * 100 + (nm[1] - '0') * 10 + (nm[2] - '0');
        memcpy(out[n].name, nm, len + 1);
        n++;
    }
    closedir(d);
    qsort(out, (size_t)n, sizeof *out, migration_cmp);
    for (int i = 1; i < n; i++)
        if (out[i].version == out[i - 1].version) {
            snprintf(err, errlen, "two migrations numbered %03d: %s and %s",
                     out[i].version, out[i - 1].name, out[i].name);
            return -1;
        }
    return n;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MIGRATION_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MIGRATION_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (!buf || n > MIGRATION_MAX_BYTES) {
        snprintf(err, errlen, "%s: %s", path, buf ? "larger than 1 MiB" : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static uint64_t fnv64(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Stored checksum of an applied migration; *found false when not applied. */
static ledger_status applied_checksum(ledger_db *db, int version, bool *found,
                                      int64_t *sum, char *err, size_t errlen)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT checksum FROM ledger_migrations WHERE version = %d", version);
    PGresult *res = PQexec(db->conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ledger_status st = classify(db, res);
        set_err(err, errlen, "reading ledger_migrations", PQresultErrorMessage(res));
        PQclear(res);
        return st;
    }
    *found = PQntuples(res) == 1;
    if (*found) *sum = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return LEDGER_OK;
}

static ledger_status apply_one(ledger_db *db, const char *dir, const migration *m,
                               bool *did, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, m->name);
    size_t len = 0;
    char *text = read_file(path, &len, err, errlen);
    if (!text) return LEDGER_ERR_FATAL;
    int64_t sum = (int64_t)fnv64(text, len);
    bool found = false;
    int64_t stored = 0;
    ledger_status st = applied_checksum(db, m->version, &found, &stored, err, errlen);
    if (st == LEDGER_OK && found && stored != sum) {
        snprintf(err, errlen, "migration %s was changed after it was applied "
                 "(checksum differs): add a new migration instead", m->name);
        st = LEDGER_ERR_FATAL;
    }
    if (st != LEDGER_OK || found) {
        free(text);
        *did = false;
        return st;
    }
    st = exec_cmd(db, "BEGIN", "begin migration", err, errlen);
    if (st == LEDGER_OK) st = exec_cmd(db, text, m->name, err, errlen);
    free(text);
    if (st == LEDGER_OK) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "INSERT INTO ledger_migrations (version, name, checksum) VALUES (%d, '%s', %" PRId64 ")",
                 m->version, m->name, sum);
        st = exec_cmd(db, sql, "recording migration", err, errlen);
    }
    if (st == LEDGER_OK) st = exec_cmd(db, "COMMIT", "commit migration", err, errlen);
    if (st != LEDGER_OK) {
        PQclear(PQexec(db->conn, "ROLLBACK"));
        return st;
    }
    *did = true;
    return LEDGER_OK;
}

ledger_status ledger_db_migrate(ledger_db *db, const char *sql_dir, int *applied,
                                char *err, size_t errlen)
{
    GPUX_ASSERT(db && sql_dir);
    static migration migs[MIGRATIONS_MAX];
    int n = list_migrations(sql_dir, migs, MIGRATIONS_MAX, err, errlen);
    if (n < 0) return LEDGER_ERR_FATAL;
    if (n == 0) {
        snprintf(err, errlen, "no migrations (NNN_*.sql) in %s", sql_dir);
        return LEDGER_ERR_FATAL;
    }
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", (long long)MIGRATE_LOCK_KEY);
    ledger_status st = exec_cmd(db,
        "CREATE TABLE IF NOT EXISTS ledger_migrations ("
        " version integer PRIMARY KEY CHECK (version > 0),"
        " name text NOT NULL, checksum bigint NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())",
        "creating ledger_migrations", err, errlen);
    if (st == LEDGER_OK) st = exec_cmd(db, sql, "migration lock", err, errlen);
    int count = 0;
    for (int i = 0; st == LEDGER_OK && i < n; i++) {
        bool did = false;
        st = apply_one(db, sql_dir, &migs[i], &did, err, errlen);
        count += did;
    }
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", (long long)MIGRATE_LOCK_KEY);
    if (ledger_db_ok(db)) PQclear(PQexec(db->conn, sql));
    if (applied) *applied = count;
    return st;
}

/* ---- small queries ------------------------------------------------------- */

ledger_status ledger_db_query_i64(ledger_db *db, const char *sql, int64_t *out,
                                  char *err, size_t errlen)
{
    PGresult *res = PQexec(db->conn, sql);
    ExecStatusType rs = PQresultStatus(res);
    if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK) {
        ledger_status st = classify(db, res);
        set_err(err, errlen, "query", PQresultErrorMessage(res));
        PQclear(res);
        return st;
    }
    if (out) {
        if (rs != PGRES_TUPLES_OK || PQntuples(res) < 1 || PQnfields(res) < 1) {
            snprintf(err, errlen, "query returned no row: %.80s", sql);
            PQclear(res);
            return LEDGER_ERR_FATAL;
        }
        *out = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    return LEDGER_OK;
}

ledger_status ledger_db_query_print(ledger_db *db, const char *sql, FILE *f,
                                    int max_rows, long *n_rows, char *err,
                                    size_t errlen)
{
    PGresult *res = PQexec(db->conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ledger_status st = classify(db, res);
        set_err(err, errlen, "query", PQresultErrorMessage(res));
        PQclear(res);
        return st;
    }
    int rows = PQntuples(res), cols = PQnfields(res);
    for (int r = 0; r < rows && r < max_rows; r++) {
        fputs("    ", f);
        for (int c = 0; c < cols; c++)
            fprintf(f, "%s%s=%s", c ? " " : "", PQfname(res, c),
                    PQgetisnull(res, r, c) ? "null" : PQgetvalue(res, r, c));
        fputc('\n', f);
    }
    if (n_rows) *n_rows = rows;
    PQclear(res);
    return LEDGER_OK;
}

ledger_status ledger_db_position(ledger_db *db, uint64_t *last_seq,
                                 uint64_t *matcher_seq, char *err, size_t errlen)
{
    PGresult *res = PQexec(db->conn, "SELECT last_seq, matcher_seq FROM ledger_position");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        ledger_status st = PQresultStatus(res) == PGRES_TUPLES_OK ? LEDGER_ERR_FATAL
                                                                  : classify(db, res);
        set_err(err, errlen, "reading ledger_position",
                st == LEDGER_ERR_FATAL && PQresultStatus(res) == PGRES_TUPLES_OK
                    ? "not exactly one row (schema damaged?)"
                    : PQresultErrorMessage(res));
        PQclear(res);
        return st;
    }
    *last_seq = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    if (matcher_seq) *matcher_seq = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return LEDGER_OK;
}

ledger_status ledger_db_sync_markets(ledger_db *db, const matcher_catalog *cat,
                                     char *err, size_t errlen)
{
    GPUX_ASSERT(cat->n_markets <= MATCHER_MAX_MARKETS);
    for (uint32_t i = 0; i < cat->n_markets; i++) {
        const matcher_market_def *m = &cat->markets[i];
        char id[16], lot[16], tick[24];
        snprintf(id, sizeof id, "%u", i);
        snprintf(lot, sizeof lot, "%d", m->lot);
        snprintf(tick, sizeof tick, "%" PRId64, m->tick_micros);
        const char *params[5] = {id, m->gpu, m->region, lot, tick};
        PGresult *res = PQexecParams(db->conn,
            "INSERT INTO ledger_markets (market_id, gpu, region, lot, tick_micros)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (market_id) DO NOTHING;",
            5, NULL, params, NULL, NULL, 0);
        ledger_status st = PQresultStatus(res) == PGRES_COMMAND_OK ? LEDGER_OK : classify(db, res);
        if (st != LEDGER_OK) set_err(err, errlen, "inserting market", PQresultErrorMessage(res));
        PQclear(res);
        if (st != LEDGER_OK) return st;
        res = PQexecParams(db->conn,
            "SELECT 1 FROM ledger_markets WHERE market_id = $1 AND gpu = $2 AND region = $3",
            3, NULL, params, NULL, NULL, 0);
        st = PQresultStatus(res) == PGRES_TUPLES_OK ? LEDGER_OK : classify(db, res);
        if (st != LEDGER_OK) set_err(err, errlen, "reading market", PQresultErrorMessage(res));
        else if (PQntuples(res) != 1) {
            snprintf(err, errlen, "market %u is %s/%s in the catalog but differs in the "
                     "ledger: a market id may never change meaning", i, m->gpu, m->region);
            st = LEDGER_ERR_INVALID;
        }
        PQclear(res);
        if (st != LEDGER_OK) return st;
    }
    return LEDGER_OK;
}

/* ---- the batch transaction ------------------------------------------------ */

ledger_status ledger_db_begin(ledger_db *db, uint64_t *last_seq, char *err,
                              size_t errlen)
{
    ledger_status st = exec_cmd(db, "BEGIN", "begin batch", err, errlen);
    if (st != LEDGER_OK) return st;
    /* FOR UPDATE: a second settler on the same database waits here instead
     * of settling the same seqs twice. */
    PGresult *res = PQexec(db->conn, "SELECT last_seq FROM ledger_position FOR UPDATE");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        st = PQresultStatus(res) == PGRES_TUPLES_OK ? LEDGER_ERR_FATAL : classify(db, res);
        set_err(err, errlen, "locking ledger_position", PQresultErrorMessage(res));
        PQclear(res);
        ledger_db_rollback(db);
        return st;
    }
    *last_seq = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return LEDGER_OK;
}

void ledger_db_rollback(ledger_db *db)
{
    if (ledger_db_ok(db)) PQclear(PQexec(db->conn, "ROLLBACK"));
}

ledger_status ledger_db_verify_dups(ledger_db *db, const ledger_plan *p, char *err,
                                    size_t errlen)
{
    if (p->n_dups == 0) return LEDGER_OK;
    /* Each stored batch row says which digest algorithm it holds (sql/003):
     * the redelivered command is compared by that one. */
    const char *params[4] = {p->dup_seqs.p, p->dup_counts.p, p->dup_digests.p,
                             p->dup_digests_v1.p};
    PGresult *res = PQexecParams(db->conn,
        "SELECT d.seq, d.n, CASE WHEN c.alg = 1 THEN d.dig1 ELSE d.dig END, c.n_events, c.digest"
        " FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bigint[]) AS d(seq, n, dig, dig1)"
        " LEFT JOIN (SELECT u.*, b.digest_alg AS alg FROM ledger_command_batches b,"
        "   unnest(b.seqs, b.n_events, b.digests) AS u(seq, n_events, digest)"
        "   WHERE int8range(b.first_seq, b.last_seq, '[]') &&"
        "         (SELECT int8range(min(x), max(x), '[]') FROM unnest($1::bigint[]) AS x)) c"
        "   ON c.seq = d.seq"
        " WHERE c.seq IS NULL OR c.n_events <> d.n"
        "    OR c.digest <> CASE WHEN c.alg = 1 THEN d.dig1 ELSE d.dig END"
        " ORDER BY d.seq LIMIT 1",
        4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ledger_status st = classify(db, res);
        set_err(err, errlen, "verifying redelivered commands", PQresultErrorMessage(res));
        PQclear(res);
        return st;
    }
    ledger_status st = LEDGER_OK;
    if (PQntuples(res) > 0) {
        if (PQgetisnull(res, 0, 3))
            snprintf(err, errlen, "CONFLICT: seq %s was redelivered with %s events but the "
                     "ledger passed it as empty; refusing to settle it now",
                     PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        else
            snprintf(err, errlen, "CONFLICT: seq %s was redelivered with different content "
                     "(%s events, digest %s) than settled (%s events, digest %s)",
                     PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                     PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
        st = LEDGER_ERR_CONFLICT;
    }
    PQclear(res);
    return st;
}

static ledger_status copy_table(ledger_db *db, int t, const ledger_buf *b, char *err,
                                size_t errlen)
{
    PGresult *res = PQexec(db->conn, ledger_copy_sql[t]);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        ledger_status st = classify(db, res);
        set_err(err, errlen, ledger_copy_sql[t], PQresultErrorMessage(res));
        PQclear(res);
        return st;
    }
    PQclear(res);
    GPUX_ASSERT(b->len < (size_t)INT32_MAX);
    if (PQputCopyData(db->conn, b->p, (int)b->len) != 1 ||
        PQputCopyEnd(db->conn, NULL) != 1) {
        set_err(err, errlen, "sending COPY data", PQerrorMessage(db->conn));
        return LEDGER_ERR_DB;
    }
    ledger_status st = LEDGER_OK;
    while ((res = PQgetResult(db->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && st == LEDGER_OK) {
            st = classify(db, res);
            set_err(err, errlen, ledger_copy_sql[t], PQresultErrorMessage(res));
        }
        PQclear(res);
    }
    return st;
}

static ledger_status exec_params(ledger_db *db, const char *sql, int n,
                                 const char *const *params, const char *what,
                                 char *err, size_t errlen)
{
    PGresult *res = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
    ledger_status st = LEDGER_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = classify(db, res);
        set_err(err, errlen, what, PQresultErrorMessage(res));
    }
    PQclear(res);
    return st;
}

/* The SQL below names the digest algorithms by number (digest_alg). */
_Static_assert(LEDGER_DIGEST_FNV1A == 1 && LEDGER_DIGEST_MIX64 == 2,
               "digest_alg values are stored in ledger_command_batches");

ledger_status ledger_db_apply(ledger_db *db, const ledger_plan *p, char *err,
                              size_t errlen)
{
    ledger_status st = LEDGER_OK;
    /* Accounts first: the reference target of cash and trade rows. */
    for (int t = 0; st == LEDGER_OK && t < LEDGER_T_COUNT; t++)
        if (p->rows[t] > 0) st = copy_table(db, t, &p->copy[t], err, errlen);
    if (st == LEDGER_OK && p->n_cmds > 0) {
        /* The batch's command digests, one row (sql/002). */
        char first[24], last[24];
        snprintf(first, sizeof first, "%" PRIu64, p->first_cmd_seq);
        snprintf(last, sizeof last, "%" PRIu64, p->last_seq);
        const char *params[5] = {first, last, p->cmd_seqs.p, p->cmd_counts.p, p->cmd_digests.p};
        st = exec_params(db,
            "INSERT INTO ledger_command_batches (first_seq, last_seq, seqs, n_events, digests,"
            " digest_alg) VALUES ($1, $2, $3::bigint[], $4::int[], $5::bigint[], 2)",
            5, params, "recording command digests", err, errlen);
    }
    if (st == LEDGER_OK && p->n_deltas > 0) {
        /* One UPDATE per batch, aggregated per account: no row (the fee
         * account above all) is touched twice. */
        const char *params[2] = {p->delta_ids.p, p->delta_micros.p};
        st = exec_params(db,
            "UPDATE ledger_accounts a SET balance_micros = a.balance_micros + d.delta"
            " FROM unnest($1::bigint[], $2::bigint[]) AS d(id, delta)"
            " WHERE a.account_id = d.id",
            2, params, "updating balances", err, errlen);
    }
    if (st == LEDGER_OK && p->n_mbal > 0) {
        const char *params[4] = {p->mbal_ids.p, p->mbal_balance.p, p->mbal_held.p,
                                 p->mbal_seq.p};
        st = exec_params(db,
            "INSERT INTO ledger_matcher_balances (account_id, balance_micros, held_micros, seq)"
            " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])"
            " ON CONFLICT (account_id) DO UPDATE SET balance_micros = EXCLUDED.balance_micros,"
            " held_micros = EXCLUDED.held_micros, seq = EXCLUDED.seq",
            4, params, "recording matcher balances", err, errlen);
    }
    if (st == LEDGER_OK) {
        char last[24], head[24];
        snprintf(last, sizeof last, "%" PRIu64, p->last_seq);
        snprintf(head, sizeof head, "%" PRIu64, p->matcher_seq);
        const char *params[2] = {last, head};
        st = exec_params(db,
            "UPDATE ledger_position SET last_seq = $1, batches = batches + 1,"
            " matcher_seq = GREATEST(matcher_seq, $2::bigint, $1::bigint), updated_at = now()",
            2, params, "moving the position", err, errlen);
    }
    if (st == LEDGER_OK) st = exec_cmd(db, "COMMIT", "commit batch", err, errlen);
    if (st != LEDGER_OK) ledger_db_rollback(db);
    return st;
}
