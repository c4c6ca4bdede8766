//! How long stored answers are kept. An accepted message's answer (status
//! 200) is kept as long as the journal; a refusal's (any other status) for a
//! retention window, after which the same message id may be sent again and is
//! then applied anew (docs/etir-binding.md, "Messages"). Without a window, a
//! party sending rejected messages grows the store without bound.
//!
//! Each backend's writer prunes expired refusals itself, in passes of at most
//! `StoreOptions::prune_rows_per_pass` rows, each pass a write transaction of
//! its own run before a batch (on PostgreSQL under the writers' advisory
//! lock), so pruning serializes with writes. A pass is due when the batch's
//! time (the writer's clock, as stamped on its first command) has reached the
//! time `Pruning` set: `PRUNE_INTERVAL` after a pass that left nothing
//! expired behind, or at once after a full pass (a backlog). A full pass
//! deletes more rows than a batch can store, so pruning keeps up with any rate
//! of refusals. A refusal is therefore replayed for at least the window, and
//! pruned at the first batch `PRUNE_INTERVAL` after that at the latest (given
//! no backlog).

use std::time::Duration;

/// How long a refusal's answer is kept: as payment APIs keep idempotency keys.
pub const REFUSAL_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// The most stored refusals one pruning pass deletes: bounds the time a pass
/// holds the write lock.
pub const PRUNE_ROWS_PER_PASS: usize = 1_000;

/// How long after a pass that found no backlog the writer looks again.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(10);

/// What a store is opened with, beside its `Env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a refusal's answer is replayed; accepted answers are kept forever.
    pub refusal_retention: Duration,
    /// The most refusals one pruning pass deletes (at least 1).
    pub prune_rows_per_pass: usize,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions { refusal_retention: REFUSAL_RETENTION, prune_rows_per_pass: PRUNE_ROWS_PER_PASS }
    }
}

impl StoreOptions {
    /// These options with refusals kept for `retention`.
    pub fn with_refusal_retention(self, retention: Duration) -> StoreOptions {
        StoreOptions { refusal_retention: retention, ..self }
    }

    /// These options with at most `rows` refusals deleted per pass.
    pub fn with_prune_rows_per_pass(self, rows: usize) -> StoreOptions {
        StoreOptions { prune_rows_per_pass: rows, ..self }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// When the writer's next pruning pass is due, and what it deletes.
#[derive(Debug, Clone)]
pub(crate) struct Pruning {
    retention_ms: i64,
    rows_per_pass: usize,
    /// Writer time at which a pass is next due; the first batch runs one.
    next_due_ms: i64,
}

/// One pass to run: delete refusals stored before `stored_before_ms`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    pub stored_before_ms: i64,
    pub limit: usize,
}

impl Pruning {
    pub fn new(options: &StoreOptions) -> Pruning {
        Pruning {
            retention_ms: millis(options.refusal_retention),
            rows_per_pass: options.prune_rows_per_pass.max(1),
            next_due_ms: i64::MIN,
        }
    }

    /// The pass to run before a batch stamped `now_ms`, if one is due.
    pub fn due(&self, now_ms: i64) -> Option<Pass> {
        (now_ms >= self.next_due_ms)
            .then(|| Pass { stored_before_ms: now_ms.saturating_sub(self.retention_ms), limit: self.rows_per_pass })
    }

    /// Records a pass run at `now_ms`: `Ok(deleted)`, or `Err` if it failed (rolled back).
    pub fn done(&mut self, now_ms: i64, deleted: Result<usize, ()>) {
        self.next_due_ms = match deleted {
            Ok(n) if n >= self.rows_per_pass => now_ms,
            _ => now_ms.saturating_add(millis(PRUNE_INTERVAL)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_due_at_once_after_a_full_pass_and_after_the_interval_otherwise() {
        let mut p = Pruning::new(&StoreOptions::default().with_refusal_retention(Duration::from_secs(1)));
        let now = 1_000_000;
        assert_eq!(p.due(now), Some(Pass { stored_before_ms: now - 1_000, limit: PRUNE_ROWS_PER_PASS }));
        p.done(now, Ok(3));
        assert_eq!(p.due(now + 1), None);
        assert!(p.due(now + millis(PRUNE_INTERVAL)).is_some());
        p.done(now, Ok(PRUNE_ROWS_PER_PASS));
        assert!(p.due(now).is_some(), "a backlog is pruned at the next batch");
        p.done(now, Err(()));
        assert_eq!(p.due(now + 1), None, "a failed pass waits for the interval");
    }

    #[test]
    fn a_pass_deletes_at_least_one_row() {
        let p = Pruning::new(&StoreOptions::default().with_prune_rows_per_pass(0));
        assert_eq!(p.due(0).unwrap().limit, 1);
    }
}
