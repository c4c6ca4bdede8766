//! The write half every backend shares: commands queue for one writer, which
//! takes up to `BATCH_COMMANDS_MAX` of them at a time, stamps each with its
//! time and id, runs them in one transaction, and if that fails runs them
//! again one by one so one failing write cannot fail the others.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use tokio::sync::{mpsc, oneshot};

use crate::engine::{BATCH_COMMANDS_MAX, Command, Reply};
use crate::env::{Env, Stamp};
use crate::retention::Pruning;
use crate::{Result, StoreError};

/// Where the answer to one queued command goes.
pub(crate) type Waiter = oneshot::Sender<Result<Reply>>;

/// A command as queued for the writer, with where its answer goes.
pub(crate) type Job = (Command, Waiter);

/// Commands waiting for the writer beyond one full batch.
const QUEUED_COMMANDS_MAX: usize = BATCH_COMMANDS_MAX * 4;

/// The sending end of the writer's queue: `Store::write` for the durable backends.
pub(crate) struct Writes {
    queue: mpsc::Sender<Job>,
    /// Commands ever queued: lets a background writer tell a quiet writer
    /// from a busy one across its own calls (`Store::writes_queued`).
    queued: std::sync::atomic::AtomicU64,
}

impl Writes {
    /// The queue, and the receiving end for the backend's writer.
    pub(crate) fn channel() -> (Writes, mpsc::Receiver<Job>) {
        let (queue, jobs) = mpsc::channel(QUEUED_COMMANDS_MAX);
        (Writes { queue, queued: std::sync::atomic::AtomicU64::new(0) }, jobs)
    }

    /// Commands queued and not yet taken by the writer.
    pub(crate) fn depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Commands queued since the store opened.
    pub(crate) fn queued(&self) -> u64 {
        self.queued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Queues `command` and waits for the writer's answer.
    pub(crate) async fn write(&self, command: Command) -> Result<Reply> {
        self.queued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (done, answer) = oneshot::channel();
        self.queue.send((command, done)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// Commands taken from the queue together, each with its stamp and waiter.
#[derive(Default)]
pub(crate) struct Batch {
    pub commands: Vec<Command>,
    pub stamps: Vec<Stamp>,
    pub waiters: Vec<Waiter>,
}

impl Batch {
    /// `first` and whatever else is queued, up to `BATCH_COMMANDS_MAX`, each
    /// stamped from `env` in queue order.
    pub(crate) fn drain(first: Job, jobs: &mut mpsc::Receiver<Job>, env: &mut Env) -> Batch {
        let mut batch = Batch::default();
        batch.push(first, env);
        while batch.commands.len() < BATCH_COMMANDS_MAX {
            match jobs.try_recv() {
                Ok(job) => batch.push(job, env),
                Err(_) => break,
            }
        }
        batch
    }

    fn push(&mut self, (command, waiter): Job, env: &mut Env) {
        self.stamps.push(env.stamp(&command));
        self.commands.push(command);
        self.waiters.push(waiter);
    }

    /// The writer's time for this batch: its first command's stamp.
    pub(crate) fn now_ms(&self) -> i64 {
        self.stamps.first().map_or(i64::MIN, |s| s.at_ms)
    }

    /// Pairs each waiter with its result.
    pub(crate) fn answers(self, results: Vec<Result<Reply>>) -> Vec<(Waiter, Result<Reply>)> {
        debug_assert_eq!(self.waiters.len(), results.len());
        self.waiters.into_iter().zip(results).collect()
    }
}

/// A backend's writer: runs commands in one transaction, rolled back on error.
pub(crate) trait BatchWriter {
    /// Named in the log when a batch is rolled back.
    const BACKEND: &'static str;
    async fn write_batch(&mut self, commands: &[Command], stamps: &[Stamp]) -> Result<Vec<Reply>>;
    /// Deletes at most `limit` stored refusals stored before `stored_before_ms`
    /// (oldest first) in a write transaction of its own; returns how many.
    async fn prune_refusals(&mut self, stored_before_ms: i64, limit: usize) -> Result<usize>;
}

/// Runs a pruning pass before `batch` if one is due (see `retention`). A
/// failed pass is logged and retried later; it never fails the batch.
pub(crate) async fn prune_if_due<W: BatchWriter>(writer: &mut W, pruning: &mut Pruning, batch: &Batch) {
    let now_ms = batch.now_ms();
    let Some(pass) = pruning.due(now_ms) else { return };
    let deleted = match writer.prune_refusals(pass.stored_before_ms, pass.limit).await {
        Ok(deleted) => {
            if deleted > 0 {
                tracing::debug!(deleted, backend = W::BACKEND, "expired refusals pruned");
            }
            Ok(deleted)
        }
        Err(e) => {
            tracing::warn!(error = %e, backend = W::BACKEND, "pruning expired refusals failed; retried later");
            Err(())
        }
    };
    pruning.done(now_ms, deleted);
}

/// Writes the batch; if it fails, writes each command alone, so one failing
/// write cannot fail the others batched with it.
pub(crate) async fn write_isolated<W: BatchWriter>(writer: &mut W, batch: &Batch) -> Vec<Result<Reply>> {
    let (commands, stamps) = (&batch.commands[..], &batch.stamps[..]);
    let failed = match writer.write_batch(commands, stamps).await {
        Ok(replies) => return replies.into_iter().map(Ok).collect(),
        Err(e) => e,
    };
    if commands.len() == 1 {
        tracing::error!(error = %failed, backend = W::BACKEND, "write rolled back");
        return vec![Err(StoreError::Write(failed.to_string()))];
    }
    tracing::warn!(error = %failed, backend = W::BACKEND, commands = commands.len(), "batch rolled back; writing its commands one by one");
    let mut results = Vec::with_capacity(commands.len());
    for (command, stamp) in commands.chunks(1).zip(stamps.chunks(1)) {
        results.push(match writer.write_batch(command, stamp).await {
            Ok(mut replies) => Ok(replies.remove(0)),
            Err(e) => Err(StoreError::Write(e.to_string())),
        });
    }
    results
}

/// Runs a future that completes without waiting (the SQLite and in-memory
/// transactions never wait): polls it once.
pub(crate) fn block_on_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("the transaction's futures complete without waiting"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_depth_counts_commands_queued_and_not_yet_taken() {
        let (writes, mut jobs) = Writes::channel();
        let writes = std::sync::Arc::new(writes);
        assert_eq!(writes.depth(), 0);
        let mut waiting = Vec::new();
        for id in ["a", "b", "c"] {
            let writes = writes.clone();
            waiting.push(tokio::spawn(async move { writes.write(Command::RevokeParty(id.into())).await }));
        }
        while writes.depth() < 3 {
            tokio::task::yield_now().await;
        }
        let (_, done) = jobs.recv().await.expect("a job");
        assert_eq!(writes.depth(), 2, "one taken by the writer");
        let _ = done.send(Err(StoreError::Closed));
        drop(jobs);
        for task in waiting {
            assert!(task.await.expect("no panic").is_err());
        }
        assert_eq!(writes.depth(), 0);
    }
}
