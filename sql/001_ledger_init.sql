-- 001_ledger_init.sql — the ledger's first schema: double-entry accounts,
-- trades, leases, cash movements, the consumer position and the views the
-- operator spec names (gpux_balances, gpux_trades).
--
-- Why the shape: every row the settler writes is keyed by the matcher's
-- command sequence (seq) or an engine-assigned id, so a redelivered event
-- can never create a second row, and constraints make bad rows impossible
-- rather than merely unlikely. Money is bigint micro-dollars everywhere.
-- Applied by `gpux-ledger migrate` inside one transaction with its
-- ledger_migrations row.

-- The catalog, copied from the matcher's catalog file (names for reports).
CREATE TABLE ledger_markets (
    market_id   integer PRIMARY KEY CHECK (market_id >= 0 AND market_id < 1024),
    gpu         text    NOT NULL CHECK (gpu <> '' AND length(gpu) < 16),
    region      text    NOT NULL CHECK (region <> '' AND length(region) < 16),
    lot         integer NOT NULL CHECK (lot > 0),
    tick_micros bigint  NOT NULL CHECK (tick_micros > 0),
    UNIQUE (gpu, region)
);

-- Accounts: -1 is the outside world (the counterparty of deposits and
-- withdrawals, so every movement is double entry), 0 the exchange's fee
-- account, 1.. the users in creation order. balance_micros is the settled
-- balance, kept equal to credits - debits of ledger_transfers.
CREATE TABLE ledger_accounts (
    account_id     bigint  PRIMARY KEY CHECK (account_id >= -1 AND account_id < 4294967296),
    kind           text    NOT NULL CHECK (kind IN ('external', 'fee', 'user')),
    name           text    CHECK (name IS NULL OR length(name) BETWEEN 1 AND 64),
    roles          integer NOT NULL DEFAULT 0 CHECK (roles BETWEEN 0 AND 7),
    created_seq    bigint  NOT NULL DEFAULT 0 CHECK (created_seq >= 0),
    balance_micros bigint  NOT NULL DEFAULT 0,
    CHECK ((account_id = -1) = (kind = 'external')),
    CHECK ((account_id = 0) = (kind = 'fee')),
    CHECK (kind = 'external' OR balance_micros >= 0),
    CHECK (kind = 'user' OR created_seq = 0)
);
INSERT INTO ledger_accounts (account_id, kind, name) VALUES
    (-1, 'external', 'external'),
    (0, 'fee', 'exchange-fees');

-- One row per settled matcher command: the exactly-once record. digest is
-- a 64-bit hash of the command's events; a redelivered seq must hash equal.
CREATE TABLE ledger_commands (
    seq      bigint  PRIMARY KEY CHECK (seq > 0),
    n_events integer NOT NULL CHECK (n_events > 0),
    digest   bigint  NOT NULL
);

-- Where the consumer is: every command with seq <= last_seq is settled.
-- Exactly one row; updated in the same transaction as the batch it ends.
CREATE TABLE ledger_position (
    one             boolean     PRIMARY KEY DEFAULT true CHECK (one),
    last_seq        bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    matcher_seq     bigint      NOT NULL DEFAULT 0 CHECK (matcher_seq >= 0),
    batches         bigint      NOT NULL DEFAULT 0 CHECK (batches >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ledger_position DEFAULT VALUES;

-- Deposits and withdrawals (operator actions), one per command.
CREATE TABLE ledger_cash (
    seq           bigint PRIMARY KEY,
    kind          text   NOT NULL CHECK (kind IN ('deposit', 'withdrawal')),
    account_id    bigint NOT NULL CHECK (account_id >= 0),
    amount_micros bigint NOT NULL CHECK (amount_micros > 0 AND amount_micros <= 1000000000000000),
    ts_us         bigint NOT NULL
);

CREATE TABLE ledger_trades (
    trade_id            bigint   PRIMARY KEY CHECK (trade_id > 0),
    seq                 bigint   NOT NULL CHECK (seq > 0),
    buy_order_id        bigint   NOT NULL CHECK (buy_order_id > 0),
    sell_order_id       bigint   NOT NULL CHECK (sell_order_id > 0),
    buyer_id            bigint   NOT NULL CHECK (buyer_id > 0),
    provider_id         bigint   NOT NULL CHECK (provider_id > 0),
    market_id           integer  NOT NULL,
    taker_side          smallint NOT NULL CHECK (taker_side IN (1, 2)),
    price_micros        bigint   NOT NULL CHECK (price_micros > 0 AND price_micros <= 1000000000),
    qty                 integer  NOT NULL CHECK (qty > 0 AND qty <= 100000),
    start_hour          bigint   NOT NULL CHECK (start_hour >= 0),
    end_hour            bigint   NOT NULL,
    notional_micros     bigint   NOT NULL,
    buyer_fee_micros    bigint   NOT NULL CHECK (buyer_fee_micros >= 0),
    provider_fee_micros bigint   NOT NULL CHECK (provider_fee_micros >= 0),
    saving_micros       bigint   NOT NULL CHECK (saving_micros >= 0),
    ts_us               bigint   NOT NULL,
    CHECK (buyer_id <> provider_id),
    CHECK (end_hour > start_hour AND end_hour - start_hour <= 8760),
    CHECK (notional_micros = price_micros * qty * (end_hour - start_hour)),
    CHECK (buyer_fee_micros <= notional_micros / 10 AND provider_fee_micros <= notional_micros / 10)
);

-- The lease each fill creates (lease id = trade id). Same terms as its trade.
CREATE TABLE ledger_leases (
    lease_id     bigint  PRIMARY KEY,
    buyer_id     bigint  NOT NULL CHECK (buyer_id > 0),
    provider_id  bigint  NOT NULL CHECK (provider_id > 0),
    market_id    integer NOT NULL,
    start_hour   bigint  NOT NULL,
    end_hour     bigint  NOT NULL CHECK (end_hour > start_hour),
    qty          integer NOT NULL CHECK (qty > 0),
    price_micros bigint  NOT NULL CHECK (price_micros > 0)
);

-- Double entry: each transfer moves amount from the debit account to the
-- credit account. (seq, leg) is deterministic so a redelivery cannot add one.
CREATE TABLE ledger_transfers (
    seq               bigint   NOT NULL CHECK (seq > 0),
    leg               integer  NOT NULL CHECK (leg >= 0),
    kind              text     NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'trade', 'buyer_fee', 'provider_fee')),
    debit_account_id  bigint   NOT NULL,
    credit_account_id bigint   NOT NULL,
    amount_micros     bigint   NOT NULL CHECK (amount_micros > 0),
    trade_id          bigint,
    PRIMARY KEY (seq, leg),
    CHECK (debit_account_id <> credit_account_id),
    CHECK ((kind IN ('trade', 'buyer_fee', 'provider_fee')) = (trade_id IS NOT NULL)),
    CHECK (kind <> 'deposit' OR debit_account_id = -1),
    CHECK (kind <> 'withdrawal' OR credit_account_id = -1),
    CHECK (kind NOT IN ('buyer_fee', 'provider_fee') OR credit_account_id = 0)
);

-- The matcher's own view of each account: the last BALANCE event settled
-- and the seq it came with, so `check` compares ledger and matcher at the
-- same sequence.
CREATE TABLE ledger_matcher_balances (
    account_id     bigint PRIMARY KEY CHECK (account_id >= 0),
    balance_micros bigint NOT NULL CHECK (balance_micros >= 0),
    held_micros    bigint NOT NULL CHECK (held_micros >= 0 AND held_micros <= balance_micros),
    seq            bigint NOT NULL CHECK (seq > 0)
);

-- ---- references, checked per statement ----
-- Row-level foreign keys cost one lookup per row (measured: ~100 us each
-- on a busy 2-core box, 5x the rest of the insert). The settler inserts a
-- batch per statement, so references are checked once per statement with
-- a set-based anti-join over the statement's new rows: the same guarantee
-- (the statement fails, the batch rolls back), a fraction of the cost.
-- Accounts and markets are never deleted or renumbered (see below), so
-- checking on insert is enough.

CREATE FUNCTION ledger_refs_fail(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: %', what USING ERRCODE = 'foreign_key_violation';
END $$;

CREATE FUNCTION ledger_cash_refs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n WHERE NOT EXISTS
               (SELECT 1 FROM ledger_accounts a WHERE a.account_id = n.account_id)) THEN
        PERFORM ledger_refs_fail('ledger_cash row names an unknown account');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_cash_refs AFTER INSERT ON ledger_cash
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_cash_refs();

CREATE FUNCTION ledger_trades_refs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n WHERE
               NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.account_id = n.buyer_id)
               OR NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.account_id = n.provider_id)
               OR NOT EXISTS (SELECT 1 FROM ledger_markets m WHERE m.market_id = n.market_id)) THEN
        PERFORM ledger_refs_fail('ledger_trades row names an unknown buyer, provider or market');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_trades_refs AFTER INSERT ON ledger_trades
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_trades_refs();

CREATE FUNCTION ledger_leases_refs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n WHERE NOT EXISTS
               (SELECT 1 FROM ledger_trades t WHERE t.trade_id = n.lease_id)) THEN
        PERFORM ledger_refs_fail('ledger_leases row without its trade');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_leases_refs AFTER INSERT ON ledger_leases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_leases_refs();

CREATE FUNCTION ledger_transfers_refs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n WHERE
               NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.account_id = n.debit_account_id)
               OR NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.account_id = n.credit_account_id)
               OR (n.trade_id IS NOT NULL AND NOT EXISTS
                   (SELECT 1 FROM ledger_trades t WHERE t.trade_id = n.trade_id))) THEN
        PERFORM ledger_refs_fail('ledger_transfers row names an unknown account or trade');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_transfers_refs AFTER INSERT ON ledger_transfers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfers_refs();

CREATE FUNCTION ledger_mbal_refs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n WHERE NOT EXISTS
               (SELECT 1 FROM ledger_accounts a WHERE a.account_id = n.account_id)) THEN
        PERFORM ledger_refs_fail('ledger_matcher_balances row names an unknown account');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_mbal_refs_ins AFTER INSERT ON ledger_matcher_balances
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_mbal_refs();

-- Accounts and markets are referenced forever: never deleted, ids never
-- changed.
CREATE FUNCTION ledger_forbid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % on % is not allowed (rows are referenced forever)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER ledger_accounts_keep BEFORE DELETE OR TRUNCATE ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid();
CREATE TRIGGER ledger_accounts_ids BEFORE UPDATE OF account_id ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid();
CREATE TRIGGER ledger_markets_keep BEFORE DELETE OR TRUNCATE OR UPDATE ON ledger_markets
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_forbid();

-- ---- views for operators and reports (names fixed by operations.md) ----

CREATE VIEW gpux_balances AS
    SELECT account_id, COALESCE(name, 'account-' || account_id) AS name, balance_micros
    FROM ledger_accounts
    WHERE account_id >= 0;

CREATE VIEW gpux_trades AS
    SELECT t.trade_id, t.seq, t.buyer_id, t.provider_id, m.gpu, m.region,
           to_timestamp(t.start_hour * 3600) AS start_at,
           to_timestamp(t.end_hour * 3600) AS end_at,
           t.qty, t.price_micros, t.notional_micros,
           t.buyer_fee_micros, t.provider_fee_micros
    FROM ledger_trades t JOIN ledger_markets m USING (market_id);

CREATE VIEW gpux_leases AS
    SELECT l.lease_id, l.lease_id AS trade_id, l.buyer_id, l.provider_id, m.gpu, m.region,
           to_timestamp(l.start_hour * 3600) AS start_at,
           to_timestamp(l.end_hour * 3600) AS end_at, l.qty, l.price_micros
    FROM ledger_leases l JOIN ledger_markets m USING (market_id);

CREATE VIEW gpux_fees AS
    SELECT trade_id, seq, kind, debit_account_id AS payer_id, amount_micros
    FROM ledger_transfers WHERE kind IN ('buyer_fee', 'provider_fee');
