-- Reads of the console (docs/console.md): the journal entries of one
-- transport, and the guarantees of a holder or of a chain, newest reference
-- first, without scanning the tables.
CREATE INDEX IF NOT EXISTS journal_by_reference ON journal (reference, seq);
CREATE INDEX IF NOT EXISTS guarantees_by_holder ON guarantees (holder, reference);
CREATE INDEX IF NOT EXISTS guarantees_by_chain ON guarantees (chain, reference);
