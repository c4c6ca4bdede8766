-- Refusals (any status but 200) are kept for a retention window and then
-- pruned by the writer (see retention.rs); accepted answers stay as long as
-- the journal. Each answer records when the writer stored it (its clock).
-- Rows stored before this migration count as stored now: the default is
-- evaluated once, by this ALTER (no table rewrite), then dropped, since every
-- insert gives the writer's time.
ALTER TABLE idempotency ADD COLUMN stored_at_ms BIGINT NOT NULL
    DEFAULT (extract(epoch FROM now()) * 1000)::bigint;
ALTER TABLE idempotency ALTER COLUMN stored_at_ms DROP DEFAULT;
-- Only refusals are indexed, in the order they are stored: new entries go to
-- the index's right edge, and accepted answers cost no index write at all.
CREATE INDEX idempotency_refusals ON idempotency (stored_at_ms) WHERE status <> 200;
