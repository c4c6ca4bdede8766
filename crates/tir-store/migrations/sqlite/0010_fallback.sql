-- The fallback procedure (TIR Convention, Annex 11, Art. 10; etir-binding.md,
-- "Fallback procedure"): declared periods, and on the transport's timeline
-- when a message recorded late happened and under which period.
CREATE TABLE fallback_periods (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, from_ms INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX fallback_periods_by_scope ON fallback_periods (scope, from_ms);
ALTER TABLE events ADD COLUMN occurred_at_ms INTEGER;
ALTER TABLE events ADD COLUMN fallback_period TEXT;
CREATE INDEX events_by_fallback_period ON events (fallback_period, reference) WHERE fallback_period IS NOT NULL;
-- The reconciliation looks for operations open during a period among the
-- guarantees not released.
CREATE INDEX guarantees_by_state ON guarantees (state, reference);
