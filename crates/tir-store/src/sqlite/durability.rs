//! When a SQLite write is on disk. The writer commits without waiting for the
//! disk (synchronous=NORMAL) and hands each batch's answers to the sync
//! thread, which fsyncs the WAL once for every batch queued since its last
//! fsync and only then answers them; reads wait for the fsync that covers
//! what they saw.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::writer::Waiter;
use crate::{Reply, Result, StoreError};

/// Commit numbers shared by the writer, the sync thread and readers.
///
/// The writer counts a commit in `committing` before it runs COMMIT, so a
/// reader that saw a commit reads a count at least as high afterwards; it
/// then waits until `durable` (set by the sync thread after its fsync)
/// reaches that count.
#[derive(Default)]
pub(super) struct Durability {
    pub committing: AtomicU64,
    durable: Mutex<u64>,
    synced: Condvar,
    /// An fsync failed: from then on nothing can be promised durable.
    pub failed: AtomicBool,
    /// The sync thread has ended (the writer stopped): nothing more becomes durable.
    closed: AtomicBool,
    /// Batches the sync thread has answered; the writer compares it with how many it sent.
    pub batches_answered: AtomicU64,
}

impl Durability {
    pub fn wait_for(&self, commit: u64) -> Result<()> {
        let mut durable = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        while *durable < commit {
            if self.failed.load(Ordering::SeqCst) {
                return Err(fsync_failed());
            }
            if self.closed.load(Ordering::SeqCst) {
                return Err(StoreError::Closed);
            }
            durable = self.synced.wait(durable).unwrap_or_else(|e| e.into_inner());
        }
        Ok(())
    }

    fn is_durable(&self, commit: u64) -> bool {
        *self.durable.lock().unwrap_or_else(|e| e.into_inner()) >= commit
    }

    fn publish(&self, commit: u64) {
        let mut durable = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        *durable = (*durable).max(commit);
        self.synced.notify_all();
    }

    fn fail(&self) {
        self.set_and_wake(&self.failed);
    }

    fn close(&self) {
        self.set_and_wake(&self.closed);
    }

    /// Sets `flag` under the lock waiters check it under, then wakes them.
    fn set_and_wake(&self, flag: &AtomicBool) {
        let _durable = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        flag.store(true, Ordering::SeqCst);
        self.synced.notify_all();
    }
}

pub(super) fn fsync_failed() -> StoreError {
    StoreError::Write(
        "an fsync of the WAL failed: writes since the last good one may not be durable; restart the server".into(),
    )
}

/// Answers for one batch, sent once every commit up to `upto` is durable.
pub(super) struct Synced {
    pub upto: u64,
    pub answers: Vec<(Waiter, Result<Reply>)>,
}

/// Fsyncs the WAL once for all the batches queued since the last fsync, then
/// answers them. The writer meanwhile commits the next batch, so its CPU work
/// and the disk's work overlap.
pub(super) fn sync_loop(wal_path: PathBuf, pending: std::sync::mpsc::Receiver<Synced>, durability: Arc<Durability>) {
    let mut wal = WalSync::new(wal_path);
    while let Ok(first) = pending.recv() {
        let mut batches = vec![first];
        batches.extend(pending.try_iter());
        let count = batches.len() as u64;
        wal.sync_and_answer(batches, &durability);
        durability.batches_answered.fetch_add(count, Ordering::SeqCst);
    }
    // A read still waiting for a commit the writer counted but never handed over.
    durability.close();
}

/// The writer's WAL, opened again for fsync: SQLite keeps the file (same
/// inode) while the writer's connection is open.
pub(super) struct WalSync {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl WalSync {
    pub fn new(path: PathBuf) -> WalSync {
        WalSync { path, file: None }
    }

    /// Writes the WAL's data (and its size) to disk.
    fn sync(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(std::fs::File::open(&self.path)?);
        }
        self.file.as_ref().map_or(Ok(()), std::fs::File::sync_data)
    }

    /// Fsyncs unless every commit up to the batches' is durable already, then
    /// answers them; after a failed fsync, answers only errors.
    pub fn sync_and_answer(&mut self, batches: Vec<Synced>, durability: &Durability) {
        let upto = batches.iter().map(|b| b.upto).max().unwrap_or(0);
        let failed = || durability.failed.load(Ordering::SeqCst);
        let outcome = if !failed() && !durability.is_durable(upto) { self.sync() } else { Ok(()) };
        match outcome {
            Ok(()) if !failed() => {
                durability.publish(upto);
                for (waiter, answer) in batches.into_iter().flat_map(|b| b.answers) {
                    let _ = waiter.send(answer);
                }
            }
            outcome => {
                if let Err(e) = outcome {
                    tracing::error!(error = %e, path = %self.path.display(), "fsync of the WAL failed; no write is acknowledged from now on");
                }
                durability.fail();
                for (waiter, _) in batches.into_iter().flat_map(|b| b.answers) {
                    let _ = waiter.send(Err(fsync_failed()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    fn batch(upto: u64, body: &str) -> (Synced, oneshot::Receiver<Result<Reply>>) {
        let (waiter, answer) = oneshot::channel();
        let reply = Ok(Reply { status: 200, body: body.into() });
        (Synced { upto, answers: vec![(waiter, reply)] }, answer)
    }

    fn start(wal: PathBuf) -> (std::sync::mpsc::Sender<Synced>, Arc<Durability>, std::thread::JoinHandle<()>) {
        let durability = Arc::new(Durability::default());
        let (to_sync, pending) = std::sync::mpsc::channel();
        let for_sync = durability.clone();
        let thread = std::thread::spawn(move || sync_loop(wal, pending, for_sync));
        (to_sync, durability, thread)
    }

    #[test]
    fn batches_are_answered_after_the_fsync_that_covers_them() {
        let wal = std::env::temp_dir().join(format!("tirhub-sync-test-{}.db-wal", crate::token::random_hex(6)));
        std::fs::write(&wal, b"frames").unwrap();
        let (to_sync, durability, thread) = start(wal.clone());
        durability.committing.store(2, Ordering::SeqCst);
        let (first, first_answer) = batch(1, "one");
        let (second, second_answer) = batch(2, "two");
        to_sync.send(first).unwrap();
        to_sync.send(second).unwrap();
        durability.wait_for(2).unwrap();
        assert_eq!(*durability.durable.lock().unwrap(), 2);
        assert_eq!(first_answer.blocking_recv().unwrap().unwrap().body, "one");
        assert_eq!(second_answer.blocking_recv().unwrap().unwrap().body, "two");
        drop(to_sync);
        thread.join().unwrap();
        std::fs::remove_file(wal).unwrap();
    }

    #[test]
    fn a_read_waiting_for_a_commit_that_never_comes_ends_when_the_sync_thread_does() {
        let wal = std::env::temp_dir().join(format!("tirhub-sync-test-{}.db-wal", crate::token::random_hex(6)));
        let (to_sync, durability, thread) = start(wal);
        // Counted by a writer that then stopped before handing the batch over.
        durability.committing.store(1, Ordering::SeqCst);
        let reader = {
            let durability = durability.clone();
            std::thread::spawn(move || durability.wait_for(1))
        };
        drop(to_sync);
        thread.join().unwrap();
        assert!(matches!(reader.join().unwrap(), Err(StoreError::Closed)));
    }

    #[test]
    fn a_failed_fsync_answers_errors_and_fails_every_later_write_and_read() {
        // No such file: the fsync cannot happen, so nothing may be acknowledged.
        let wal = std::env::temp_dir().join("tirhub-sync-test-missing-dir").join("db-wal");
        let (to_sync, durability, thread) = start(wal);
        durability.committing.store(1, Ordering::SeqCst);
        let (first, first_answer) = batch(1, "one");
        to_sync.send(first).unwrap();
        let error = first_answer.blocking_recv().unwrap().unwrap_err();
        assert!(error.to_string().contains("fsync of the WAL failed"), "{error}");
        assert!(durability.wait_for(1).is_err(), "a reader of the unsynced commit gets an error");
        assert_eq!(*durability.durable.lock().unwrap(), 0);
        // Even a batch with nothing new to sync is refused once an fsync has failed.
        let (later, later_answer) = batch(1, "later");
        to_sync.send(later).unwrap();
        assert!(later_answer.blocking_recv().unwrap().is_err());
        drop(to_sync);
        thread.join().unwrap();
    }
}
