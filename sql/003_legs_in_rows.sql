-- 003_legs_in_rows.sql — a trade's double-entry legs are stored in its trade
-- row, a deposit's or withdrawal's in its cash row; ledger_transfers becomes
-- a view that presents every leg exactly as 001/002 stored it (issue 4:
-- durable settlement throughput). Also (sections below): trade-id
-- uniqueness by a high-water mark instead of a b-tree, room for HOT
-- updates of the balance rows, and the digest algorithm of each command
-- batch. Brings a 001 or 002 database up to date.
--
-- Why: after 002 a trade still wrote 3.1 heap rows and 3.1 primary-key
-- entries (its trade row and ~2.1 transfer rows), and the transfer rows
-- were ~45 % of the settler's statement time. Every field of a trade's legs
-- is already in its row: the `trade` leg moves notional_micros from
-- buyer_id to provider_id, the `buyer_fee` leg buyer_fee_micros from
-- buyer_id to the fee account 0, the `provider_fee` leg provider_fee_micros
-- from provider_id to 0 (a fee leg exists only when the fee is > 0); a cash
-- row's one leg moves amount_micros from the external account -1 to the
-- account (deposit) or back (withdrawal). Storing them again was a copy.
--
-- The double-entry rules of 001's ledger_transfers table hold for every
-- derived leg by the CHECKs of the rows it comes from:
--   one debit and one credit account, different: buyer_id <> provider_id,
--     both > 0, so neither is the fee account 0 nor the external -1;
--     cash account_id >= 0, so never -1;
--   amount > 0: notional = price x qty x hours with all three > 0; fee legs
--     only for fees > 0; cash amount_micros > 0;
--   kinds tied to accounts: deposits debit -1, withdrawals credit -1, fee
--     legs credit 0 — by construction of the view;
--   references: the statement triggers of ledger_trades and ledger_cash
--     check every buyer, provider, account and market; 0 and -1 always
--     exist and cannot be deleted;
--   at most once: a leg is keyed by its trade (unique trade_id, below) or
--     its cash row (primary key seq), so it cannot be written twice.
-- (seq, leg) keeps 001's numbering: legs are numbered 0, 1, ... within a
-- command in event order (trade ids increase in event order), trade leg,
-- then buyer fee, then provider fee; a cash command's one leg is 0.
--
-- Existing transfer rows are verified first: the stored legs must be
-- exactly the derived ones (as a multiset, so nothing is missing, extra or
-- different), else this migration refuses and changes nothing (run
-- `gpux-ledger check`); they are never silently rewritten.

CREATE VIEW ledger_transfer_legs AS
    SELECT c.seq, 0 AS leg, c.kind,
           CASE WHEN c.kind = 'deposit' THEN -1 ELSE c.account_id END AS debit_account_id,
           CASE WHEN c.kind = 'deposit' THEN c.account_id ELSE -1 END AS credit_account_id,
           c.amount_micros, NULL::bigint AS trade_id
    FROM ledger_cash c
    UNION ALL
    SELECT t.seq,
           (t.first_leg + l.k - CASE WHEN l.k = 2 AND t.buyer_fee_micros = 0 THEN 1 ELSE 0 END)::integer,
           l.kind, l.debit, l.credit, l.amount, t.trade_id
    FROM (SELECT x.*,
                 sum(1 + (x.buyer_fee_micros > 0)::int + (x.provider_fee_micros > 0)::int)
                     OVER (PARTITION BY x.seq ORDER BY x.trade_id ROWS UNBOUNDED PRECEDING)
                 - (1 + (x.buyer_fee_micros > 0)::int + (x.provider_fee_micros > 0)::int) AS first_leg
          FROM ledger_trades x) t
    CROSS JOIN LATERAL (VALUES
        (0, 'trade'::text, t.buyer_id, t.provider_id, t.notional_micros),
        (1, 'buyer_fee', t.buyer_id, 0::bigint, t.buyer_fee_micros),
        (2, 'provider_fee', t.provider_id, 0::bigint, t.provider_fee_micros)) AS l(k, kind, debit, credit, amount)
    WHERE l.amount > 0;

DO $$
BEGIN
    IF EXISTS ((SELECT seq, leg, kind, debit_account_id, credit_account_id, amount_micros, trade_id
                FROM ledger_transfers
                EXCEPT ALL
                SELECT seq, leg, kind, debit_account_id, credit_account_id, amount_micros, trade_id
                FROM ledger_transfer_legs)
               UNION ALL
               (SELECT seq, leg, kind, debit_account_id, credit_account_id, amount_micros, trade_id
                FROM ledger_transfer_legs
                EXCEPT ALL
                SELECT seq, leg, kind, debit_account_id, credit_account_id, amount_micros, trade_id
                FROM ledger_transfers)) THEN
        RAISE EXCEPTION 'ledger: 003 cannot fold ledger_transfers into ledger_trades and ledger_cash: '
                        'a stored transfer differs from the legs of its trade or cash row '
                        '(run gpux-ledger check)' USING ERRCODE = 'data_corrupted';
    END IF;
END $$;

DROP VIEW gpux_fees;
DROP TABLE ledger_transfers;
DROP FUNCTION ledger_transfers_refs();
ALTER VIEW ledger_transfer_legs RENAME TO ledger_transfers;

CREATE VIEW gpux_fees AS
    SELECT trade_id, seq, kind, debit_account_id AS payer_id, amount_micros
    FROM ledger_transfers WHERE kind IN ('buyer_fee', 'provider_fee');

-- ---- trade ids: unique by a high-water mark instead of a b-tree ----
-- Why: with the legs folded in, the primary-key b-tree on trade_id was
-- the largest single cost left in a trade's insert (measured: ~2-3 us of
-- backend CPU per row, more than the heap insert; docs/ledger.md).
-- The matcher numbers trades 1, 2, 3, ... in settlement order, so
-- uniqueness has a cheaper exact form: every statement's trade ids are
-- distinct and all above the highest trade id ever settled, which the
-- statement then raises. A repeated id (a second delivery of a trade, a
-- manual insert) fails its statement with unique_violation, as the primary
-- key did; ids can never be changed afterwards (trigger below). Concurrent
-- writers are serialised on the one ledger_trade_ids row: the second one
-- re-checks the raised mark after the first commits and fails if its ids
-- are no longer above it.
-- Lookups by trade id (operators, gpux_trades) use a BRIN index: trade ids
-- follow the physical order of an insert-only table, so a block range
-- summary finds a trade in one range of pages, at almost no insert cost.
CREATE TABLE ledger_trade_ids (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    max_trade_id bigint  NOT NULL CHECK (max_trade_id >= 0)
);
INSERT INTO ledger_trade_ids (max_trade_id) SELECT COALESCE(max(trade_id), 0) FROM ledger_trades;

-- One pass over the statement's rows: the id range and distinctness, the
-- distinct accounts and markets named; then one probe per distinct id.
CREATE OR REPLACE FUNCTION ledger_trades_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lo bigint;
    hi bigint;
    n bigint;
    n_ids bigint;
    accts bigint[];
    mkts integer[];
BEGIN
    SELECT min(trade_id), max(trade_id), count(*), count(DISTINCT trade_id),
           array_agg(DISTINCT buyer_id) || array_agg(DISTINCT provider_id),
           array_agg(DISTINCT market_id)
      INTO lo, hi, n, n_ids, accts, mkts FROM new_rows;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF n_ids <> n THEN
        RAISE EXCEPTION 'ledger: a statement inserts trade id(s) twice' USING ERRCODE = 'unique_violation';
    END IF;
    UPDATE ledger_trade_ids SET max_trade_id = hi WHERE max_trade_id < lo;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ledger: trade id % is already settled (trade ids must be above the highest settled one, %)',
            lo, (SELECT max_trade_id FROM ledger_trade_ids) USING ERRCODE = 'unique_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(accts) AS x(id)
               WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.account_id = x.id))
       OR EXISTS (SELECT 1 FROM unnest(mkts) AS x(id)
                  WHERE NOT EXISTS (SELECT 1 FROM ledger_markets m WHERE m.market_id = x.id)) THEN
        PERFORM ledger_refs_fail('ledger_trades row names an unknown buyer, provider or market');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_trades_ids BEFORE UPDATE OF trade_id ON ledger_trades
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid();
CREATE TRIGGER ledger_trade_ids_keep BEFORE DELETE OR TRUNCATE ON ledger_trade_ids
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid();

ALTER TABLE ledger_trades DROP CONSTRAINT ledger_trades_pkey;
CREATE INDEX ledger_trades_trade_id ON ledger_trades USING brin (trade_id) WITH (autosummarize = on);

-- ---- balance rows: room for HOT updates ----
-- Every batch updates the balance row of each account it touches (one
-- UPDATE, aggregated per account) and upserts the account's last matcher
-- balance. At the default fillfactor 100 a page has no room for the new
-- version, so each update went to another page with a new index entry and
-- left the table and its index growing by one tuple per account per
-- batch. With half of each page free the new version stays on its page
-- (a HOT update: no index entry; the old version is pruned in place).
-- Measured: ~99 % of these updates are HOT (figures in docs/ledger.md).
ALTER TABLE ledger_accounts SET (fillfactor = 50);
ALTER TABLE ledger_matcher_balances SET (fillfactor = 50);

-- ---- command digests: which algorithm a batch row holds ----
-- The settler's FNV-1a digests (eight dependent multiplies per 64-bit
-- field) were about half of its CPU per trade. Rows written from now on
-- hold a cheaper digest (2: one multiply-xorshift step per field, see
-- ledger/settle.c); the rows already stored keep theirs (1: FNV-1a), and a
-- redelivered command is verified with the algorithm of the row that holds
-- it, so history is never rewritten and a redelivery across the upgrade
-- still matches.
ALTER TABLE ledger_command_batches
    ADD COLUMN digest_alg smallint NOT NULL DEFAULT 1 CHECK (digest_alg IN (1, 2));

CREATE OR REPLACE VIEW ledger_commands AS
    SELECT c.seq, c.n_events, c.digest, b.digest_alg
    FROM ledger_command_batches b,
         unnest(b.seqs, b.n_events, b.digests) AS c(seq, n_events, digest);
