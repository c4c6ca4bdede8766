-- Refusals (any status but 200) are kept for a retention window and then
-- pruned by the writer (see retention.rs); accepted answers stay as long as
-- the journal. Each answer records when the writer stored it (its clock).
-- Refusals stored before this migration count as stored now: their window
-- starts at the upgrade. Accepted rows keep 0, which nothing reads.
ALTER TABLE idempotency_log ADD COLUMN stored_at_ms INTEGER NOT NULL DEFAULT 0;
UPDATE idempotency_log SET stored_at_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    WHERE status <> 200;
-- Only refusals are indexed, in the order they are stored: new entries go to
-- the index's right edge, and accepted answers cost no index write at all.
CREATE INDEX idempotency_log_refusals ON idempotency_log (stored_at_ms) WHERE status <> 200;
