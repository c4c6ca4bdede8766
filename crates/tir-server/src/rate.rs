//! Per-party rate limits (binding v2, code 386): a token bucket per
//! authenticated party, keyed by its id, refilled continuously at its kind's
//! rate up to its kind's burst. A request finding less than one token is
//! refused with HTTP 429, `Retry-After` and code 386, and takes nothing, so
//! one party's flood never spends another's tokens.
//!
//! Written by hand rather than with `governor`: governor 0.10 brings dashmap,
//! quanta, futures-timer/-sink, nonzero_ext, spinning_top and a second
//! hashbrown into a workspace that has none of them (compile time counts on a
//! two-core machine), one keyed limiter holds one quota (four limiters for
//! four kinds), and its keyed state is not pruned unless the caller runs
//! `retain_recent` itself. What is needed here is a refill, a compare and a
//! pruning pass: about fifty lines, tested with an injected clock.
//!
//! One `Mutex<HashMap>` suffices: it is held for a lookup and a few float
//! operations (well under a microsecond) against a store write of a
//! millisecond or more per message, and only for parties of a limited kind
//! (an unlimited kind never touches it).
//!
//! Memory stays bounded: only authenticated parties get a bucket (the
//! registry bounds them), and every `PRUNE_INTERVAL` the buckets that have
//! refilled to their burst are dropped; such a bucket is the same as none.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tir_model::party::{Party, PartyKind};

use crate::error::ApiError;

/// A rate in requests per second, and the burst: how many requests a party
/// that has been quiet may send at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    per_second: f64,
    burst: u32,
}

impl RateLimit {
    /// `None` unless the rate is finite and positive and the burst at least 1.
    pub fn new(per_second: f64, burst: u32) -> Option<RateLimit> {
        (per_second.is_finite() && per_second > 0.0 && burst >= 1).then_some(RateLimit { per_second, burst })
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.per_second, self.burst)
    }
}

/// `RATE/BURST`, e.g. `10/50`: RATE requests per second (may be fractional, `0.5/5`), BURST at least 1.
impl FromStr for RateLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<RateLimit, String> {
        let wrong = || {
            format!(
                "{s:?}: expected RATE/BURST, e.g. 10/50 (requests per second, a positive number; burst, a whole number from 1)"
            )
        };
        let (rate, burst) = s.trim().split_once('/').ok_or_else(wrong)?;
        let rate: f64 = rate.trim().parse().map_err(|_| wrong())?;
        let burst: u32 = burst.trim().parse().map_err(|_| wrong())?;
        RateLimit::new(rate, burst).ok_or_else(wrong)
    }
}

/// The default limits, chosen from what each kind of party sends, so that a
/// genuine peak passes and a runaway or hostile client is cut off long before
/// it can slow the others:
///
/// - A customs administration's national system relays every office of its
///   country (I1, I7, I9, I11, I13, their queries and the feed): 500/s is
///   orders of magnitude above the busiest country's eTIR peak, and a burst of
///   1,000 lets it replay a backlog after an outage of its own.
pub const CUSTOMS_RATE_LIMIT: RateLimit = RateLimit { per_second: 500.0, burst: 1_000 };
/// - A guarantee chain sends E1 and E3 per guarantee and reads its feed; a
///   whole year's TIR guarantees is a few per second on average: 50/s, burst 200.
pub const GUARANTEE_CHAIN_RATE_LIMIT: RateLimit = RateLimit { per_second: 50.0, burst: 200 };
/// - A holder sends E9/E11/E13 and a few queries per transport: 10/s with a
///   burst of 50 lets a large fleet lodge a morning's declarations in one go,
///   and refuses a holder sending 1,000 requests per second after its first 50.
pub const HOLDER_RATE_LIMIT: RateLimit = RateLimit { per_second: 10.0, burst: 50 };
/// - The admin (the operator) loads the registry (offices, holders, parties) in
///   bulk: a generous 200/s, burst 1,000, still bounded should its token leak.
pub const ADMIN_RATE_LIMIT: RateLimit = RateLimit { per_second: 200.0, burst: 1_000 };

/// How often buckets that have refilled to their burst are dropped.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// The limit of each kind of party; `None`: that kind is not limited.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    pub customs: Option<RateLimit>,
    pub guarantee_chain: Option<RateLimit>,
    pub holder: Option<RateLimit>,
    pub admin: Option<RateLimit>,
}

impl RateLimits {
    /// No limit for anyone: what `App::new` starts with, so that tests and
    /// `tirhub bench` measure the exchange, not the limiter.
    pub fn unlimited() -> RateLimits {
        RateLimits { customs: None, guarantee_chain: None, holder: None, admin: None }
    }

    pub fn of(&self, kind: PartyKind) -> Option<RateLimit> {
        match kind {
            PartyKind::Customs => self.customs,
            PartyKind::GuaranteeChain => self.guarantee_chain,
            PartyKind::Holder => self.holder,
            PartyKind::Admin => self.admin,
        }
    }
}

/// The per-kind defaults applied by `tirhub serve` and `tirhub demo`.
impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            customs: Some(CUSTOMS_RATE_LIMIT),
            guarantee_chain: Some(GUARANTEE_CHAIN_RATE_LIMIT),
            holder: Some(HOLDER_RATE_LIMIT),
            admin: Some(ADMIN_RATE_LIMIT),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(limit: RateLimit, now: Instant) -> Bucket {
        Bucket { tokens: f64::from(limit.burst), at: now }
    }

    /// Adds what has flowed in since the last look, capped at the burst.
    fn refill(&mut self, limit: RateLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second).min(f64::from(limit.burst));
        self.at = self.at.max(now);
    }

    /// Takes one token, or says how long until there is one.
    fn take(&mut self, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        self.refill(limit, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / limit.per_second))
        }
    }
}

const KINDS: [PartyKind; 4] = [PartyKind::Admin, PartyKind::Customs, PartyKind::GuaranteeChain, PartyKind::Holder];

fn kind_index(kind: PartyKind) -> usize {
    match kind {
        PartyKind::Admin => 0,
        PartyKind::Customs => 1,
        PartyKind::GuaranteeChain => 2,
        PartyKind::Holder => 3,
    }
}

/// `Retry-After` in whole seconds: the wait rounded up, at least 1.
fn retry_after_seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

struct Buckets {
    by_party: HashMap<String, Bucket>,
    pruned_at: Instant,
}

/// The buckets of the parties of limited kinds.
pub(crate) struct Limiter {
    limits: RateLimits,
    buckets: Mutex<Buckets>,
    /// Requests refused, by kind in `PartyKind` order (GET /metrics).
    refused: [AtomicU64; 4],
}

impl Limiter {
    pub(crate) fn new(limits: RateLimits) -> Limiter {
        let buckets = Buckets { by_party: HashMap::new(), pruned_at: Instant::now() };
        Limiter { limits, buckets: Mutex::new(buckets), refused: Default::default() }
    }

    /// Requests refused so far, by party kind.
    pub(crate) fn refusals(&self) -> [(PartyKind, u64); 4] {
        KINDS.map(|kind| (kind, self.refused[kind_index(kind)].load(Ordering::Relaxed)))
    }

    pub(crate) fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Admits one request of `party`, or refuses it with 429/386.
    pub(crate) fn admit(&self, party: &Party) -> Result<(), ApiError> {
        let Some(limit) = self.limits.of(party.kind()) else {
            return Ok(());
        };
        self.admit_at(party.kind(), party.id(), limit, Instant::now())
    }

    fn admit_at(&self, kind: PartyKind, id: &str, limit: RateLimit, now: Instant) -> Result<(), ApiError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(buckets.pruned_at) >= PRUNE_INTERVAL {
            self.prune(&mut buckets, now);
        }
        let taken = match buckets.by_party.get_mut(id) {
            Some(bucket) => bucket.take(limit, now),
            None => {
                let mut bucket = Bucket::full(limit, now);
                let taken = bucket.take(limit, now);
                buckets.by_party.insert(id.to_owned(), bucket);
                taken
            }
        };
        drop(buckets);
        if taken.is_err() {
            self.refused[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
        }
        taken.map_err(|wait| ApiError::TooManyRequests {
            retry_after: retry_after_seconds(wait),
            detail: format!(
                "rate limit of a {}: {} requests per second, bursts of {}",
                kind.as_str(),
                limit.per_second,
                limit.burst
            ),
        })
    }

    /// Drops the buckets that have refilled to their burst (or whose kind is no
    /// longer limited): a full bucket and no bucket admit alike.
    fn prune(&self, buckets: &mut Buckets, now: Instant) {
        // A bucket does not know its kind: the longest refill of the limited kinds bounds them all.
        let longest = [self.limits.customs, self.limits.guarantee_chain, self.limits.holder, self.limits.admin]
            .into_iter()
            .flatten()
            .map(|l| f64::from(l.burst) / l.per_second)
            .fold(0.0, f64::max);
        buckets.by_party.retain(|_, bucket| now.saturating_duration_since(bucket.at).as_secs_f64() < longest);
        buckets.pruned_at = now;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().unwrap().by_party.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn limit(per_second: f64, burst: u32) -> RateLimit {
        RateLimit::new(per_second, burst).unwrap()
    }

    fn refused_after(result: Result<(), ApiError>) -> Option<u64> {
        match result {
            Ok(()) => None,
            Err(ApiError::TooManyRequests { retry_after, .. }) => Some(retry_after),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_full_bucket_admits_its_burst_then_refuses() {
        let l = limit(20.0, 2);
        let t0 = Instant::now();
        let mut b = Bucket::full(l, t0);
        assert_eq!(b.take(l, t0), Ok(()));
        assert_eq!(b.take(l, t0), Ok(()));
        // No time has passed: one token is 1/20 s away.
        assert_eq!(b.take(l, t0), Err(ms(50)));
    }

    #[test]
    fn the_bucket_refills_continuously_and_never_past_its_burst() {
        let l = limit(20.0, 2);
        let t0 = Instant::now();
        let mut b = Bucket::full(l, t0);
        b.take(l, t0).unwrap();
        b.take(l, t0).unwrap();
        // 25 ms: half a token; the wait is the other half.
        let wait = b.take(l, t0 + ms(25)).unwrap_err();
        assert!((wait.as_secs_f64() - 0.025).abs() < 1e-9, "{wait:?}");
        // 50 ms in all: one token.
        assert_eq!(b.take(l, t0 + ms(50)), Ok(()));
        // A long quiet time fills the bucket to its burst, not beyond.
        let later = t0 + Duration::from_secs(3600);
        b.refill(l, later);
        assert_eq!(b.tokens, 2.0);
        assert_eq!(b.take(l, later), Ok(()));
        assert_eq!(b.take(l, later), Ok(()));
        assert!(b.take(l, later).is_err());
    }

    #[test]
    fn a_clock_read_out_of_order_takes_no_token_back() {
        let l = limit(1.0, 1);
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = Bucket::full(l, t0);
        b.take(l, t0).unwrap();
        // A request that read the clock a little earlier finds an empty bucket, not a negative one.
        assert!(b.take(l, t0 - ms(5)).is_err());
        assert_eq!(b.take(l, t0 + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn retry_after_is_the_wait_rounded_up_to_whole_seconds_at_least_one() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_nanos(1)), 1);
        assert_eq!(retry_after_seconds(ms(999)), 1);
        assert_eq!(retry_after_seconds(ms(1000)), 1);
        assert_eq!(retry_after_seconds(ms(1001)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(100)), 100);
    }

    #[test]
    fn at_the_limit_admitted_past_it_refused_with_the_wait_until_the_next_token() {
        let l = limit(0.5, 3);
        let limiter = Limiter::new(RateLimits { holder: Some(l), ..RateLimits::unlimited() });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(refused_after(limiter.admit_at(PartyKind::Holder, "hol_1", l, t0)), None);
        }
        // One token every 2 s.
        assert_eq!(refused_after(limiter.admit_at(PartyKind::Holder, "hol_1", l, t0)), Some(2));
        assert_eq!(refused_after(limiter.admit_at(PartyKind::Holder, "hol_1", l, t0 + ms(1500))), Some(1));
        assert_eq!(refused_after(limiter.admit_at(PartyKind::Holder, "hol_1", l, t0 + ms(2000))), None);
        // Another holder has its own bucket.
        assert_eq!(refused_after(limiter.admit_at(PartyKind::Holder, "hol_2", l, t0 + ms(2000))), None);
    }

    #[test]
    fn a_holder_sending_a_thousand_requests_a_second_is_refused_by_default() {
        let limits = RateLimits::default();
        let l = limits.of(PartyKind::Holder).unwrap();
        let limiter = Limiter::new(limits);
        let t0 = Instant::now();
        let admitted =
            (0..1000u64).filter(|i| limiter.admit_at(PartyKind::Holder, "hol_1", l, t0 + ms(*i)).is_ok()).count();
        // Its burst, then its rate over the second.
        assert!((50..=60).contains(&admitted), "{admitted}");
        // The same second from a customs administration passes whole.
        let c = limits.of(PartyKind::Customs).unwrap();
        let admitted =
            (0..1000u64).filter(|i| limiter.admit_at(PartyKind::Customs, "cus_1", c, t0 + ms(*i)).is_ok()).count();
        assert_eq!(admitted, 1000);
    }

    #[test]
    fn the_defaults_rank_the_kinds_and_unlimited_limits_nobody() {
        let d = RateLimits::default();
        let rate = |k| d.of(k).unwrap().per_second();
        assert!(rate(PartyKind::Holder) < rate(PartyKind::GuaranteeChain));
        assert!(rate(PartyKind::GuaranteeChain) < rate(PartyKind::Customs));
        assert!(rate(PartyKind::Admin) > rate(PartyKind::GuaranteeChain));
        let u = RateLimits::unlimited();
        for kind in [PartyKind::Admin, PartyKind::Customs, PartyKind::GuaranteeChain, PartyKind::Holder] {
            assert_eq!(u.of(kind), None);
        }
        let limiter = Limiter::new(u);
        for _ in 0..10_000 {
            limiter.admit(&Party::Admin).unwrap();
        }
        assert_eq!(limiter.len(), 0, "an unlimited kind keeps no bucket");
    }

    #[test]
    fn buckets_refilled_to_their_burst_are_pruned_and_those_still_refilling_kept() {
        let l = limit(10.0, 50);
        let limiter = Limiter::new(RateLimits { holder: Some(l), ..RateLimits::unlimited() });
        let t0 = Instant::now();
        for i in 0..1000 {
            limiter.admit_at(PartyKind::Holder, &format!("hol_{i}"), l, t0).unwrap();
        }
        assert_eq!(limiter.len(), 1000);
        // hol_busy empties its bucket a second before the pruning pass: 5 s to refill.
        for _ in 0..50 {
            limiter.admit_at(PartyKind::Holder, "hol_busy", l, t0 + Duration::from_secs(59)).unwrap();
        }
        assert_eq!(limiter.len(), 1001, "no pruning before a minute has passed");
        // A minute on, the 1000 are full again: dropped (hol_0 gets a fresh one); hol_busy is kept.
        limiter.admit_at(PartyKind::Holder, "hol_0", l, t0 + PRUNE_INTERVAL).unwrap();
        assert_eq!(limiter.len(), 2);
        // Its state survived: one second has brought it 10 tokens, not a full 50.
        let busy = (0..50).filter(|_| limiter.admit_at(PartyKind::Holder, "hol_busy", l, t0 + PRUNE_INTERVAL).is_ok());
        assert_eq!(busy.count(), 10);
    }

    #[test]
    fn rate_slash_burst_parses_and_nonsense_does_not() {
        assert_eq!("10/50".parse::<RateLimit>(), Ok(limit(10.0, 50)));
        assert_eq!(" 0.5 / 5 ".parse::<RateLimit>(), Ok(limit(0.5, 5)));
        for bad in ["", "10", "10/", "/5", "0/5", "-1/5", "10/0", "10/1.5", "inf/5", "NaN/5", "x/y", "10/50/1"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?}");
        }
        assert_eq!(limit(10.0, 50).to_string(), "10/50");
    }
}
