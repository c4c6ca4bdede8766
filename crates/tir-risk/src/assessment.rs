//! The outcome of assessing one operation: the lane, why, and what chose it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tir_model::Timestamp;

use crate::rules::Lane;

/// What selected a transport, written `rule:<id>@<version>`, `model@<version>`,
/// `random` or `none`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SelectedBy {
    Rule { id: String, version: u32 },
    Model { version: String },
    Random,
    None,
}

impl fmt::Display for SelectedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectedBy::Rule { id, version } => write!(f, "rule:{id}@{version}"),
            SelectedBy::Model { version } => write!(f, "model@{version}"),
            SelectedBy::Random => f.write_str("random"),
            SelectedBy::None => f.write_str("none"),
        }
    }
}

impl FromStr for SelectedBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("not rule:<id>@<version>, model@<version>, random or none: {s}");
        match s {
            "random" => Ok(SelectedBy::Random),
            "none" => Ok(SelectedBy::None),
            _ => {
                if let Some(rest) = s.strip_prefix("rule:") {
                    let (id, version) = rest.rsplit_once('@').ok_or_else(bad)?;
                    let version = version.parse().map_err(|_| bad())?;
                    if id.is_empty() {
                        return Err(bad());
                    }
                    Ok(SelectedBy::Rule { id: id.to_owned(), version })
                } else if let Some(version) = s.strip_prefix("model@") {
                    Ok(SelectedBy::Model { version: version.to_owned() })
                } else {
                    Err(bad())
                }
            }
        }
    }
}

impl Serialize for SelectedBy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SelectedBy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// One assessment of one operation by one administration. Confidential to
/// that administration: never shown to holders or guarantee chains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub office: String,
    /// The operation's sequence.
    pub operation: i64,
    pub lane: Lane,
    /// The model's score in [0, 1], when a model scored the transport (even
    /// when a rule decided).
    pub score: Option<f64>,
    /// For the officer, the deciding reason first.
    pub reasons: Vec<String>,
    pub selected_by: SelectedBy,
    pub model_version: Option<String>,
    /// `rule:<id>@<version>` of every profile evaluated (valid and in scope).
    pub profile_versions: Vec<String>,
    /// Those whose expression matched, fired or not.
    pub matched_profiles: Vec<String>,
    /// `rule:<id>@<version>: message` for each profile that gave no verdict.
    pub rule_errors: Vec<String>,
    pub assessed_at: Timestamp,
}

impl Assessment {
    /// Green, selected by nothing, nothing evaluated yet: where every assessment starts.
    pub fn unselected(office: String, operation: i64, assessed_at: Timestamp) -> Assessment {
        Assessment {
            office,
            operation,
            lane: Lane::Green,
            score: None,
            reasons: Vec::new(),
            selected_by: SelectedBy::None,
            model_version: None,
            profile_versions: Vec::new(),
            matched_profiles: Vec::new(),
            rule_errors: Vec::new(),
            assessed_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selected_by_reads_as_it_writes() {
        for s in ["rule:cig-01@3", "model@2026-11-29.1", "random", "none"] {
            let parsed: SelectedBy = s.parse().unwrap();
            assert_eq!(parsed.to_string(), s);
            assert_eq!(serde_json::to_string(&parsed).unwrap(), format!("\"{s}\""));
        }
        assert_eq!("rule:a@b@2".parse(), Ok(SelectedBy::Rule { id: "a@b".into(), version: 2 }));
        for bad in ["rule:@1", "rule:a", "rule:a@x", "model", "Random", ""] {
            assert!(bad.parse::<SelectedBy>().is_err(), "{bad}");
        }
    }
}
