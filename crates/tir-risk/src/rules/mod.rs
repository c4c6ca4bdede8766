//! Rule profiles (docs/risk.md, "Rule profiles"): a risk officer's CEL
//! expression over the transport context, with a lane, a selection
//! percentage, a weight, validity dates, an office scope, and versions.

pub mod cel;

use std::fmt;

use serde::{Deserialize, Serialize};
use tir_model::{Country, Date, OfficeCode, Timestamp};

pub use self::cel::{Bindings, CompileError, Compiled, EvalError, Preview, compile, preview};

/// Green: release; yellow: documentary check; red: physical inspection.
/// Ordered, so the highest lane wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Green,
    Yellow,
    Red,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Green => "green",
            Lane::Yellow => "yellow",
            Lane::Red => "red",
        }
    }
}

/// Where a profile applies: every office of its administration, or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfficeScope {
    All,
    Offices(Vec<OfficeCode>),
}

impl OfficeScope {
    pub fn includes(&self, office: &str) -> bool {
        match self {
            OfficeScope::All => true,
            OfficeScope::Offices(offices) => offices.iter().any(|o| o.as_str() == office),
        }
    }
}

/// What an officer writes; the rest of a `Profile` is stamped on saving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileDraft {
    pub name: String,
    pub expression: String,
    pub lane: Lane,
    /// 0 to 100: the share of matching transports the profile selects.
    pub selection_percent: f64,
    /// Breaks ties between fired profiles of the same lane; higher wins.
    pub weight: i64,
    /// Shown to the officer when the profile selects a transport.
    pub reason: String,
    pub valid_from: Date,
    /// Inclusive; `None`: no end.
    pub valid_until: Option<Date>,
    pub office_scope: OfficeScope,
}

/// One version of a profile, never changed once made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub id: String,
    /// 1, 2, ...: an edit makes the next one.
    pub version: u32,
    pub administration: Country,
    /// What the officer wrote, as written: its fields sit beside the others in the JSON.
    #[serde(flatten)]
    pub draft: ProfileDraft,
    pub author: String,
    pub created_at: Timestamp,
}

impl Profile {
    /// `rule:<id>@<version>`, as assessments name it.
    pub fn reference(&self) -> String {
        format!("rule:{}@{}", self.id, self.version)
    }

    /// Valid on `date` (both ends inclusive).
    pub fn valid_on(&self, date: Date) -> bool {
        self.draft.valid_from <= date && self.draft.valid_until.is_none_or(|until| date <= until)
    }

    /// Whether it applies to a transport assessed by `administration` at `office` on `date`.
    pub fn applies(&self, administration: &str, office: &str, date: Date) -> bool {
        self.administration.as_str() == administration
            && self.valid_on(date)
            && self.draft.office_scope.includes(office)
    }
}

/// Why a draft is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProfileError {
    Expression(CompileError),
    Field { field: String, message: String },
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::Expression(e) => write!(f, "expression {e}"),
            ProfileError::Field { field, message } => write!(f, "{field}: {message}"),
        }
    }
}

impl std::error::Error for ProfileError {}

fn field_error(field: &str, message: &str) -> ProfileError {
    ProfileError::Field { field: field.into(), message: message.into() }
}

impl ProfileDraft {
    /// Checks the draft and compiles its expression.
    pub fn check(&self) -> Result<Compiled, ProfileError> {
        if self.name.trim().is_empty() {
            return Err(field_error("name", "required"));
        }
        if self.reason.trim().is_empty() {
            return Err(field_error("reason", "required: it is what the officer is shown"));
        }
        if !(0.0..=100.0).contains(&self.selection_percent) {
            return Err(field_error("selection_percent", "must be from 0 to 100"));
        }
        if self.valid_until.is_some_and(|until| until < self.valid_from) {
            return Err(field_error("valid_until", "is before valid_from"));
        }
        if matches!(&self.office_scope, OfficeScope::Offices(o) if o.is_empty()) {
            return Err(field_error("office_scope", "an empty list selects nothing: use all"));
        }
        compile(&self.expression).map_err(ProfileError::Expression)
    }
}

/// Every version of one profile, oldest first; store-agnostic (the caller
/// persists it as it likes). Versions are only appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredHistory")]
pub struct ProfileHistory {
    versions: Vec<Profile>,
}

/// A history as read back: checked before it becomes a `ProfileHistory`.
#[derive(Deserialize)]
struct StoredHistory {
    versions: Vec<Profile>,
}

impl TryFrom<StoredHistory> for ProfileHistory {
    type Error = String;

    fn try_from(stored: StoredHistory) -> Result<Self, String> {
        let Some(first) = stored.versions.first() else {
            return Err("a profile history has at least version 1".into());
        };
        for (i, p) in stored.versions.iter().enumerate() {
            if p.version as usize != i + 1 || p.id != first.id || p.administration != first.administration {
                return Err(format!("version {} of {} is out of sequence", p.version, p.id));
            }
        }
        Ok(ProfileHistory { versions: stored.versions })
    }
}

impl ProfileHistory {
    /// Version 1 of a new profile.
    pub fn create(
        id: &str,
        administration: Country,
        draft: ProfileDraft,
        author: &str,
        at: Timestamp,
    ) -> Result<ProfileHistory, ProfileError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(field_error("id", "1 or more letters, digits, '-' or '_'"));
        }
        draft.check()?;
        Ok(ProfileHistory { versions: vec![stamp(id, 1, administration, draft, author, at)] })
    }

    /// Records an edit as the next version; the older ones stay as they were.
    pub fn edit(&mut self, draft: ProfileDraft, author: &str, at: Timestamp) -> Result<&Profile, ProfileError> {
        draft.check()?;
        let current = self.current();
        let next = stamp(&current.id, current.version + 1, current.administration, draft, author, at);
        self.versions.push(next);
        Ok(self.current())
    }

    pub fn current(&self) -> &Profile {
        self.versions.last().expect("a history has version 1")
    }

    pub fn version(&self, version: u32) -> Option<&Profile> {
        self.versions.get((version as usize).checked_sub(1)?)
    }

    pub fn versions(&self) -> &[Profile] {
        &self.versions
    }
}

fn stamp(id: &str, version: u32, administration: Country, d: ProfileDraft, author: &str, at: Timestamp) -> Profile {
    Profile { id: id.to_owned(), version, administration, draft: d, author: author.to_owned(), created_at: at }
}

/// A profile version ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledProfile {
    pub profile: Profile,
    pub program: Compiled,
}

/// The current versions of one administration's profiles, compiled once.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    profiles: Vec<CompiledProfile>,
}

impl RuleSet {
    /// Compiles `profiles`; the first that does not compile is the error
    /// (stored profiles compiled when saved, so this means a crate change).
    pub fn new(profiles: impl IntoIterator<Item = Profile>) -> Result<RuleSet, (String, CompileError)> {
        let mut compiled = Vec::new();
        for profile in profiles {
            match compile(&profile.draft.expression) {
                Ok(program) => compiled.push(CompiledProfile { profile, program }),
                Err(e) => return Err((profile.reference(), e)),
            }
        }
        Ok(RuleSet { profiles: compiled })
    }

    pub fn profiles(&self) -> &[CompiledProfile] {
        &self.profiles
    }

    /// The profiles that apply to a transport assessed by `administration` at `office` on `date`.
    pub fn applicable<'a>(
        &'a self,
        administration: &'a str,
        office: &'a str,
        date: Date,
    ) -> impl Iterator<Item = &'a CompiledProfile> + 'a {
        self.profiles.iter().filter(move |p| p.profile.applies(administration, office, date))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn date(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    pub(crate) fn draft(expression: &str, lane: Lane, percent: f64) -> ProfileDraft {
        ProfileDraft {
            name: "cigarettes".into(),
            expression: expression.into(),
            lane,
            selection_percent: percent,
            weight: 0,
            reason: "cigarettes under-valued".into(),
            valid_from: date("2026-01-01"),
            valid_until: None,
            office_scope: OfficeScope::All,
        }
    }

    fn ro() -> Country {
        Country::parse("RO").unwrap()
    }

    #[test]
    fn an_edit_makes_the_next_version_and_keeps_the_old() {
        let at = Timestamp::from_unix_ms(1);
        let mut history = ProfileHistory::create("cig", ro(), draft("true", Lane::Red, 30.0), "ana", at).unwrap();
        assert_eq!(history.current().reference(), "rule:cig@1");
        let edited = history.edit(draft(r#""2402" in hs4"#, Lane::Yellow, 50.0), "ion", Timestamp::from_unix_ms(2));
        assert_eq!(edited.unwrap().reference(), "rule:cig@2");
        assert_eq!(history.versions().len(), 2);
        let v1 = history.version(1).unwrap();
        assert_eq!((v1.draft.expression.as_str(), v1.draft.lane, v1.author.as_str()), ("true", Lane::Red, "ana"));
        assert_eq!(history.current().author, "ion");
        assert!(history.version(0).is_none() && history.version(3).is_none());
        // A refused edit adds no version.
        assert!(matches!(
            history.edit(draft("hs4 ==", Lane::Red, 1.0), "ion", at),
            Err(ProfileError::Expression(CompileError { line: 1, .. }))
        ));
        assert_eq!(history.versions().len(), 2);
        let json = serde_json::to_value(&history).unwrap();
        let back: ProfileHistory = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, history);
        // A stored history with a gap or none at all is refused, not trusted.
        assert!(serde_json::from_value::<ProfileHistory>(serde_json::json!({"versions": []})).is_err());
        let mut gap = json;
        gap["versions"].as_array_mut().unwrap().remove(0);
        assert!(serde_json::from_value::<ProfileHistory>(gap).is_err());
    }

    #[test]
    fn drafts_are_checked() {
        let at = Timestamp::from_unix_ms(1);
        let bad = |d: ProfileDraft| ProfileHistory::create("p", ro(), d, "ana", at).unwrap_err();
        assert!(
            matches!(bad(draft("true", Lane::Red, 101.0)), ProfileError::Field { field, .. } if field == "selection_percent")
        );
        let mut d = draft("true", Lane::Red, 5.0);
        d.valid_until = Some(date("2025-12-31"));
        assert!(matches!(bad(d), ProfileError::Field { field, .. } if field == "valid_until"));
        let mut d = draft("true", Lane::Red, 5.0);
        d.reason = " ".into();
        assert!(matches!(bad(d), ProfileError::Field { field, .. } if field == "reason"));
        assert!(ProfileHistory::create("a b", ro(), draft("true", Lane::Red, 5.0), "ana", at).is_err());
    }

    #[test]
    fn validity_and_scope_decide_what_applies() {
        let at = Timestamp::from_unix_ms(1);
        let mut d = draft("true", Lane::Red, 100.0);
        d.valid_until = Some(date("2026-06-30"));
        d.office_scope = OfficeScope::Offices(vec![OfficeCode::parse("RO000100").unwrap()]);
        let p = ProfileHistory::create("p", ro(), d, "ana", at).unwrap().current().clone();
        assert!(p.applies("RO", "RO000100", date("2026-01-01")));
        assert!(p.applies("RO", "RO000100", date("2026-06-30")));
        assert!(!p.applies("RO", "RO000100", date("2025-12-31")));
        assert!(!p.applies("RO", "RO000100", date("2026-07-01")));
        assert!(!p.applies("RO", "RO000200", date("2026-03-01")));
        assert!(!p.applies("HU", "RO000100", date("2026-03-01")));
        let scope: OfficeScope = serde_json::from_str(r#"{"offices": ["RO000100"]}"#).unwrap();
        assert!(scope.includes("RO000100"));
        assert_eq!(serde_json::to_string(&OfficeScope::All).unwrap(), r#""all""#);
    }
}
