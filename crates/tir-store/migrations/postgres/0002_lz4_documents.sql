-- Large documents are compressed with LZ4: the default (pglz) was a large
-- share of PostgreSQL's CPU in the bench profile (docs/performance.md). Only
-- new values are affected. A server built without LZ4 keeps pglz: the
-- statements run through EXECUTE so that their error can be caught here.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE journal ALTER COLUMN body SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE idempotency ALTER COLUMN body SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE guarantees ALTER COLUMN doc SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'LZ4 compression unavailable; documents stay pglz-compressed';
END
$$;
