-- The schema as tirhub had it when migrations began. Written with IF NOT
-- EXISTS because it also adopts databases made before then (see schema.rs);
-- later migrations are applied exactly once and need no such guard.
--
-- Key columns use the "C" collation: they are compared byte for byte, and
-- locale-aware comparison (strcoll) showed in profiles of the write path.
-- Guarantees are rewritten by every message: free space on their pages lets
-- PostgreSQL update them in place (HOT) without a new primary-key entry.
CREATE TABLE IF NOT EXISTS journal (
    seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, sender TEXT NOT NULL, message_type TEXT NOT NULL,
    message_id TEXT NOT NULL, reference TEXT NOT NULL, body TEXT NOT NULL, body_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    sender TEXT COLLATE "C" NOT NULL, message_id TEXT COLLATE "C" NOT NULL, body_hash TEXT NOT NULL,
    status INT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (sender, message_id));
CREATE TABLE IF NOT EXISTS guarantees (
    reference TEXT COLLATE "C" PRIMARY KEY, holder TEXT NOT NULL, chain TEXT NOT NULL, state TEXT NOT NULL,
    doc TEXT NOT NULL, updated_at_ms BIGINT NOT NULL) WITH (fillfactor = 70);
CREATE TABLE IF NOT EXISTS outbox (
    cursor BIGSERIAL PRIMARY KEY, recipient TEXT COLLATE "C" NOT NULL, kind TEXT NOT NULL,
    reference TEXT NOT NULL, payload TEXT NOT NULL, created_at_ms BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_by_recipient ON outbox (recipient, cursor);
CREATE TABLE IF NOT EXISTS parties (
    id TEXT COLLATE "C" PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, country TEXT, tir_id TEXT,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE, created_at_ms BIGINT NOT NULL, revoked_at_ms BIGINT);
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY, reference TEXT COLLATE "C" NOT NULL, at_ms BIGINT NOT NULL,
    message_type TEXT NOT NULL, party TEXT NOT NULL, office TEXT, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_reference ON events (reference, id);
CREATE TABLE IF NOT EXISTS offices (code TEXT COLLATE "C" PRIMARY KEY, country TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS holders (tir_id TEXT COLLATE "C" PRIMARY KEY, doc TEXT NOT NULL);
