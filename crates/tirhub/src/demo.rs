//! `tirhub demo`: a server on a fresh SQLite file, seeded with the parties of
//! a real corridor, whose tokens are printed for the user to try the API. The
//! corridor runs from Kazakhstan through Russia and Belarus into the Union at
//! Medininkai: a TIR transport, since the Union is one TIR territory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tir_model::party::{HolderRecord, HolderStatus, Office, PartyKind};
use tir_model::{Country, TirId};
use tir_sim::model::world::{DEMO_CORRIDOR, border_offices};
use tir_store::{NewParty, Store, token};

use crate::AnyError;

/// Holders of countries on the corridor.
pub const HOLDERS: [(&str, &str, &str); 3] = [
    ("KAZ/001/1001", "Dala Trans TOO", "KZ"),
    ("LTU/012/345", "Baltic Haulage UAB", "LT"),
    ("POL/005/2002", "Wisla Transport Sp. z o.o.", "PL"),
];

pub struct Seeded {
    pub admin_token: String,
    /// (label, party id, token)
    pub parties: Vec<(String, String, String)>,
    pub offices: Vec<Office>,
}

async fn party(
    store: &Arc<dyn Store>,
    kind: PartyKind,
    name: &str,
    country: Option<Country>,
    tir_id: Option<TirId>,
) -> Result<(String, String), AnyError> {
    let id = format!("{}_{}", &kind.as_str()[..3], token::random_hex(6));
    let secret = token::generate();
    let new =
        NewParty { id: id.clone(), kind, name: name.to_owned(), country, tir_id, token_hash: token::hash(&secret) };
    store.create_party(new).await?;
    Ok((id, secret))
}

pub async fn seed(store: &Arc<dyn Store>) -> Result<Seeded, AnyError> {
    let mut parties = Vec::new();
    let mut offices = Vec::new();
    for country in DEMO_CORRIDOR {
        let c = Country::parse(country).map_err(|e| format!("{country}: {e:?}"))?;
        let (id, secret) = party(store, PartyKind::Customs, &format!("Customs of {}", c.name()), Some(c), None).await?;
        parties.push((format!("customs {country}"), id, secret));
        for office in border_offices(c) {
            store.put_office(office.clone()).await?;
            offices.push(office);
        }
    }
    let (id, secret) = party(store, PartyKind::GuaranteeChain, "IRU international guarantee chain", None, None).await?;
    parties.push(("guarantee chain".to_owned(), id, secret));
    for (tir_id, name, country) in HOLDERS {
        let tir_id = TirId::parse(tir_id).map_err(|e| format!("{tir_id}: {e:?}"))?;
        let country = Country::parse(country).map_err(|e| format!("{country}: {e:?}"))?;
        store
            .put_holder(HolderRecord {
                tir_id: tir_id.clone(),
                name: name.to_owned(),
                country,
                status: HolderStatus::Authorized,
            })
            .await?;
        let (id, secret) = party(store, PartyKind::Holder, name, None, Some(tir_id.clone())).await?;
        parties.push((format!("holder {tir_id}"), id, secret));
    }
    Ok(Seeded { admin_token: token::generate(), parties, offices })
}

/// What `tirhub demo` runs.
pub struct DemoOptions {
    pub file: PathBuf,
    pub listen: SocketAddr,
    pub limits: tir_server::RateLimits,
    pub serve_limits: tir_server::ServeLimits,
    /// Messages per second of the background traffic; `None`: no traffic.
    pub traffic_rate: Option<f64>,
    pub tls: Option<tir_server::Tls>,
}

pub async fn run(options: DemoOptions) -> Result<ExitCode, AnyError> {
    let DemoOptions { file, listen, limits, serve_limits, traffic_rate, tls } = options;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.clone().into_os_string();
        path.push(suffix);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!("cannot remove the old demo file {}: {e}", PathBuf::from(path).display()).into());
            }
        }
    }
    if let Some(rate) = traffic_rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err("--traffic-rate must be a positive number of messages per second".into());
    }
    let url = format!("sqlite://{}", file.display());
    let store = tir_store::open(&url).await?;
    let seeded = seed(&store).await?;
    // Bound first, so that what is printed names the port (`--listen 127.0.0.1:0` included).
    let listener = crate::server::bind(listen).await?;
    let addr = listener.local_addr()?;
    println!("tirhub demo: fresh database {}", file.display());
    println!("\nparties and their bearer tokens (shown once):");
    println!("  {:<22} {:<20} {}", "admin", "-", seeded.admin_token);
    for (label, id, secret) in &seeded.parties {
        println!("  {label:<22} {id:<20} {secret}");
    }
    println!("\ncustoms offices at border crossings (UN/LOCODE; - where the shipped data has none):");
    for office in &seeded.offices {
        println!("  {} {} ({})", office.code, office.name, office.unlocode.as_deref().unwrap_or("-"));
    }
    // With TLS, curl needs the CA of --tls-cert: --cacert FILE.
    let (scheme, curl) = if tls.is_some() { ("https", "curl -s --cacert CA.pem") } else { ("http", "curl -s") };
    println!("\ntry:  {curl} {scheme}://{addr}/v1/offices/LTMDK001 -H 'Authorization: Bearer {}'", seeded.admin_token);
    println!(
        "the README walks a transport BY -> LT -> PL with curl (docs/curl-walkthrough.sh): two TIR operations, BY then the EU.\n"
    );
    let customs_lt = seeded
        .parties
        .iter()
        .find(|(label, ..)| label == "customs LT")
        .map(|(_, _, secret)| secret.clone())
        .ok_or("the demo seeds customs of LT")?;
    let app = tir_server::App::new(store, &seeded.admin_token);
    // The background traffic speaks plain HTTP to this server: with TLS the demo serves without it.
    let traffic_rate = if tls.is_some() { None } else { traffic_rate };
    if tls.is_some() {
        println!(
            "the console: https://{addr}/console/sign-in (sign in with a token above; no background traffic over TLS)"
        );
    }
    let serve = crate::server::serve_on(app, listener, limits, serve_limits, false, tls);
    let admin = seeded.admin_token.clone();
    let live = async move {
        if let Err(e) = traffic(addr, &admin, &customs_lt, traffic_rate).await {
            eprintln!("demo traffic stopped: {e}");
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        biased;
        served = serve => served?,
        () = live => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Transports under way at once, each pausing about `DWELL` between its
/// messages: the arrivals always hold some, at about 6 messages/s at most.
const TRANSPORTS_UNDER_WAY: usize = 12;
const DWELL: std::time::Duration = std::time::Duration::from_secs(2);

/// Traffic of the Lithuanian world: its parties made through the admin API of
/// this very server (as `tirhub simulate` makes them), the console's sign-in
/// tokens of each role printed, then transports played in the background
/// until the server stops, customs reading the assessments and recording
/// their inspections.
async fn traffic(addr: SocketAddr, admin: &str, customs_lt: &str, rate: Option<f64>) -> Result<(), AnyError> {
    use tir_sim::simulate;

    let url = format!("http://{addr}");
    let world = Arc::new(tir_sim::model::world::World::lithuanian());
    let client = tir_sim::client::ExchangeClient::new(&url);
    let parties = simulate::bootstrap(&client, admin, &world).await?;
    // The busiest holder: the holder portal has transports to show from the start.
    let holder =
        world.holders.iter().max_by(|a, b| a.activity.total_cmp(&b.activity)).ok_or("the demo world has holders")?;
    let holder_token = parties.holders.get(&holder.record.tir_id).ok_or("the busiest holder has a token")?;
    println!("the console: {url}/console/sign-in; sign in with one token per role:");
    println!("  sign in as customs LT: {customs_lt}");
    println!("  sign in as holder {} ({}): {holder_token}", holder.record.tir_id, holder.record.name);
    println!("  sign in as guarantee chain ({}): {}", world.chains[0], parties.chains[0]);
    println!("  sign in as admin: {admin}");
    let Some(rate) = rate else {
        println!("no background traffic (--no-traffic)");
        return Ok(());
    };
    let corridors: Vec<&str> = world.corridors.iter().map(|c| c.name).collect();
    let seed = simulate::seed_from_clock();
    println!(
        "live traffic: {rate} messages/s along {} (seed {seed}); Lithuanian customs see arrivals within seconds",
        corridors.join(", ")
    );
    let options = simulate::SimulateOptions {
        url,
        admin_token: admin.to_owned(),
        rate_msgs_per_s: Some(rate),
        duration: None,
        transports: None,
        seed,
        irregular_share: 0.05,
        concurrency: TRANSPORTS_UNDER_WAY,
        inspections: true,
        risk_policy: None,
    };
    let report = simulate::run_in(options, world, Some(parties), false, DWELL).await?;
    eprintln!("demo traffic ended:\n{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use tir_model::operation;
    use tir_store::{Env, MemoryStore};

    use super::*;

    #[tokio::test]
    async fn the_demo_seeds_a_tir_corridor_entering_the_union_at_medininkai() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::open_with(Env::system()));
        let seeded = seed(&store).await.unwrap();
        let corridor: Vec<Country> = DEMO_CORRIDOR.iter().map(|c| Country::parse(c).unwrap()).collect();
        let operations = operation::plan(&corridor).unwrap();
        let union = operations.last().unwrap();
        assert!(union.territory().is_union());
        assert_eq!(union.countries()[0].as_str(), "LT");
        for c in &corridor {
            assert!(seeded.parties.iter().any(|(label, ..)| *label == format!("customs {c}")), "customs {c}");
            assert!(seeded.offices.iter().any(|o| o.country == *c), "no office in {c}");
        }
        let codes: Vec<&str> = seeded.offices.iter().map(|o| o.code.as_str()).collect();
        for code in ["BYSIM001", "LTMDK001", "PLKUB001"] {
            assert!(codes.contains(&code), "{code} not in {codes:?}");
        }
        for (_, _, country) in HOLDERS {
            assert!(DEMO_CORRIDOR.contains(&country), "holder of {country}, off the corridor");
        }
    }
}
