//! `tirhub seed`: fills a database with the simulator's transports written
//! straight through the store's engine (the path every API message takes
//! after authentication: the model's checks, the journal, idempotency, the
//! feeds, the console's rows), without HTTP, on a clock that runs over the
//! last days. Made to measure the console's pages at scale
//! (docs/performance.md, "Console pages at scale").
//!
//! Transports are played in waves: up to `in_flight` at once, each moving on
//! by one message in a wave with even odds, so waits between messages (and
//! at borders) vary; the clock moves on after every wave so the whole run
//! spans `days`. The last ones started are still under way at the end, as
//! in a live system; the risk assessor runs beside it, as in `tirhub serve`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tir_model::message::Request;
use tir_model::party::PartyKind;
use tir_model::{Country, TirId, wire};
use tir_sim::model::rng::Rng;
use tir_sim::model::script::{Parties, messages};
use tir_sim::model::traffic::{RunTag, Traffic};
use tir_sim::model::world::World;
use tir_store::{Env, ManualClock, NewParty, Store, Submission, token};

use crate::AnyError;

pub struct SeedOptions {
    pub db: String,
    pub transports: u64,
    pub days: u32,
    pub in_flight: usize,
    pub seed: u64,
    pub assess: bool,
}

/// Messages of a transport, about: to spread the clock.
const MESSAGES_PER_TRANSPORT: u64 = 12;

/// One transport being played: its messages and how many were sent.
struct Playing {
    messages: Vec<(String, Value)>,
    sent: usize,
}

pub async fn run(o: SeedOptions) -> Result<ExitCode, AnyError> {
    let world = Arc::new(World::lithuanian());
    let parties = Parties::symbolic(&world);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let span_ms = i64::from(o.days.max(1)) * 86_400_000;
    let in_flight = o.in_flight.max(1);
    // A transport moves in half the waves: about 2 x 12 waves per transport, `in_flight` at once.
    let waves = (o.transports * MESSAGES_PER_TRANSPORT * 2 / in_flight as u64).max(1);
    let step = Duration::from_millis((span_ms / waves as i64).max(1) as u64);
    let clock = ManualClock::new(now_ms - span_ms);
    let store = tir_store::open_with(&o.db, Env::manual(o.seed, clock.clone())).await?;

    let tokens = register(store.as_ref(), &world, &parties).await?;
    let traffic = Traffic::new(world.clone(), o.seed, 0.05).with_tag(RunTag::from_hash(o.seed));
    let mut assessor = o.assess.then(|| tir_server::Assessor::new(store.clone()));
    let mut rng = Rng::new(o.seed ^ 0x5345_4544);
    let mut playing: Vec<Playing> = Vec::new();
    let (mut started, mut sent, mut refused) = (0u64, 0u64, 0u64);
    let began = Instant::now();
    let mut reported = Instant::now();
    let mut wave = 0u64;
    while started < o.transports || playing.iter().any(|p| p.sent == 0) {
        while playing.len() < in_flight && started < o.transports {
            playing.push(Playing { messages: messages(&traffic.transport(started), &parties), sent: 0 });
            started += 1;
        }
        let mut submissions = Vec::new();
        for (i, p) in playing.iter().enumerate() {
            // A new transport's first message goes at once; then even odds per wave.
            if p.sent == 0 || rng.chance(0.5) {
                let (token, message) = &p.messages[p.sent];
                let sender = Parties::symbolic_party(token).ok_or_else(|| format!("no party behind {token}"))?;
                let request = Request::parse(message).map_err(|e| format!("{message}: {e:?}"))?;
                submissions.push((i, Submission::new(sender, request, wire::canonical(message))));
            }
        }
        let moved: Vec<usize> = submissions.iter().map(|(i, _)| *i).collect();
        let replies = futures_util::future::join_all(submissions.into_iter().map(|(_, s)| store.submit(s))).await;
        for (i, reply) in moved.into_iter().zip(replies) {
            let reply = reply?;
            sent += 1;
            if reply.status != 200 {
                refused += 1;
            }
            playing[i].sent += 1;
        }
        playing.retain(|p| p.sent < p.messages.len());
        if let Some(assessor) = assessor.as_mut().filter(|_| wave.is_multiple_of(8)) {
            while assessor.pass().await? > 0 {}
        }
        clock.advance(step);
        wave += 1;
        if reported.elapsed() > Duration::from_secs(10) {
            reported = Instant::now();
            let rate = sent as f64 / began.elapsed().as_secs_f64();
            eprintln!("{started} transports started, {sent} messages ({rate:.0}/s), {refused} refused");
        }
    }
    if let Some(assessor) = assessor.as_mut() {
        while assessor.pass().await? > 0 {}
    }
    let seconds = began.elapsed().as_secs_f64();
    println!(
        "seeded {} transports ({} still under way) with {sent} messages ({refused} refused) in {seconds:.0} s ({:.0} messages/s), over the last {} days",
        started,
        playing.len(),
        sent as f64 / seconds,
        o.days
    );
    for (label, token) in tokens {
        println!("  {label}: {token}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The world's offices, holders and parties, each party with a fresh token
/// (its id is the symbolic one the messages name); returns a few tokens to sign in with.
async fn register(store: &dyn Store, world: &World, parties: &Parties) -> Result<Vec<(String, String)>, AnyError> {
    for office in &world.offices {
        store.put_office(office.clone()).await?;
    }
    for holder in &world.holders {
        store.put_holder(holder.record.clone()).await?;
    }
    let mut made: Vec<(String, PartyKind, Option<Country>, Option<TirId>)> = Vec::new();
    let mut customs: Vec<_> = parties.customs.iter().collect();
    customs.sort();
    made.extend(customs.into_iter().map(|(c, id)| (id.clone(), PartyKind::Customs, Some(*c), None)));
    made.extend(parties.chains.iter().map(|id| (id.clone(), PartyKind::GuaranteeChain, None, None)));
    let mut holders: Vec<_> = parties.holders.iter().collect();
    holders.sort();
    made.extend(holders.into_iter().map(|(t, id)| (id.clone(), PartyKind::Holder, None, Some(t.clone()))));
    let mut tokens: HashMap<String, String> = HashMap::new();
    for (id, kind, country, tir_id) in made {
        let token = token::generate();
        let party = NewParty {
            id: id.clone(),
            kind,
            name: format!("Seeded {id}"),
            country,
            tir_id,
            token_hash: token::hash(&token),
        };
        store.create_party(party).await?;
        tokens.insert(id, token);
    }
    let mut shown = Vec::new();
    for id in ["customs:LT", "customs:PL", "customs:BY"] {
        if let Some(token) = tokens.get(id) {
            shown.push((format!("sign in as {id}"), token.clone()));
        }
    }
    Ok(shown)
}
