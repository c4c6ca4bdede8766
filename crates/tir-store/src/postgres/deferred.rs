//! What a PostgreSQL write transaction defers to its commit: the message
//! path's inserts, gathered column by column and written as one multi-row
//! INSERT per table (arrays in, `unnest` out) in the round trip that commits.

use futures_util::future::try_join;
use tir_model::guarantee::{Event, Guarantee};

use crate::Result;
use crate::console::{ArrivalWrite, CrossingRow};
use crate::engine::{OutboxItem, Reply};
use crate::journal::JournalEntry;
use crate::rows::to_doc;

/// Rows to insert at the end of the batch, column by column.
#[derive(Default)]
pub(super) struct Deferred {
    journal: JournalColumns,
    replies: ReplyColumns,
    events: EventColumns,
    outbox: OutboxColumns,
    /// The batch's changes to the arrivals, one per (country, reference), merged in order.
    arrivals: Vec<ArrivalWrite>,
    crossings: Vec<CrossingRow>,
}

#[derive(Default)]
struct JournalColumns {
    seq: Vec<i64>,
    at_ms: Vec<i64>,
    sender: Vec<String>,
    message_type: Vec<String>,
    message_id: Vec<String>,
    reference: Vec<String>,
    body: Vec<String>,
    body_hash: Vec<String>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
    holder_signature: Vec<Option<String>>,
}

#[derive(Default)]
struct ReplyColumns {
    sender: Vec<String>,
    message_id: Vec<String>,
    body_hash: Vec<String>,
    status: Vec<i32>,
    body: Vec<String>,
    stored_at_ms: Vec<i64>,
}

#[derive(Default)]
struct EventColumns {
    reference: Vec<String>,
    at_ms: Vec<i64>,
    message_type: Vec<String>,
    party: Vec<String>,
    office: Vec<Option<String>>,
    summary: Vec<String>,
    occurred_at_ms: Vec<Option<i64>>,
    fallback_period: Vec<Option<String>>,
}

#[derive(Default)]
struct OutboxColumns {
    recipient: Vec<String>,
    kind: Vec<String>,
    reference: Vec<String>,
    payload: Vec<String>,
    at_ms: Vec<i64>,
}

#[derive(Default)]
pub(super) struct GuaranteeColumns {
    reference: Vec<String>,
    holder: Vec<String>,
    chain: Vec<String>,
    state: Vec<String>,
    doc: Vec<String>,
    at_ms: Vec<i64>,
}

impl GuaranteeColumns {
    pub fn push(&mut self, g: &Guarantee, at_ms: i64) {
        self.reference.push(g.reference.to_string());
        self.holder.push(g.holder.to_string());
        self.chain.push(g.chain.clone());
        self.state.push(g.state.as_str().to_owned());
        self.doc.push(to_doc(g));
        self.at_ms.push(at_ms);
    }
}

// The deferred inserts: arrays in, one statement per table; WITH ORDINALITY keeps journal and outbox order.
const JOURNAL_INSERT: &str =
    "INSERT INTO journal (seq, at_ms, sender, message_type, message_id, reference, body, body_hash, prev_hash, hash,
                         holder_signature)
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])";
const REPLIES_INSERT: &str = "INSERT INTO idempotency (sender, message_id, body_hash, status, body, stored_at_ms)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::bigint[])";
const GUARANTEES_INSERT: &str = "INSERT INTO guarantees (reference, holder, chain, state, doc, updated_at_ms)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
    ON CONFLICT (reference) DO UPDATE SET state = excluded.state, doc = excluded.doc, updated_at_ms = excluded.updated_at_ms";
const EVENTS_INSERT: &str = "INSERT INTO events
        (reference, at_ms, message_type, party, office, summary, occurred_at_ms, fallback_period)
    SELECT reference, at_ms, message_type, party, office, summary, occurred_at_ms, fallback_period
    FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[])
         WITH ORDINALITY AS t(reference, at_ms, message_type, party, office, summary, occurred_at_ms, fallback_period, n)
    ORDER BY n";
const OUTBOX_INSERT: &str = "INSERT INTO outbox (recipient, kind, reference, payload, created_at_ms)
    SELECT recipient, kind, reference, payload, created_at_ms
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
         WITH ORDINALITY AS t(recipient, kind, reference, payload, created_at_ms, n)
    ORDER BY n";

const ARRIVALS_ANNOUNCE: &str = "INSERT INTO arrivals (country, reference, announced_ms, ahead)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[])
    ON CONFLICT (country, reference) DO UPDATE SET ahead = excluded.ahead";
const ARRIVALS_UPDATE: &str = "UPDATE arrivals a SET ahead = t.ahead
    FROM unnest($1::text[], $2::text[], $3::int[]) AS t(country, reference, ahead)
    WHERE a.country = t.country AND a.reference = t.reference";
const CROSSINGS_INSERT: &str = "INSERT INTO crossings (reference, operation, exit_country, entry_country, exit_office,
                           entry_office, crossing_point, terminated_at_ms, started_at_ms)
    SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::bigint[], $9::bigint[])
    ON CONFLICT (reference, operation) DO NOTHING";

impl Deferred {
    /// A change of the arrivals: merged into the batch's earlier one for the same row, so that
    /// each row is written once (a row is made by the first announcement, keeps the last `ahead`).
    pub fn arrival(&mut self, a: &ArrivalWrite) {
        match self.arrivals.iter_mut().find(|b| b.country == a.country && b.reference == a.reference) {
            Some(b) => {
                if a.announce && !b.announce {
                    b.announce = true;
                    b.at_ms = a.at_ms;
                }
                b.ahead = a.ahead;
            }
            None => self.arrivals.push(a.clone()),
        }
    }

    pub fn crossing(&mut self, c: &CrossingRow) {
        self.crossings.push(c.clone());
    }

    pub fn journal(&mut self, e: &JournalEntry) {
        let j = &mut self.journal;
        j.seq.push(e.seq);
        j.at_ms.push(e.at_ms);
        j.sender.push(e.sender.clone());
        j.message_type.push(e.message_type.clone());
        j.message_id.push(e.message_id.clone());
        j.reference.push(e.reference.clone());
        j.body.push(e.body.clone());
        j.body_hash.push(e.body_hash.clone());
        j.prev_hash.push(e.prev_hash.clone());
        j.hash.push(e.hash.clone());
        j.holder_signature.push(e.holder_signature.as_ref().map(crate::HolderSignature::to_column));
    }

    pub fn reply(&mut self, [sender, message_id, body_hash]: [&str; 3], reply: &Reply, at_ms: i64) {
        let r = &mut self.replies;
        r.stored_at_ms.push(at_ms);
        r.sender.push(sender.to_owned());
        r.message_id.push(message_id.to_owned());
        r.body_hash.push(body_hash.to_owned());
        r.status.push(reply.status as i32);
        r.body.push(reply.body.clone());
    }

    pub fn event(&mut self, reference: &str, e: &Event) {
        let v = &mut self.events;
        v.reference.push(reference.to_owned());
        v.at_ms.push(e.at.unix_ms());
        v.message_type.push(e.message_type.clone());
        v.party.push(e.party.clone());
        v.office.push(e.office.as_ref().map(|o| o.to_string()));
        v.summary.push(e.summary.clone());
        v.occurred_at_ms.push(e.occurred_at.map(|t| t.unix_ms()));
        v.fallback_period.push(e.fallback_period.clone());
    }

    pub fn notification(&mut self, item: &OutboxItem<'_>) {
        let o = &mut self.outbox;
        o.recipient.push(item.recipient.to_owned());
        o.kind.push(item.kind.to_owned());
        o.reference.push(item.reference.to_owned());
        o.payload.push(item.payload.to_owned());
        o.at_ms.push(item.at_ms);
    }

    /// Sends the deferred inserts and COMMIT behind them, in one round trip.
    pub async fn write_and_commit(self, tx: &deadpool_postgres::Client, g: GuaranteeColumns) -> Result<()> {
        let d = self;
        // Every statement is prepared before any is sent: an insert still waiting
        // on its prepare would let the COMMIT below overtake it.
        let journal_stmt = tx.prepare_cached(JOURNAL_INSERT).await?;
        let replies_stmt = tx.prepare_cached(REPLIES_INSERT).await?;
        let guarantees_stmt = tx.prepare_cached(GUARANTEES_INSERT).await?;
        let events_stmt = tx.prepare_cached(EVENTS_INSERT).await?;
        let outbox_stmt = tx.prepare_cached(OUTBOX_INSERT).await?;
        let journal = async {
            if d.journal.seq.is_empty() {
                return Ok(0);
            }
            let j = &d.journal;
            tx.execute(
                &journal_stmt,
                &[
                    &j.seq,
                    &j.at_ms,
                    &j.sender,
                    &j.message_type,
                    &j.message_id,
                    &j.reference,
                    &j.body,
                    &j.body_hash,
                    &j.prev_hash,
                    &j.hash,
                    &j.holder_signature,
                ],
            )
            .await
        };
        let replies = async {
            if d.replies.sender.is_empty() {
                return Ok(0);
            }
            let r = &d.replies;
            tx.execute(&replies_stmt, &[&r.sender, &r.message_id, &r.body_hash, &r.status, &r.body, &r.stored_at_ms])
                .await
        };
        let guarantees = async {
            if g.reference.is_empty() {
                return Ok(0);
            }
            tx.execute(&guarantees_stmt, &[&g.reference, &g.holder, &g.chain, &g.state, &g.doc, &g.at_ms]).await
        };
        let events = async {
            if d.events.reference.is_empty() {
                return Ok(0);
            }
            let e = &d.events;
            tx.execute(
                &events_stmt,
                &[
                    &e.reference,
                    &e.at_ms,
                    &e.message_type,
                    &e.party,
                    &e.office,
                    &e.summary,
                    &e.occurred_at_ms,
                    &e.fallback_period,
                ],
            )
            .await
        };
        let outbox = async {
            if d.outbox.recipient.is_empty() {
                return Ok(0);
            }
            let o = &d.outbox;
            tx.execute(&outbox_stmt, &[&o.recipient, &o.kind, &o.reference, &o.payload, &o.at_ms]).await
        };
        let (announce, update): (Vec<&ArrivalWrite>, Vec<&ArrivalWrite>) = d.arrivals.iter().partition(|a| a.announce);
        let announce_stmt = tx.prepare_cached(ARRIVALS_ANNOUNCE).await?;
        let update_stmt = tx.prepare_cached(ARRIVALS_UPDATE).await?;
        let crossings_stmt = tx.prepare_cached(CROSSINGS_INSERT).await?;
        let ahead = |a: &&ArrivalWrite| a.ahead.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        let announced = async {
            if announce.is_empty() {
                return Ok(0);
            }
            let country: Vec<&str> = announce.iter().map(|a| a.country.as_str()).collect();
            let reference: Vec<&str> = announce.iter().map(|a| a.reference.as_str()).collect();
            let at_ms: Vec<i64> = announce.iter().map(|a| a.at_ms).collect();
            let ahead: Vec<Option<i32>> = announce.iter().map(ahead).collect();
            tx.execute(&announce_stmt, &[&country, &reference, &at_ms, &ahead]).await
        };
        let updated = async {
            if update.is_empty() {
                return Ok(0);
            }
            let country: Vec<&str> = update.iter().map(|a| a.country.as_str()).collect();
            let reference: Vec<&str> = update.iter().map(|a| a.reference.as_str()).collect();
            let ahead: Vec<Option<i32>> = update.iter().map(ahead).collect();
            tx.execute(&update_stmt, &[&country, &reference, &ahead]).await
        };
        let crossed = async {
            if d.crossings.is_empty() {
                return Ok(0);
            }
            let c = &d.crossings;
            let reference: Vec<&str> = c.iter().map(|c| c.reference.as_str()).collect();
            let operation: Vec<i32> = c.iter().map(|c| i32::from(c.operation)).collect();
            let exit: Vec<&str> = c.iter().map(|c| c.exit.as_str()).collect();
            let entry: Vec<&str> = c.iter().map(|c| c.entry.as_str()).collect();
            let exit_office: Vec<Option<&str>> = c.iter().map(|c| c.exit_office.as_deref()).collect();
            let entry_office: Vec<Option<&str>> = c.iter().map(|c| c.entry_office.as_deref()).collect();
            let point: Vec<String> = c.iter().map(CrossingRow::point).collect();
            let terminated: Vec<i64> = c.iter().map(|c| c.terminated_at_ms).collect();
            let started: Vec<i64> = c.iter().map(|c| c.started_at_ms).collect();
            tx.execute(
                &crossings_stmt,
                &[&reference, &operation, &exit, &entry, &exit_office, &entry_office, &point, &terminated, &started],
            )
            .await
        };
        // COMMIT goes right behind the inserts. If one of them fails, PostgreSQL
        // answers that COMMIT with a rollback, and the error comes back from the insert.
        let inserts = try_join(
            futures_util::future::try_join5(journal, replies, guarantees, events, outbox),
            futures_util::future::try_join3(announced, updated, crossed),
        );
        try_join(inserts, tx.batch_execute("COMMIT")).await?;
        Ok(())
    }
}
