//! Copying the WAL back into the database file, off the writer's commit path.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

/// How often the WAL is copied back into the database file. Short passes keep
/// the backlog small, so the writer's own pass before a WAL reset is short too.
pub(super) const CHECKPOINT_INTERVAL_MS: u64 = 20;
/// Past this size the writer lets the WAL start over (see `reset_wal_if_wanted`).
/// Under constant load PASSIVE checkpoints never find a moment when every frame
/// is copied, so without this the WAL would only grow. Larger WALs made each
/// reset, and so the p99 latency, longer (docs/performance.md).
pub(super) const WAL_BYTES_MAX: i64 = 32 << 20;

/// Shared by the writer and the checkpoint thread.
#[derive(Default)]
pub(super) struct Checkpoints {
    /// Held while either runs a checkpoint, so neither waits in SQLite's busy handler.
    running: Mutex<()>,
    /// The WAL is past `WAL_BYTES_MAX`: the writer finishes the checkpoint between two batches.
    reset_wanted: AtomicBool,
    pub stop: AtomicBool,
}

/// Runs a checkpoint; returns the number of frames in the WAL.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get::<_, i64>(1))
}

/// Copies the WAL into the database without blocking the writer (PASSIVE),
/// so commits only append to the WAL and fsync it.
pub(super) fn checkpoint_loop(conn: Connection, shared: Arc<Checkpoints>) {
    use std::sync::atomic::Ordering::Relaxed;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap_or(4096);
    while !shared.stop.load(Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(CHECKPOINT_INTERVAL_MS));
        let _running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
        match checkpoint(&conn, "PASSIVE") {
            Ok(frames) if frames * page_size > WAL_BYTES_MAX => shared.reset_wanted.store(true, Relaxed),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying"),
        }
    }
}

/// Run by the writer between batches: it copies the few frames written since
/// the checkpoint thread's last pass, so the WAL is fully copied and the next
/// write transaction starts it over. PASSIVE, not RESTART: RESTART sleeps in
/// the busy handler while a reader is open; if a reader keeps the WAL from
/// starting over, the next pass asks again. RESTART resets also took longer
/// (docs/performance.md).
pub(super) fn reset_wal_if_wanted(conn: &Connection, shared: &Checkpoints) {
    use std::sync::atomic::Ordering::Relaxed;
    if !shared.reset_wanted.swap(false, Relaxed) {
        return;
    }
    let _running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = checkpoint(conn, "PASSIVE") {
        tracing::warn!(error = %e, "WAL checkpoint before reset failed; retrying later");
        shared.reset_wanted.store(true, Relaxed);
    }
}
