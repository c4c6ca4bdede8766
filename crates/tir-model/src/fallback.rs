//! The fallback procedure (TIR Convention, Annex 11, Art. 10): while the
//! electronic exchange is unavailable the transport goes on with the
//! accompanying document, and customs record afterwards what they did, each
//! message carrying when it happened at the office (`occurred_at`). A period
//! of fallback is declared for one country, or for the whole system, and
//! ended; the reconciliation lists what the record still misses.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::error::{ErrorCode, EtirError};
use crate::guarantee::{Guarantee, GuaranteeState, OperationState};
use crate::ids::{Country, ParseError, Timestamp};
use crate::party::Party;

/// Where a fallback period applies: one country's customs, or everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FallbackScope {
    System,
    Country(Country),
}

impl FallbackScope {
    /// `system` or an ISO 3166-1 alpha-2 country.
    pub fn parse(raw: &str) -> Result<FallbackScope, ParseError> {
        if raw == "system" { Ok(FallbackScope::System) } else { Country::parse(raw).map(FallbackScope::Country) }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            FallbackScope::System => "system",
            FallbackScope::Country(c) => c.as_str(),
        }
    }

    pub fn includes(&self, country: Country) -> bool {
        match self {
            FallbackScope::System => true,
            FallbackScope::Country(c) => *c == country,
        }
    }
}

impl Serialize for FallbackScope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FallbackScope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        FallbackScope::parse(&raw).map_err(|e| serde::de::Error::custom(format!("fallback scope {raw:?}: {e:?}")))
    }
}

/// One declared period of fallback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FallbackPeriod {
    pub id: String,
    pub scope: FallbackScope,
    pub reason: String,
    /// When the exchange became unavailable (declared, may be in the past).
    pub from: Timestamp,
    /// When it was available again; `None` while the period is open.
    pub until: Option<Timestamp>,
    /// Party id of who declared it, and when.
    pub declared_by: String,
    pub declared_at: Timestamp,
    pub ended_by: Option<String>,
    pub ended_at: Option<Timestamp>,
}

/// Who may declare or end a period of `scope`: the admin for any, customs for
/// their own country only; nobody else (380 at `/scope`).
pub fn may_declare(party: &Party, scope: FallbackScope) -> Result<(), EtirError> {
    match (party, scope) {
        (Party::Admin, _) => Ok(()),
        (Party::Customs { country, .. }, FallbackScope::Country(c)) if *country == c => Ok(()),
        (Party::Customs { country, .. }, _) => Err(EtirError::new(ErrorCode::PartyNotAuthorized, "/scope")
            .with_detail(format!("customs of {country} declare fallback for {country} only"))),
        _ => Err(EtirError::new(ErrorCode::PartyNotAuthorized, "/scope")
            .with_detail("fallback is declared by customs (their country) or the admin")),
    }
}

/// Whether `party` is concerned by `period`: customs of its country (every
/// customs for the system), the admin, and guarantee chains and holders,
/// whose transports may pass any country.
pub fn concerns(party: &Party, period: &FallbackPeriod) -> bool {
    match party {
        Party::Customs { country, .. } => period.scope.includes(*country),
        _ => true,
    }
}

/// Whether `party` reads the period's reconciliation: the admin, customs it
/// concerns and guarantee chains (their guarantees only); not holders.
pub fn may_reconcile(party: &Party, period: &FallbackPeriod) -> bool {
    match party {
        Party::Holder { .. } => false,
        _ => concerns(party, period),
    }
}

impl FallbackPeriod {
    /// A new period, declared by `by` at `now`; `from` may not be after `now` (102).
    pub fn declare(
        id: String,
        scope: FallbackScope,
        reason: String,
        from: Timestamp,
        by: &str,
        now: Timestamp,
    ) -> Result<FallbackPeriod, EtirError> {
        if from > now {
            return Err(EtirError::new(ErrorCode::InvalidDomain, "/from")
                .with_detail(format!("{from} is in the future: a fallback period is declared once it has begun")));
        }
        Ok(FallbackPeriod {
            id,
            scope,
            reason,
            from,
            until: None,
            declared_by: by.to_owned(),
            declared_at: now,
            ended_by: None,
            ended_at: None,
        })
    }

    /// Whether a declaration of `scope`, `from` and `reason` repeats this one:
    /// `Some(true)` the same, `Some(false)` same scope and start but another
    /// reason (a conflicting repeat), `None` another period.
    pub fn repeated_by(&self, scope: FallbackScope, from: Timestamp, reason: &str) -> Option<bool> {
        (self.scope == scope && self.from == from).then(|| self.reason == reason)
    }

    /// The period ended at `until` by `by`: `Ok(None)` when it already ended
    /// at that time (a repeat: nothing changes). `until` before `from` or
    /// after `now` is 102; a period ended at another time 299.
    pub fn end(&self, until: Timestamp, by: &str, now: Timestamp) -> Result<Option<FallbackPeriod>, EtirError> {
        if let Some(ended) = self.until {
            if ended == until {
                return Ok(None);
            }
            return Err(EtirError::new(ErrorCode::DuplicateMessage, "/until")
                .with_detail(format!("fallback period {} already ended at {ended}", self.id)));
        }
        if until < self.from {
            return Err(EtirError::new(ErrorCode::InvalidDomain, "/until")
                .with_detail(format!("{until} is before the period's start, {}", self.from)));
        }
        if until > now {
            return Err(EtirError::new(ErrorCode::InvalidDomain, "/until")
                .with_detail(format!("{until} is in the future: a period is ended once the exchange is back")));
        }
        Ok(Some(FallbackPeriod {
            until: Some(until),
            ended_by: Some(by.to_owned()),
            ended_at: Some(now),
            ..self.clone()
        }))
    }

    /// Whether something done in `country` at `at` falls in this period.
    pub fn covers(&self, country: Country, at: Timestamp) -> bool {
        self.scope.includes(country) && self.from <= at && self.until.is_none_or(|until| at <= until)
    }

    /// Whether the interval [start, end] (end `None`: still open) meets this period.
    fn meets(&self, start: Timestamp, end: Option<Timestamp>) -> bool {
        self.until.is_none_or(|until| start <= until) && end.is_none_or(|end| end >= self.from)
    }

    /// Whether `guarantee` has an operation with a country in this period's
    /// scope that was open (started, not yet terminated) during it.
    pub fn had_open_operation(&self, guarantee: &Guarantee) -> bool {
        guarantee.operations.iter().any(|op| {
            op.countries.iter().any(|c| self.scope.includes(*c))
                && op.started_at.is_some_and(|started| self.meets(started, op.terminated_at))
        })
    }

    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "scope": self.scope.as_str(),
            "reason": self.reason,
            "from": self.from.to_rfc3339(),
            "until": self.until.map(Timestamp::to_rfc3339),
            "open": self.until.is_none(),
            "declared_by": self.declared_by,
            "declared_at": self.declared_at.to_rfc3339(),
            "ended_by": self.ended_by,
            "ended_at": self.ended_at.map(Timestamp::to_rfc3339),
        })
    }
}

/// The first period of `periods` covering `country` at `at`, the earliest
/// declared start first; 286 at `/occurred_at` when none does.
pub fn covering(periods: &[FallbackPeriod], country: Country, at: Timestamp) -> Result<&FallbackPeriod, EtirError> {
    periods.iter().filter(|p| p.covers(country, at)).min_by_key(|p| (p.from, p.id.as_str())).ok_or_else(|| {
        EtirError::new(ErrorCode::NotInFallbackPeriod, "/occurred_at")
            .with_detail(format!("no fallback period of {country} or of the system covers {at}"))
    })
}

/// What the record of `guarantee` still misses: a termination for each
/// started operation, a discharge for each terminated one, and the release of
/// an accepted guarantee. Empty: reconciled.
pub fn missing(guarantee: &Guarantee) -> Vec<Value> {
    let mut missing = Vec::new();
    for op in &guarantee.operations {
        match op.state {
            OperationState::Started => missing.push(json!({
                "kind": "termination", "operation": op.sequence, "countries": op.countries,
                "started_at": op.started_at.map(Timestamp::to_rfc3339),
            })),
            OperationState::Terminated => missing.push(json!({
                "kind": "discharge", "operation": op.sequence,
                "country": op.terminated_by.as_ref().map(|o| o.country()),
                "terminated_at": op.terminated_at.map(Timestamp::to_rfc3339),
            })),
            _ => {}
        }
    }
    if guarantee.state == GuaranteeState::Accepted {
        missing.push(json!({"kind": "release"}));
    }
    missing
}

/// The reconciliation of `period` over the transports it touched (each with
/// whether a message was recorded in fallback under it), as the caller may read them.
pub fn reconciliation_view(period: &FallbackPeriod, transports: &[(Guarantee, bool)]) -> Value {
    let rows: Vec<Value> = transports
        .iter()
        .map(|(g, recorded_in_fallback)| {
            let missing = missing(g);
            json!({
                "reference": g.reference.as_str(),
                "state": g.state.as_str(),
                "recorded_in_fallback": recorded_in_fallback,
                "reconciled": missing.is_empty(),
                "missing": missing,
            })
        })
        .collect();
    let reconciled = period.until.is_some() && rows.iter().all(|r| r["reconciled"] == true);
    json!({"period": period.view(), "reconciled": reconciled, "transports": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(raw: &str) -> Timestamp {
        Timestamp::parse_rfc3339(raw).unwrap()
    }

    fn lt() -> Country {
        Country::parse("LT").unwrap()
    }

    fn period(scope: FallbackScope) -> FallbackPeriod {
        FallbackPeriod::declare(
            "fb-1".into(),
            scope,
            "network down".into(),
            t("2026-11-30T08:00:00Z"),
            "cus_lt",
            t("2026-11-30T09:00:00Z"),
        )
        .unwrap()
    }

    #[test]
    fn rfc3339_times_parse_with_fractions_and_offsets() {
        assert_eq!(t("1970-01-01T00:00:00Z").unix_ms(), 0);
        assert_eq!(t("1970-01-01T00:00:01.5Z").unix_ms(), 1500);
        assert_eq!(t("1970-01-01T00:00:01.123456Z").unix_ms(), 1123);
        assert_eq!(t("1970-01-01T02:00:00+02:00").unix_ms(), 0);
        assert_eq!(t("2026-11-30T08:00:00.000Z").to_rfc3339(), "2026-11-30T08:00:00.000Z");
        for bad in [
            "2026-11-30",
            "2026-11-30 08:00:00Z",
            "2026-11-30T25:00:00Z",
            "2026-11-30T08:00:00",
            "2026-11-30T08:00:00.Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), Err(ParseError::Pattern), "{bad}");
        }
        assert_eq!(Timestamp::parse_rfc3339(&"9".repeat(41)), Err(ParseError::Length));
    }

    #[test]
    fn scope_is_system_or_a_country() {
        assert_eq!(FallbackScope::parse("system"), Ok(FallbackScope::System));
        assert_eq!(FallbackScope::parse("LT"), Ok(FallbackScope::Country(lt())));
        assert!(FallbackScope::parse("lt").is_err());
        assert!(FallbackScope::System.includes(lt()));
    }

    #[test]
    fn customs_declare_for_their_own_country_only() {
        let customs = Party::Customs { id: "cus_lt".into(), country: lt() };
        assert!(may_declare(&customs, FallbackScope::Country(lt())).is_ok());
        let other = may_declare(&customs, FallbackScope::Country(Country::parse("PL").unwrap())).unwrap_err();
        assert_eq!((other.code.number(), other.pointer.as_str()), (380, "/scope"));
        assert_eq!(may_declare(&customs, FallbackScope::System).unwrap_err().code.number(), 380);
        assert!(may_declare(&Party::Admin, FallbackScope::System).is_ok());
        let chain = Party::GuaranteeChain { id: "gc_1".into() };
        assert_eq!(may_declare(&chain, FallbackScope::Country(lt())).unwrap_err().code.number(), 380);
    }

    #[test]
    fn a_period_starting_in_the_future_is_102() {
        let e = FallbackPeriod::declare(
            "x".into(),
            FallbackScope::System,
            "r".into(),
            t("2026-11-30T10:00:00Z"),
            "admin",
            t("2026-11-30T09:00:00Z"),
        )
        .unwrap_err();
        assert_eq!((e.code.number(), e.pointer.as_str()), (102, "/from"));
    }

    #[test]
    fn a_period_covers_its_scope_from_its_start_to_its_end() {
        let open = period(FallbackScope::Country(lt()));
        assert!(open.covers(lt(), t("2026-11-30T08:00:00Z")));
        assert!(open.covers(lt(), t("2027-01-01T00:00:00Z")), "open: no end yet");
        assert!(!open.covers(lt(), t("2026-11-30T07:59:59Z")));
        assert!(!open.covers(Country::parse("PL").unwrap(), t("2026-11-30T08:30:00Z")));
        let ended = open.end(t("2026-11-30T08:45:00Z"), "cus_lt", t("2026-11-30T09:00:00Z")).unwrap().unwrap();
        assert!(ended.covers(lt(), t("2026-11-30T08:45:00Z")));
        assert!(!ended.covers(lt(), t("2026-11-30T08:45:00.001Z")));
        assert!(period(FallbackScope::System).covers(Country::parse("PL").unwrap(), t("2026-11-30T08:30:00Z")));
        assert_eq!(covering(&[ended], lt(), t("2026-11-30T10:00:00Z")).unwrap_err().code.number(), 286);
    }

    #[test]
    fn ending_checks_the_time_and_repeats_quietly() {
        let open = period(FallbackScope::Country(lt()));
        let now = t("2026-11-30T09:00:00Z");
        let before = open.end(t("2026-11-30T07:00:00Z"), "cus_lt", now).unwrap_err();
        assert_eq!((before.code.number(), before.pointer.as_str()), (102, "/until"));
        assert_eq!(open.end(t("2026-11-30T09:00:01Z"), "cus_lt", now).unwrap_err().code.number(), 102);
        let ended = open.end(t("2026-11-30T08:30:00Z"), "cus_lt", now).unwrap().unwrap();
        assert_eq!(ended.end(t("2026-11-30T08:30:00Z"), "cus_lt", now), Ok(None));
        assert_eq!(ended.end(t("2026-11-30T08:40:00Z"), "cus_lt", now).unwrap_err().code.number(), 299);
    }

    #[test]
    fn a_repeated_declaration_is_recognised() {
        let p = period(FallbackScope::Country(lt()));
        assert_eq!(p.repeated_by(p.scope, p.from, "network down"), Some(true));
        assert_eq!(p.repeated_by(p.scope, p.from, "power cut"), Some(false));
        assert_eq!(p.repeated_by(FallbackScope::System, p.from, "network down"), None);
    }
}
