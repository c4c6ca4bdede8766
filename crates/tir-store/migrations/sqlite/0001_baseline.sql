-- The schema as tirhub had it when migrations began. Written with IF NOT
-- EXISTS because it also adopts databases made before then (see schema.rs);
-- later migrations are applied exactly once and need no such guard.
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, sender TEXT NOT NULL, message_type TEXT NOT NULL,
    message_id TEXT NOT NULL, reference TEXT NOT NULL, body TEXT NOT NULL, body_hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS guarantees (
    reference TEXT PRIMARY KEY, holder TEXT NOT NULL, chain TEXT NOT NULL, state TEXT NOT NULL,
    doc TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL, kind TEXT NOT NULL,
    reference TEXT NOT NULL, payload TEXT NOT NULL, created_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_by_recipient ON outbox (recipient, cursor);
CREATE TABLE IF NOT EXISTS parties (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, country TEXT, tir_id TEXT,
    token_hash TEXT NOT NULL UNIQUE, created_at_ms INTEGER NOT NULL, revoked_at_ms INTEGER);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, reference TEXT NOT NULL, at_ms INTEGER NOT NULL, message_type TEXT NOT NULL,
    party TEXT NOT NULL, office TEXT, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_reference ON events (reference, id);
CREATE TABLE IF NOT EXISTS offices (code TEXT PRIMARY KEY, country TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS holders (tir_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
-- Stored answers: an append-only log found through an in-memory map of key
-- hashes, rebuilt at open from the narrow idempotency_keys (see idempotency.rs).
CREATE TABLE IF NOT EXISTS idempotency_log (
    id INTEGER PRIMARY KEY, sender TEXT NOT NULL, message_id TEXT NOT NULL,
    body_hash TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency_keys (id INTEGER PRIMARY KEY, key_hash INTEGER NOT NULL);
