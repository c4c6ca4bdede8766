-- Push notifications (docs/etir-binding.md, "Push notifications"): one endpoint
-- per party, with its delivery state. The secret signs each delivery, so it is
-- kept; it is never journaled or shown. `confirmed_cursor` is the last feed
-- item the party confirmed (a 2xx answer): delivery resumes after it. The
-- lease (`lease_owner` until `lease_until_ms`) lets one server at a time
-- deliver to an endpoint; it is taken and released through the writer.
CREATE TABLE push_endpoints (
    party TEXT PRIMARY KEY,
    feed TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    status TEXT NOT NULL,
    paused_reason TEXT,
    registered_at_ms INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    confirmed_cursor INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    first_failure_ms INTEGER,
    next_attempt_ms INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until_ms INTEGER NOT NULL
);

-- Every delivery attempt, in the order made; `confirmed` is 1 for a 2xx answer.
CREATE TABLE push_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    party TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    http_status INTEGER,
    error TEXT,
    next_attempt_ms INTEGER,
    confirmed INTEGER NOT NULL
);
CREATE INDEX push_attempts_by_item ON push_attempts (party, cursor, id);
