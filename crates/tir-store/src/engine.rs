//! The write path shared by both backends: a batch of commands applied in
//! one transaction, in order, each journaled and answered after commit.

use std::borrow::Cow;
use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::json;
use tir_model::exchange::{self, Registry};
use tir_model::guarantee::{Event, Guarantee};
use tir_model::party::{HolderRecord, Office};
use tir_model::view::{holder_view, notification_view, office_view, response_view};
use tir_model::{Country, ErrorCode, EtirError, OfficeCode, Timestamp, TirId};
use tir_risk::records::{AssessmentRecord, InspectionResult, PolicyRecord, StoredModel};
use tir_risk::rules::{Profile, ProfileError, ProfileHistory};
use tir_risk::stats::{Tally, TallyKey};

use crate::console::{ArrivalWrite, CrossingRow};
use crate::env::Stamp;
use crate::fallback::{FALLBACK, FALLBACK_END, FallbackDeclaration, FallbackEnd};
use crate::holder_keys::{HOLDER_KEY, HOLDER_KEY_REVOKED, HolderKey, HolderKeyWrite, HolderSignature};
use crate::journal::JournalEntry;
use crate::keys::{ServerKey, SignedHead};
use crate::push::{self, PushAttempt, PushClaim, PushEndpoint, PushEndpointWrite, PushOutcome};
use crate::{AssessmentBatch, NewParty, ProfileWrite, Result, Submission};
use tir_model::fallback::FallbackPeriod;

/// Largest number of commands in one transaction.
pub const BATCH_COMMANDS_MAX: usize = 256;

/// The stored answer to a message: replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn error(e: &EtirError) -> Reply {
        Reply { status: e.http_status(), body: e.to_json().to_string() }
    }
}

/// A write, as queued for the writer.
#[derive(Debug, Clone)]
pub enum Command {
    /// Boxed: a submission is several times larger than the admin commands.
    Message(Box<Submission>),
    CreateParty(NewParty),
    PutOffice(Office),
    PutHolder(HolderRecord),
    /// The party's id: its token stops authenticating.
    RevokeParty(String),
    /// Binds the party to a client certificate (the SHA-256 of its DER, hex), or unbinds it (`None`).
    BindCertificate {
        id: String,
        certificate_sha256: Option<String>,
    },
    /// A rule profile's next version (boxed: a draft holds an expression).
    PutProfile(Box<ProfileWrite>),
    /// The risk engine's writes (boxed: each holds documents).
    PutAssessments(Box<AssessmentBatch>),
    PutResult(Box<InspectionResult>),
    PutModel(Box<StoredModel>),
    PutPolicy(Box<PolicyRecord>),
    /// Signs the journal's head with the current server key (creating it from
    /// `candidate` if the database has none) unless the latest signed head has
    /// the same length or is younger than `min_spacing_ms`. Not journaled.
    SignHead {
        candidate: Box<ServerKey>,
        min_spacing_ms: i64,
    },
    /// Retires the current server key and makes `candidate` the current one. Not journaled.
    RotateKey(Box<ServerKey>),
    /// Signs an accompanying document's token with the current server key
    /// (creating it from `candidate` if the database has none); `kid` and
    /// `iat` are the writer's. Not journaled: nothing is stored.
    SignDocument {
        candidate: Box<ServerKey>,
        claims: Box<crate::doc_token::Claims>,
    },
    /// A holder's signing key to make current (`Store::put_holder_key`).
    PutHolderKey(Box<HolderKeyWrite>),
    /// The TIR id whose current signing key the admin revokes.
    RevokeHolderKey(String),
    /// A party's push endpoint to register (`Store::put_push_endpoint`).
    PutPushEndpoint(Box<PushEndpointWrite>),
    /// The party whose push endpoint to remove.
    RemovePushEndpoint(String),
    /// A server taking an endpoint's lease to deliver its next item. Not journaled.
    PushClaim(Box<PushClaim>),
    /// A delivery attempt's outcome; journaled when it confirms an item or pauses the endpoint.
    PushRecord(Box<PushOutcome>),
    /// A fallback period, declared (its id is the message id the writer draws).
    DeclareFallback(Box<FallbackDeclaration>),
    EndFallback(Box<FallbackEnd>),
    /// A console session opened, seen or closed. Not journaled.
    Session(Box<crate::sessions::SessionWrite>),
}

impl Command {
    /// An eTIR message (it carries its own message id) rather than an admin write.
    pub fn is_message(&self) -> bool {
        matches!(self, Command::Message(_))
    }

    /// Whether the writer draws a message id for it: admin writes, which journal
    /// an entry without an id of their own. Messages carry theirs; key and head
    /// writes are not journaled.
    pub fn draws_id(&self) -> bool {
        !matches!(
            self,
            Command::Message(_)
                | Command::SignHead { .. }
                | Command::RotateKey(_)
                | Command::SignDocument { .. }
                | Command::PushClaim(_)
                | Command::Session(_)
        )
    }
}

/// A party as a revocation leaves it.
pub struct RevokedParty {
    pub kind: String,
    pub name: String,
    pub revoked_at_ms: i64,
    /// False when it was revoked before: nothing changed.
    pub newly_revoked: bool,
}

/// A party as a certificate binding leaves it.
pub struct BoundParty {
    pub kind: String,
    pub name: String,
    /// False when it was bound to the same certificate (or unbound) before: nothing changed.
    pub changed: bool,
}

#[derive(Clone)]
pub struct StoredReply {
    pub body_hash: String,
    pub reply: Reply,
}

/// The operations a backend offers inside one write transaction.
#[async_trait]
pub trait Tx: Send {
    /// Opens the write transaction, serializes writers across processes, loads
    /// what the batch will read (in as few round trips as the backend allows),
    /// and returns the journal head (seq, hash).
    async fn begin(&mut self, commands: &[Command]) -> Result<(i64, String)>;
    /// Writes whatever the backend deferred and commits. If anything before
    /// has failed, the caller rolls back instead.
    async fn commit(&mut self) -> Result<()>;
    async fn journal_append(&mut self, entry: &JournalEntry) -> Result<()>;
    async fn idempotency_get(&mut self, sender: &str, message_id: &str) -> Result<Option<StoredReply>>;
    /// Stores the answer to a message under `key` (sender, message id, body
    /// hash) at `at_ms` (the writer's time): a refusal (status other than 200) is kept for the
    /// retention window, an acceptance as long as the journal (see `retention`).
    async fn idempotency_put(&mut self, key: [&str; 3], reply: &Reply, at_ms: i64) -> Result<()>;
    async fn guarantee_get(&mut self, reference: &str) -> Result<Option<Guarantee>>;
    /// Stores the guarantee; backends may keep it (the SQLite writer caches it).
    async fn guarantee_put(&mut self, guarantee: Guarantee, at_ms: i64) -> Result<()>;
    async fn offices_get(&mut self, codes: &[OfficeCode]) -> Result<Vec<Office>>;
    async fn holders_get(&mut self, tir_ids: &[TirId]) -> Result<Vec<HolderRecord>>;
    /// Which of `countries` have a customs party whose token works (E9 is forwarded to them).
    async fn customs_countries(&mut self, countries: &[Country]) -> Result<Vec<Country>>;
    async fn outbox_push(&mut self, item: &OutboxItem<'_>) -> Result<()>;
    async fn event_push(&mut self, reference: &str, event: &Event) -> Result<()>;
    /// Makes (when `announce`) or updates a row of the arrivals (`console`).
    async fn arrival_put(&mut self, arrival: &ArrivalWrite) -> Result<()>;
    /// Adds a border crossing, unless its (reference, operation) is stored.
    async fn crossing_insert(&mut self, crossing: &CrossingRow) -> Result<()>;
    async fn party_insert(&mut self, party: &NewParty, at_ms: i64) -> Result<()>;
    /// Revokes the party unless it already is; `None` if there is no such party.
    async fn party_revoke(&mut self, id: &str, at_ms: i64) -> Result<Option<RevokedParty>>;
    /// Sets the party's client certificate (`None`: unbound); `None` if there is no such party.
    async fn party_bind_certificate(
        &mut self,
        id: &str,
        certificate_sha256: Option<&str>,
    ) -> Result<Option<BoundParty>>;
    async fn office_put(&mut self, office: &Office) -> Result<()>;
    async fn holder_put(&mut self, holder: &HolderRecord) -> Result<()>;
    /// Every version of profile `id` of `administration`, oldest first (empty: none).
    async fn profile_versions(&mut self, administration: Country, id: &str) -> Result<Vec<Profile>>;
    /// Adds one version; the (administration, id, version) is new.
    async fn profile_insert(&mut self, profile: &Profile, at_ms: i64) -> Result<()>;
    /// The last feed cursor the risk engine assessed (0 before any).
    async fn risk_cursor_get(&mut self) -> Result<i64>;
    async fn risk_cursor_set(&mut self, cursor: i64) -> Result<()>;
    /// Adds assessments in this order (one statement on PostgreSQL: this runs under the writers' lock).
    /// `docs[i]` is `records[i]` as stored JSON, made once for the row and its journal entry.
    async fn assessments_insert(&mut self, records: &[AssessmentRecord], docs: &[String]) -> Result<()>;
    /// Inserts or replaces the result for its (administration, guarantee, office); true when new.
    async fn result_put(&mut self, result: &InspectionResult) -> Result<bool>;
    /// The results of these (administration, guarantee), each guarantee's by recorded time then office.
    async fn results_of(&mut self, keys: &[(Country, String)]) -> Result<Vec<InspectionResult>>;
    /// The administration's assessments of the guarantee, oldest first.
    async fn assessments_of(&mut self, administration: Country, guarantee: &str) -> Result<Vec<AssessmentRecord>>;
    /// Adds to the hit rates' sums (`tir_risk::stats::Tally`), one change per key.
    async fn tallies_add(&mut self, changes: &[(TallyKey, Tally)]) -> Result<()>;
    /// The stored model (administration, version) with its `model_sha256`, model_json left empty.
    async fn model_get(&mut self, administration: Country, version: &str) -> Result<Option<(StoredModel, String)>>;
    /// Adds a model; its (administration, version) is new.
    async fn model_insert(&mut self, model: &StoredModel, model_sha256: &str) -> Result<()>;
    /// Inserts or replaces the policy for its (administration, office or `*`).
    async fn policy_put(&mut self, policy: &PolicyRecord) -> Result<()>;
    /// The server key not retired, with its private part; `None` before the first.
    async fn key_current(&mut self) -> Result<Option<ServerKey>>;
    /// Adds a key (the caller has retired the current one, if any).
    async fn key_insert(&mut self, key: &ServerKey) -> Result<()>;
    async fn key_retire(&mut self, key_id: &str, at_ms: i64) -> Result<()>;
    /// The latest signed head (the longest journal signed).
    async fn head_latest(&mut self) -> Result<Option<SignedHead>>;
    async fn head_insert(&mut self, head: &SignedHead) -> Result<()>;
    /// Every signing key of the holder, oldest first.
    async fn holder_keys_of(&mut self, tir_id: &str) -> Result<Vec<HolderKey>>;
    async fn holder_key_insert(&mut self, key: &HolderKey) -> Result<()>;
    async fn holder_key_revoke(&mut self, tir_id: &str, key_id: &str, at_ms: i64) -> Result<()>;
    /// The party's push endpoint (removed ones too).
    async fn push_endpoint_get(&mut self, party: &str) -> Result<Option<PushEndpoint>>;
    /// Inserts or replaces the party's push endpoint.
    async fn push_endpoint_put(&mut self, endpoint: &PushEndpoint) -> Result<()>;
    async fn push_attempt_insert(&mut self, attempt: &PushAttempt) -> Result<()>;
    /// The fallback periods of `scope` (`system` or a country code), by start.
    async fn fallback_periods_of(&mut self, scope: &str) -> Result<Vec<FallbackPeriod>>;
    async fn fallback_get(&mut self, id: &str) -> Result<Option<FallbackPeriod>>;
    /// Inserts the period, or replaces the one with its id.
    async fn fallback_put(&mut self, period: &FallbackPeriod) -> Result<()>;
    /// The feed (`Recipient::key`) of every party whose token works.
    async fn party_feeds(&mut self) -> Result<Vec<String>>;
    /// Applies a change to the console sessions at `at_ms`; false when the session to mark
    /// seen or close is not stored.
    async fn session_write(&mut self, write: &crate::sessions::SessionWrite, at_ms: i64) -> Result<bool>;
}

/// One notification for a recipient's feed, borrowed from the batch that raises it.
pub struct OutboxItem<'a> {
    pub recipient: &'a str,
    pub kind: &'a str,
    pub reference: &'a str,
    pub payload: &'a str,
    pub at_ms: i64,
}

struct Loaded {
    offices: HashMap<OfficeCode, Office>,
    holders: HashMap<TirId, HolderRecord>,
    customs: Vec<Country>,
    /// For a message recorded in fallback: the periods of its office's country and of the system.
    fallback: Vec<FallbackPeriod>,
}

impl Registry for Loaded {
    fn office(&self, code: &OfficeCode) -> Option<&Office> {
        self.offices.get(code)
    }
    fn holder(&self, tir_id: &TirId) -> Option<&HolderRecord> {
        self.holders.get(tir_id)
    }
    fn has_customs(&self, country: Country) -> bool {
        self.customs.contains(&country)
    }
    fn fallback_periods(&self) -> &[FallbackPeriod] {
        &self.fallback
    }
}

/// Applies `commands` in order in one transaction and commits it, each under
/// its own stamp (`stamps[i]` for `commands[i]`). An `Err` means the caller
/// must roll the transaction back.
pub async fn run_batch<T: Tx>(tx: &mut T, commands: &[Command], stamps: &[Stamp]) -> Result<Vec<Reply>> {
    debug_assert!(commands.len() <= BATCH_COMMANDS_MAX);
    debug_assert_eq!(commands.len(), stamps.len());
    let mut head = Head { last: tx.begin(commands).await? };
    let mut replies = Vec::with_capacity(commands.len());
    for (command, stamp) in commands.iter().zip(stamps) {
        replies.push(run_command(tx, &mut head, command, stamp).await?);
        if stamp.fails {
            return Err(crate::faults::injected_write());
        }
    }
    tx.commit().await?;
    Ok(replies)
}

/// The journal's last (seq, hash) as this batch extends it.
struct Head {
    last: (i64, String),
}

/// What one journal entry records, before it is chained to the previous one.
struct Record<'a> {
    at_ms: i64,
    sender: &'a str,
    message_type: &'a str,
    /// Borrowed from a message; generated for admin writes.
    message_id: Cow<'a, str>,
    reference: &'a str,
    body: String,
    /// SHA-256 of `body`, hex.
    body_hash: String,
    /// A holder's signed message's signature (`None` for every other entry).
    holder_signature: Option<HolderSignature>,
}

impl<'a> Record<'a> {
    /// An admin write, under the message id its stamp drew.
    fn admin(stamp: &'a Stamp, message_type: &'a str, reference: &'a str, body: String) -> Record<'a> {
        Record::stamped("admin", stamp, message_type, reference, body)
    }

    /// A write by `sender` that carries no message id of its own: under the one its stamp drew.
    fn stamped(
        sender: &'a str,
        stamp: &'a Stamp,
        message_type: &'a str,
        reference: &'a str,
        body: String,
    ) -> Record<'a> {
        let body_hash = crate::journal::body_hash(&body);
        debug_assert!(stamp.admin_message_id.is_some(), "admin commands are stamped with an id");
        let message_id = Cow::Borrowed(stamp.admin_message_id.as_deref().unwrap_or_default());
        Record {
            at_ms: stamp.at_ms,
            sender,
            message_type,
            message_id,
            reference,
            body,
            body_hash,
            holder_signature: None,
        }
    }
}

async fn append<T: Tx>(tx: &mut T, head: &mut Head, r: Record<'_>) -> Result<()> {
    let entry = JournalEntry::next_signed(
        &head.last,
        r.at_ms,
        r.sender,
        r.message_type,
        &r.message_id,
        r.reference,
        r.body,
        r.body_hash,
        r.holder_signature,
    );
    tx.journal_append(&entry).await?;
    head.last = (entry.seq, entry.hash);
    Ok(())
}

async fn run_command<T: Tx>(tx: &mut T, head: &mut Head, command: &Command, stamp: &Stamp) -> Result<Reply> {
    let now_ms = stamp.at_ms;
    match command {
        Command::Message(submission) => run_message(tx, head, submission, now_ms).await,
        Command::CreateParty(party) => {
            tx.party_insert(party, now_ms).await?;
            let body = json!({"id": party.id, "kind": party.kind.as_str(), "name": party.name,
                              "country": party.country.map(|c| c.to_string()),
                              "tir_id": party.tir_id.as_ref().map(|t| t.to_string())});
            append(tx, head, Record::admin(stamp, "PARTY", &party.id, body.to_string())).await?;
            Ok(Reply { status: 201, body: body.to_string() })
        }
        Command::PutOffice(office) => {
            tx.office_put(office).await?;
            let body = office_view(office).to_string();
            append(tx, head, Record::admin(stamp, "OFFICE", office.code.as_str(), body.clone())).await?;
            Ok(Reply { status: 201, body })
        }
        Command::PutHolder(holder) => {
            tx.holder_put(holder).await?;
            let body = holder_view(holder).to_string();
            append(tx, head, Record::admin(stamp, "HOLDER", holder.tir_id.as_str(), body.clone())).await?;
            Ok(Reply { status: 200, body })
        }
        Command::RevokeParty(id) => {
            let Some(revoked) = tx.party_revoke(id, now_ms).await? else {
                return Ok(Reply::error(&EtirError::new(ErrorCode::PartyNotFound, "/id")));
            };
            let revoked_at = Timestamp::from_unix_ms(revoked.revoked_at_ms).to_string();
            let body =
                json!({"id": id, "kind": revoked.kind, "name": revoked.name, "revoked_at": revoked_at}).to_string();
            // A repeated revocation answers the same and changes nothing to journal.
            if revoked.newly_revoked {
                append(tx, head, Record::admin(stamp, "PARTY_REVOKED", id, body.clone())).await?;
            }
            Ok(Reply { status: 200, body })
        }
        Command::BindCertificate { id, certificate_sha256 } => {
            let Some(bound) = tx.party_bind_certificate(id, certificate_sha256.as_deref()).await? else {
                return Ok(Reply::error(&EtirError::new(ErrorCode::PartyNotFound, "/id")));
            };
            let body = json!({"id": id, "kind": bound.kind, "name": bound.name,
                              "certificate_sha256": certificate_sha256})
            .to_string();
            // The same binding again answers the same and changes nothing to journal.
            if bound.changed {
                append(tx, head, Record::admin(stamp, "PARTY_CERTIFICATE", id, body.clone())).await?;
            }
            Ok(Reply { status: 200, body })
        }
        Command::PutProfile(write) => run_put_profile(tx, head, write, stamp).await,
        Command::PutAssessments(batch) => run_put_assessments(tx, head, batch, stamp).await,
        Command::PutResult(result) => run_put_result(tx, head, result, stamp).await,
        Command::PutModel(model) => run_put_model(tx, head, model, stamp).await,
        Command::PutPolicy(policy) => run_put_policy(tx, head, policy, stamp).await,
        Command::SignHead { candidate, min_spacing_ms } => {
            run_sign_head(tx, &head.last, candidate, *min_spacing_ms, now_ms).await
        }
        Command::RotateKey(candidate) => run_rotate_key(tx, candidate, now_ms).await,
        Command::SignDocument { candidate, claims } => run_sign_document(tx, candidate, claims, now_ms).await,
        Command::PutHolderKey(write) => run_put_holder_key(tx, head, write, stamp).await,
        Command::RevokeHolderKey(tir_id) => run_revoke_holder_key(tx, head, tir_id, stamp).await,
        Command::PutPushEndpoint(write) => run_put_push_endpoint(tx, head, write, stamp).await,
        Command::RemovePushEndpoint(party) => run_remove_push_endpoint(tx, head, party, stamp).await,
        Command::PushClaim(claim) => run_push_claim(tx, claim, now_ms).await,
        Command::PushRecord(outcome) => run_push_record(tx, head, outcome, stamp).await,
        Command::DeclareFallback(d) => run_declare_fallback(tx, head, d, stamp).await,
        Command::EndFallback(e) => run_end_fallback(tx, head, e, stamp).await,
        Command::Session(write) => {
            let found = tx.session_write(write, now_ms).await?;
            Ok(Reply { status: if found { 200 } else { 404 }, body: "{}".to_owned() })
        }
    }
}

/// Registers (201) or replaces (200) the party's endpoint, active from now; the
/// confirmed cursor stays, so delivery resumes after the last item confirmed.
/// Journaled without the secret.
async fn run_put_push_endpoint<T: Tx>(
    tx: &mut T,
    head: &mut Head,
    w: &PushEndpointWrite,
    stamp: &Stamp,
) -> Result<Reply> {
    let old = tx.push_endpoint_get(&w.party).await?;
    let status = if old.as_ref().is_some_and(|o| o.status != push::REMOVED) { 200 } else { 201 };
    let endpoint = PushEndpoint {
        party: w.party.clone(),
        feed: w.feed.clone(),
        url: w.url.clone(),
        secret: w.secret.clone(),
        status: push::ACTIVE.to_owned(),
        paused_reason: None,
        registered_at_ms: stamp.at_ms,
        generation: old.as_ref().map_or(1, |o| o.generation + 1),
        confirmed_cursor: old.as_ref().map_or(0, |o| o.confirmed_cursor),
        failures: 0,
        first_failure_ms: None,
        next_attempt_ms: stamp.at_ms,
        // A delivery in flight keeps its lease: another server starting the same item would send it twice.
        lease_owner: old.as_ref().and_then(|o| o.lease_owner.clone()),
        lease_until_ms: old.as_ref().map_or(0, |o| o.lease_until_ms),
    };
    tx.push_endpoint_put(&endpoint).await?;
    let journaled = json!({"party": w.party, "feed": w.feed, "url": w.url, "status": push::ACTIVE});
    append(tx, head, Record::stamped(&w.party, stamp, push::PUSH_ENDPOINT, &w.party, journaled.to_string())).await?;
    Ok(Reply { status, body: endpoint.view().to_string() })
}

/// Removes the party's endpoint (200 with it as removed), 404/183 when it has none.
async fn run_remove_push_endpoint<T: Tx>(tx: &mut T, head: &mut Head, party: &str, stamp: &Stamp) -> Result<Reply> {
    let Some(old) = tx.push_endpoint_get(party).await?.filter(|o| o.status != push::REMOVED) else {
        return Ok(Reply::error(&EtirError::not_found_on_route(ErrorCode::NoSuchRoute, "")));
    };
    let removed = PushEndpoint {
        url: String::new(),
        secret: String::new(),
        status: push::REMOVED.to_owned(),
        paused_reason: None,
        generation: old.generation + 1,
        ..old.clone()
    };
    tx.push_endpoint_put(&removed).await?;
    let journaled = json!({"party": party, "url": old.url});
    append(tx, head, Record::stamped(party, stamp, push::PUSH_ENDPOINT_REMOVED, party, journaled.to_string())).await?;
    let view = PushEndpoint { url: old.url, ..removed }.view();
    Ok(Reply { status: 200, body: view.to_string() })
}

/// Gives `claim.owner` the endpoint's lease (200) if the endpoint is active, due, as
/// the claimant read it (generation and confirmed cursor), and not leased to another
/// server; 409 otherwise. Run under the writers' lock: two servers never both win.
async fn run_push_claim<T: Tx>(tx: &mut T, claim: &PushClaim, now_ms: i64) -> Result<Reply> {
    let taken = Reply { status: 409, body: "{}".to_owned() };
    let Some(mut endpoint) = tx.push_endpoint_get(&claim.party).await? else { return Ok(taken) };
    let leased_to_another = endpoint.lease_until_ms > now_ms && endpoint.lease_owner.as_deref() != Some(&claim.owner);
    if endpoint.status != push::ACTIVE
        || endpoint.generation != claim.generation
        || endpoint.confirmed_cursor != claim.confirmed_cursor
        || endpoint.next_attempt_ms > now_ms
        || leased_to_another
    {
        return Ok(taken);
    }
    endpoint.lease_owner = Some(claim.owner.clone());
    endpoint.lease_until_ms = now_ms.saturating_add(claim.lease_ms);
    tx.push_endpoint_put(&endpoint).await?;
    Ok(Reply { status: 200, body: json!({"lease_until_ms": endpoint.lease_until_ms}).to_string() })
}

/// Records an attempt and gives the lease back. A 2xx answer confirms the item
/// (journaled `PUSH_CONFIRMED`, from the party: its E8/I16) and the next one is
/// due at once; a failure sets the next attempt, or pauses the endpoint once it
/// has failed for `pause_after_ms` (journaled `PUSH_PAUSED`). An outcome from a
/// server that lost the lease, or of an endpoint replaced since, changes only the
/// confirmation.
async fn run_push_record<T: Tx>(tx: &mut T, head: &mut Head, o: &PushOutcome, stamp: &Stamp) -> Result<Reply> {
    let now_ms = stamp.at_ms;
    let Some(mut endpoint) = tx.push_endpoint_get(&o.party).await? else {
        return Ok(Reply::error(&EtirError::not_found_on_route(ErrorCode::NoSuchRoute, "")));
    };
    let confirmed = o.confirmed();
    let holds_lease = endpoint.lease_owner.as_deref() == Some(&o.owner);
    let current = holds_lease && endpoint.generation == o.generation && endpoint.status == push::ACTIVE;
    let mut next_attempt_ms = None;
    if confirmed && o.cursor > endpoint.confirmed_cursor {
        endpoint.confirmed_cursor = o.cursor;
        let body = json!({"party": o.party, "cursor": o.cursor.to_string(), "type": o.kind,
                          "http_status": o.http_status, "confirmed_at": Timestamp::from_unix_ms(now_ms).to_string()});
        append(tx, head, Record::stamped(&o.party, stamp, push::PUSH_CONFIRMED, &o.reference, body.to_string()))
            .await?;
    }
    if current {
        if confirmed {
            endpoint.failures = 0;
            endpoint.first_failure_ms = None;
            endpoint.next_attempt_ms = now_ms;
        } else {
            endpoint.failures += 1;
            let since = *endpoint.first_failure_ms.get_or_insert(now_ms);
            if now_ms - since >= o.pause_after_ms {
                let last = match (o.http_status, &o.error) {
                    (Some(status), _) => format!("HTTP {status}"),
                    (None, Some(error)) => error.clone(),
                    (None, None) => "no answer".to_owned(),
                };
                let reason = format!(
                    "no confirmation of item {} in {} attempts since {}; last: {last}",
                    o.cursor,
                    endpoint.failures,
                    Timestamp::from_unix_ms(since)
                );
                endpoint.status = push::PAUSED.to_owned();
                endpoint.paused_reason = Some(reason.clone());
                let body = json!({"party": o.party, "url": endpoint.url, "reason": reason});
                append(tx, head, Record::stamped(&o.party, stamp, push::PUSH_PAUSED, &o.party, body.to_string()))
                    .await?;
            } else {
                endpoint.next_attempt_ms = now_ms.saturating_add(o.retry_in_ms.max(0));
                next_attempt_ms = Some(endpoint.next_attempt_ms);
            }
        }
    }
    if holds_lease {
        endpoint.lease_owner = None;
        endpoint.lease_until_ms = 0;
    }
    tx.push_endpoint_put(&endpoint).await?;
    let attempt = PushAttempt {
        party: o.party.clone(),
        cursor: o.cursor,
        at_ms: now_ms,
        http_status: o.http_status.map(i64::from),
        error: o.error.clone(),
        next_attempt_ms,
        confirmed,
    };
    tx.push_attempt_insert(&attempt).await?;
    Ok(Reply { status: 200, body: endpoint.view().to_string() })
}

/// The feeds a fallback period is told to: its country's customs, or every party.
async fn fallback_feeds<T: Tx>(tx: &mut T, period: &FallbackPeriod) -> Result<Vec<String>> {
    match period.scope {
        tir_model::fallback::FallbackScope::System => tx.party_feeds().await,
        tir_model::fallback::FallbackScope::Country(c) => Ok(vec![format!("customs:{c}")]),
    }
}

/// Journals `period` as `entry_type` from `by` and tells its feeds (`event`).
async fn publish_fallback<T: Tx>(
    tx: &mut T,
    head: &mut Head,
    stamp: &Stamp,
    by: &str,
    (entry_type, event): (&str, &str),
    period: &FallbackPeriod,
) -> Result<String> {
    tx.fallback_put(period).await?;
    let body = period.view().to_string();
    append(tx, head, Record::stamped(by, stamp, entry_type, &period.id, body.clone())).await?;
    let payload = crate::fallback::payload(event, period);
    for recipient in fallback_feeds(tx, period).await? {
        // Not about one guarantee: the item's reference is empty, the period is in the payload.
        let item =
            OutboxItem { recipient: &recipient, kind: FALLBACK, reference: "", payload: &payload, at_ms: stamp.at_ms };
        tx.outbox_push(&item).await?;
    }
    Ok(body)
}

/// Declares a period (201), or answers the stored one a repeat names (200; 409/299
/// when its reason differs).
async fn run_declare_fallback<T: Tx>(
    tx: &mut T,
    head: &mut Head,
    d: &FallbackDeclaration,
    stamp: &Stamp,
) -> Result<Reply> {
    let stored = tx.fallback_periods_of(d.scope.as_str()).await?;
    if let Some(reply) = crate::fallback::repeated(&stored, d) {
        return Ok(reply);
    }
    let id = stamp.admin_message_id.clone().unwrap_or_default();
    let now = Timestamp::from_unix_ms(stamp.at_ms);
    let period = match FallbackPeriod::declare(id, d.scope, d.reason.clone(), d.from, &d.by, now) {
        Ok(period) => period,
        Err(e) => return Ok(Reply::error(&e)),
    };
    let body = publish_fallback(tx, head, stamp, &d.by, (FALLBACK, "fallback_declared"), &period).await?;
    Ok(Reply { status: 201, body })
}

/// Ends a period (200 with it; the same end again: 200, nothing written);
/// 404/183 for no such period.
async fn run_end_fallback<T: Tx>(tx: &mut T, head: &mut Head, e: &FallbackEnd, stamp: &Stamp) -> Result<Reply> {
    let Some(period) = tx.fallback_get(&e.id).await? else {
        return Ok(Reply::error(&EtirError::new(ErrorCode::NoSuchRoute, "/id").with_detail("no such fallback period")));
    };
    let ended = match period.end(e.until, &e.by, Timestamp::from_unix_ms(stamp.at_ms)) {
        Ok(Some(ended)) => ended,
        Ok(None) => return Ok(Reply { status: 200, body: period.view().to_string() }),
        Err(error) => return Ok(Reply::error(&error)),
    };
    let body = publish_fallback(tx, head, stamp, &e.by, (FALLBACK_END, "fallback_ended"), &ended).await?;
    Ok(Reply { status: 200, body })
}

/// A refusal for a signature the holder's keys no longer accept (not stored: a
/// retry signed with the current key is a new answer, not this one replayed).
fn signature_refused(detail: String) -> Reply {
    Reply::error(&EtirError::new(ErrorCode::HolderSignatureInvalid, "").with_detail(detail))
}

async fn run_put_holder_key<T: Tx>(tx: &mut T, head: &mut Head, w: &HolderKeyWrite, stamp: &Stamp) -> Result<Reply> {
    let keys = tx.holder_keys_of(&w.tir_id).await?;
    let current = keys.iter().find(|k| k.revoked_at_ms.is_none());
    let key_id = crate::holder_keys::unhex::<32>(&w.public_key)
        .map(|bytes| crate::holder_keys::key_id(&bytes))
        .unwrap_or_default();
    if let Some(current) = current {
        if current.key_id == key_id {
            return Ok(Reply { status: 200, body: current.view().to_string() });
        }
        if w.signed_by.as_deref() != Some(current.key_id.as_str()) {
            return Ok(signature_refused(format!(
                "{} has signing key {}: a new key is registered by a request signed with it",
                w.tir_id, current.key_id
            )));
        }
    }
    if keys.iter().any(|k| k.key_id == key_id) {
        let e =
            EtirError::new(ErrorCode::WrongFormat, "/public_key").with_detail("a revoked key is not registered again");
        return Ok(Reply::error(&e));
    }
    let replaces = current.map(|k| k.key_id.clone());
    if let Some(old) = &replaces {
        tx.holder_key_revoke(&w.tir_id, old, stamp.at_ms).await?;
    }
    let key = HolderKey {
        tir_id: w.tir_id.clone(),
        key_id,
        public_key: w.public_key.clone(),
        registered_by: w.by.clone(),
        registered_at_ms: stamp.at_ms,
        revoked_at_ms: None,
    };
    tx.holder_key_insert(&key).await?;
    let journaled = json!({"tir_id": key.tir_id, "key_id": key.key_id, "public_key": key.public_key,
                           "replaces": replaces});
    append(tx, head, Record::stamped(&w.by, stamp, HOLDER_KEY, &w.tir_id, journaled.to_string())).await?;
    Ok(Reply { status: 201, body: key.view().to_string() })
}

async fn run_revoke_holder_key<T: Tx>(tx: &mut T, head: &mut Head, tir_id: &str, stamp: &Stamp) -> Result<Reply> {
    let keys = tx.holder_keys_of(tir_id).await?;
    let Some(current) = keys.into_iter().find(|k| k.revoked_at_ms.is_none()) else {
        return Ok(Reply { status: 200, body: json!({"tir_id": tir_id, "revoked": null}).to_string() });
    };
    tx.holder_key_revoke(tir_id, &current.key_id, stamp.at_ms).await?;
    let journaled = json!({"tir_id": tir_id, "key_id": current.key_id});
    append(tx, head, Record::admin(stamp, HOLDER_KEY_REVOKED, tir_id, journaled.to_string())).await?;
    let revoked = HolderKey { revoked_at_ms: Some(stamp.at_ms), ..current };
    Ok(Reply { status: 200, body: json!({"tir_id": tir_id, "revoked": revoked.view()}).to_string() })
}

/// The current server key, created from `candidate` when there is none.
async fn current_key<T: Tx>(tx: &mut T, candidate: &ServerKey, now_ms: i64) -> Result<ServerKey> {
    if let Some(key) = tx.key_current().await? {
        return Ok(key);
    }
    let key = ServerKey { created_at_ms: now_ms, retired_at_ms: None, ..candidate.clone() };
    tx.key_insert(&key).await?;
    tracing::info!(key_id = %key.key_id, "server signing key created");
    Ok(key)
}

/// Signs the head `last` (as this batch has it: the commands before in the batch
/// included) and stores it: 201 with the signed head; 200 with the latest
/// stored one when the journal has not moved since it or it is younger than
/// `min_spacing_ms`; 409 when the journal is shorter than a head already
/// signed (entries were removed: nothing is signed over that).
async fn run_sign_head<T: Tx>(
    tx: &mut T,
    last: &(i64, String),
    candidate: &ServerKey,
    min_spacing_ms: i64,
    now_ms: i64,
) -> Result<Reply> {
    let key = current_key(tx, candidate, now_ms).await?;
    if let Some(latest) = tx.head_latest().await? {
        if latest.entries > last.0 {
            let body = json!({"error": format!(
                "the journal has {} entries, fewer than the {} of a head signed at {}", last.0, latest.entries, latest.signed_at
            )});
            return Ok(Reply { status: 409, body: body.to_string() });
        }
        if latest.entries == last.0 || now_ms - latest.signed_at_ms < min_spacing_ms {
            return Ok(Reply { status: 200, body: latest.view().to_string() });
        }
    }
    let signed = key.sign_head(last.0, &last.1, now_ms);
    tx.head_insert(&signed).await?;
    Ok(Reply { status: 201, body: signed.view().to_string() })
}

/// Signs a document token with the current key (created from `candidate` when
/// there is none): 201 with `{"token": ...}`.
async fn run_sign_document<T: Tx>(
    tx: &mut T,
    candidate: &ServerKey,
    claims: &crate::doc_token::Claims,
    now_ms: i64,
) -> Result<Reply> {
    let key = current_key(tx, candidate, now_ms).await?;
    let claims = crate::doc_token::Claims {
        iat: Timestamp::from_unix_ms(now_ms).to_string(),
        kid: key.key_id.clone(),
        ..claims.clone()
    };
    Ok(Reply { status: 201, body: json!({"token": crate::doc_token::sign(&key, &claims)}).to_string() })
}

/// Retires the current key (if any) and makes `candidate` current, created now:
/// 201 with both keys' public views, `retired` null when there was none.
async fn run_rotate_key<T: Tx>(tx: &mut T, candidate: &ServerKey, now_ms: i64) -> Result<Reply> {
    let retired = match tx.key_current().await? {
        Some(old) => {
            tx.key_retire(&old.key_id, now_ms).await?;
            Some(ServerKey { retired_at_ms: Some(now_ms), ..old }.public().view())
        }
        None => None,
    };
    let key = ServerKey { created_at_ms: now_ms, retired_at_ms: None, ..candidate.clone() };
    tx.key_insert(&key).await?;
    tracing::info!(key_id = %key.key_id, "server signing key rotated");
    Ok(Reply { status: 201, body: json!({"current": key.public().view(), "retired": retired}).to_string() })
}

/// The journal's message types for the risk engine's records.
pub const RISK_ASSESSMENT: &str = "RISK_ASSESSMENT";
pub const RISK_RESULT: &str = "RISK_RESULT";
pub const RISK_MODEL: &str = "RISK_MODEL";
pub const RISK_POLICY: &str = "RISK_POLICY";

fn wrong_format(pointer: &str, detail: String) -> Reply {
    Reply::error(&EtirError::new(ErrorCode::WrongFormat, pointer).with_detail(detail))
}

/// An assessment as journaled: the record with its context (a few KB: journaled
/// whole, the assessments were most of the bytes the writer wrote in `tirhub
/// bench`) replaced by the SHA-256 of the stored record's JSON, which the row
/// can be checked against.
#[derive(serde::Serialize)]
pub struct JournaledAssessment<'a> {
    pub administration: Country,
    pub guarantee: &'a str,
    pub holder: &'a str,
    pub trigger: tir_risk::records::Trigger,
    pub source_cursor: i64,
    pub declaration_version: u32,
    #[serde(flatten)]
    pub assessment: &'a tir_risk::assessment::Assessment,
    pub record_sha256: String,
}

impl<'a> JournaledAssessment<'a> {
    /// `doc`: the record as stored (`rows::to_doc`).
    pub fn of(record: &'a AssessmentRecord, doc: &str) -> JournaledAssessment<'a> {
        JournaledAssessment {
            administration: record.administration,
            guarantee: &record.guarantee,
            holder: &record.holder,
            trigger: record.trigger,
            source_cursor: record.source_cursor,
            declaration_version: record.declaration_version,
            assessment: &record.assessment,
            record_sha256: crate::journal::body_hash(doc),
        }
    }
}

/// Stores a batch of assessments and moves the risk cursor, or answers 409 with
/// the stored cursor when another writer moved it first. The check runs under
/// the writers' lock, so two servers assessing the same items store them once.
async fn run_put_assessments<T: Tx>(tx: &mut T, head: &mut Head, b: &AssessmentBatch, stamp: &Stamp) -> Result<Reply> {
    if b.through < b.after {
        return Ok(wrong_format("/through", format!("through {} is before after {}", b.through, b.after)));
    }
    // Records outside (after, through] would make "<through>-<i>" ids repeat across batches.
    if let Some(i) = b.records.iter().position(|r| r.source_cursor <= b.after || r.source_cursor > b.through) {
        let detail = format!("source_cursor {} is outside ({}, {}]", b.records[i].source_cursor, b.after, b.through);
        return Ok(wrong_format(&format!("/records/{i}/source_cursor"), detail));
    }
    let stored = tx.risk_cursor_get().await?;
    if stored != b.after {
        return Ok(Reply { status: 409, body: json!({ "cursor": stored }).to_string() });
    }
    let docs: Vec<String> = b.records.iter().map(crate::rows::to_doc).collect();
    tx.assessments_insert(&b.records, &docs).await?;
    // The hit rates' sums: each assessment with the result its guarantee may already have.
    let mut keys: Vec<(Country, String)> = b.records.iter().map(|r| (r.administration, r.guarantee.clone())).collect();
    keys.sort();
    keys.dedup();
    let results = tx.results_of(&keys).await?;
    let tallies: Vec<(TallyKey, Tally)> = tir_risk::stats::tallies(&b.records, &results).into_iter().collect();
    tx.tallies_add(&tallies).await?;
    for (i, (record, doc)) in b.records.iter().zip(&docs).enumerate() {
        let message_id = format!("{}-{i}", b.through);
        let body = crate::rows::to_doc(&JournaledAssessment::of(record, doc));
        let body_hash = crate::journal::body_hash(&body);
        let entry = Record {
            at_ms: stamp.at_ms,
            sender: "risk",
            message_type: RISK_ASSESSMENT,
            message_id: Cow::Owned(message_id),
            reference: &record.guarantee,
            body,
            body_hash,
            holder_signature: None,
        };
        append(tx, head, entry).await?;
    }
    tx.risk_cursor_set(b.through).await?;
    Ok(Reply { status: 200, body: json!({ "stored": b.records.len(), "cursor": b.through }).to_string() })
}

/// Stores an inspection result at the writer's time: 201 when new, 200 when it
/// replaces the one of its (administration, guarantee, office).
async fn run_put_result<T: Tx>(tx: &mut T, head: &mut Head, r: &InspectionResult, stamp: &Stamp) -> Result<Reply> {
    let result = InspectionResult { recorded_at: Timestamp::from_unix_ms(stamp.at_ms), ..r.clone() };
    // The hit rates' sums move by what this result changes for the guarantee's assessments.
    let key = (result.administration, result.guarantee.clone());
    let assessments = tx.assessments_of(key.0, &key.1).await?;
    let before = tx.results_of(std::slice::from_ref(&key)).await?;
    let mut after: Vec<InspectionResult> = before.iter().filter(|b| b.office != result.office).cloned().collect();
    after.push(result.clone());
    after.sort_by(|a, b| (a.recorded_at, &a.office).cmp(&(b.recorded_at, &b.office)));
    let changes = tir_risk::stats::tally_changes(
        &tir_risk::stats::tallies(&assessments, &before),
        &tir_risk::stats::tallies(&assessments, &after),
    );
    tx.tallies_add(&changes).await?;
    let status = if tx.result_put(&result).await? { 201 } else { 200 };
    let body = crate::result_view(&result).to_string();
    append(tx, head, Record::stamped(&result.recorded_by, stamp, RISK_RESULT, &result.guarantee, body.clone())).await?;
    Ok(Reply { status, body })
}

/// Stores a trained model at the writer's time (201), or answers 200 with the
/// metadata already stored under its (administration, version), writing nothing.
async fn run_put_model<T: Tx>(tx: &mut T, head: &mut Head, m: &StoredModel, stamp: &Stamp) -> Result<Reply> {
    if let Some((stored, sha256)) = tx.model_get(m.administration, &m.version).await? {
        return Ok(Reply { status: 200, body: crate::model_view(&stored, &sha256).to_string() });
    }
    let model = StoredModel { trained_at: Timestamp::from_unix_ms(stamp.at_ms), ..m.clone() };
    let sha256 = crate::journal::body_hash(&model.model_json);
    tx.model_insert(&model, &sha256).await?;
    let body = crate::model_view(&model, &sha256).to_string();
    let reference = format!("{}/{}", model.administration, model.version);
    append(tx, head, Record::stamped(&model.trained_by, stamp, RISK_MODEL, &reference, body.clone())).await?;
    Ok(Reply { status: 201, body })
}

/// Stores an office's policy (or the administration's default) at the writer's
/// time, replacing the earlier one; 400/106 for a config its check refuses.
async fn run_put_policy<T: Tx>(tx: &mut T, head: &mut Head, p: &PolicyRecord, stamp: &Stamp) -> Result<Reply> {
    if let Err(e) = p.config.check() {
        return Ok(wrong_format("/config", e));
    }
    let policy = PolicyRecord { updated_at: Timestamp::from_unix_ms(stamp.at_ms), ..p.clone() };
    tx.policy_put(&policy).await?;
    let body = crate::policy_view(&policy).to_string();
    let reference = format!("{}/{}", policy.administration, crate::policy_office_key(&policy));
    append(tx, head, Record::stamped(&policy.author, stamp, RISK_POLICY, &reference, body.clone())).await?;
    Ok(Reply { status: 200, body })
}

/// The journal's message type for a rule profile's version.
pub const RISK_PROFILE: &str = "RISK_PROFILE";

/// `Idempotency-Key`s of profile writes live beside message ids in the
/// idempotency records, told apart by `#`, which no message id holds.
const PROFILE_KEY_PREFIX: &str = "profile#";

/// A profile write, answered once per idempotency key: the answer is stored
/// with the write, in the same transaction, as a message's is.
async fn run_put_profile<T: Tx>(tx: &mut T, head: &mut Head, w: &ProfileWrite, stamp: &Stamp) -> Result<Reply> {
    let Some(key) = &w.idempotency_key else {
        return put_profile_version(tx, head, w, stamp).await;
    };
    let key = format!("{PROFILE_KEY_PREFIX}{key}");
    let what = serde_json::to_string(&(&w.id, &w.draft)).expect("drafts serialize");
    let hash = crate::journal::body_hash(&what);
    if let Some(stored) = tx.idempotency_get(&w.author, &key).await? {
        if stored.body_hash == hash {
            return Ok(stored.reply);
        }
        let refused = EtirError::new(ErrorCode::DuplicateMessage, "")
            .with_detail("this Idempotency-Key was used for another profile write");
        return Ok(Reply::error(&refused));
    }
    let reply = put_profile_version(tx, head, w, stamp).await?;
    tx.idempotency_put([&w.author, &key, &hash], &reply, stamp.at_ms).await?;
    Ok(reply)
}

/// Creates version 1 (under the id the stamp drew) or the next version of a
/// profile of the writer's administration: 201 or 200 with the version, 404/183
/// for an id the administration does not have (another's is not revealed).
async fn put_profile_version<T: Tx>(tx: &mut T, head: &mut Head, w: &ProfileWrite, stamp: &Stamp) -> Result<Reply> {
    let at = Timestamp::from_unix_ms(stamp.at_ms);
    let (status, made) = match &w.id {
        None => {
            let id = stamp.admin_message_id.as_deref().unwrap_or_default();
            (
                201,
                ProfileHistory::create(id, w.administration, w.draft.clone(), &w.author, at)
                    .map(|h| h.current().clone()),
            )
        }
        Some(id) => {
            let versions = tx.profile_versions(w.administration, id).await?;
            let Some(mut history) = crate::history_from(id, versions)? else {
                return Ok(Reply::error(&EtirError::new(ErrorCode::NoSuchRoute, "/id")));
            };
            (200, history.edit(w.draft.clone(), &w.author, at).cloned())
        }
    };
    let profile = match made {
        Ok(profile) => profile,
        // The server checks drafts before writing: this is a caller's bug, refused as a whole.
        Err(e) => {
            let pointer = match &e {
                ProfileError::Expression(_) => "/expression".to_owned(),
                ProfileError::Field { field, .. } => format!("/{field}"),
            };
            return Ok(Reply::error(&EtirError::new(ErrorCode::WrongFormat, &pointer).with_detail(e.to_string())));
        }
    };
    tx.profile_insert(&profile, stamp.at_ms).await?;
    let body = crate::profile_view(&profile).to_string();
    let reference = format!("{}/{}", profile.administration, profile.id);
    append(tx, head, Record::stamped(&w.author, stamp, RISK_PROFILE, &reference, body.clone())).await?;
    Ok(Reply { status, body })
}

async fn run_message<T: Tx>(tx: &mut T, head: &mut Head, s: &Submission, now_ms: i64) -> Result<Reply> {
    let sender = s.sender.id();
    let message_id = s.request.message_id.as_str();
    let body_hash = &s.body_hash;
    if let Some(stored) = tx.idempotency_get(sender, message_id).await? {
        if stored.body_hash == *body_hash {
            return Ok(stored.reply);
        }
        // Not stored: the original answer stays the one replayed.
        return Ok(Reply::error(&EtirError::new(ErrorCode::DuplicateMessage, "/message_id")));
    }
    if let Some(signature) = &s.holder_signature {
        // Checked by the server against the key it read; here again under the writers'
        // lock, so a key replaced or revoked meanwhile signs nothing more.
        let keys = tx.holder_keys_of(&signature.tir_id).await?;
        if !keys.iter().any(|k| k.key_id == signature.key_id && k.revoked_at_ms.is_none()) {
            return Ok(signature_refused(format!(
                "key {} is not the current signing key of {}",
                signature.key_id, signature.tir_id
            )));
        }
    }
    let reference = s.request.guarantee_reference.as_str();
    let current = tx.guarantee_get(reference).await?;
    let offices = tx.offices_get(&s.request.referenced_offices()).await?;
    let holders = tx.holders_get(&exchange::holders_needed(&s.request, &s.sender)).await?;
    let forwarded_to = s.request.forwarded_to();
    let customs = if forwarded_to.is_empty() { Vec::new() } else { tx.customs_countries(&forwarded_to).await? };
    let mut fallback = Vec::new();
    if s.request.occurred_at.is_some() {
        // Read under the writers' lock: a period declared or ended meanwhile is seen.
        fallback = tx.fallback_periods_of("system").await?;
        if let Some(office) = s.request.referenced_offices().first() {
            fallback.extend(tx.fallback_periods_of(office.country().as_str()).await?);
        }
    }
    let registry = Loaded {
        offices: offices.into_iter().map(|o| (o.code.clone(), o)).collect(),
        holders: holders.into_iter().map(|h| (h.tir_id.clone(), h)).collect(),
        customs,
        fallback,
    };
    let reply =
        match exchange::apply(&registry, &s.sender, &s.request, current.as_ref(), Timestamp::from_unix_ms(now_ms)) {
            Ok(outcome) => {
                let kind = s.request.kind.as_str();
                let record = Record {
                    at_ms: now_ms,
                    sender,
                    message_type: kind,
                    message_id: Cow::Borrowed(message_id),
                    reference,
                    body: s.body.clone(),
                    body_hash: body_hash.clone(),
                    holder_signature: s.holder_signature.clone(),
                };
                append(tx, head, record).await?;

                for event in &outcome.events {
                    tx.event_push(reference, event).await?;
                }
                for n in &outcome.notifications {
                    let payload = notification_view(n, &outcome.guarantee);
                    for recipient in &n.recipients {
                        let recipient = recipient.key();
                        let item = OutboxItem {
                            recipient: &recipient,
                            kind: n.kind(),
                            reference,
                            payload: &payload,
                            at_ms: now_ms,
                        };
                        tx.outbox_push(&item).await?;
                    }
                }
                let recipients = outcome.notifications.iter().flat_map(|n| n.recipients.iter());
                let (arrivals, crossed) =
                    crate::console::changes(current.as_ref(), &outcome.guarantee, recipients, &outcome.events, now_ms);
                for arrival in &arrivals {
                    tx.arrival_put(arrival).await?;
                }
                for crossing in &crossed {
                    tx.crossing_insert(crossing).await?;
                }
                let reply = Reply { status: 200, body: response_view(&s.request, &outcome.guarantee) };
                tx.guarantee_put(outcome.guarantee, now_ms).await?;
                reply
            }
            Err(e) => Reply::error(&e),
        };
    tx.idempotency_put([sender, message_id, body_hash], &reply, now_ms).await?;
    Ok(reply)
}
