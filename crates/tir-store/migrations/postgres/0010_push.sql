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
    registered_at_ms BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    confirmed_cursor BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    first_failure_ms BIGINT,
    next_attempt_ms BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until_ms BIGINT NOT NULL
);

-- Every delivery attempt, in the order made; `confirmed` is 1 for a 2xx answer.
CREATE TABLE push_attempts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    party TEXT NOT NULL,
    cursor BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    http_status BIGINT,
    error TEXT,
    next_attempt_ms BIGINT,
    confirmed BIGINT NOT NULL
);
CREATE INDEX push_attempts_by_item ON push_attempts (party, cursor, id);
