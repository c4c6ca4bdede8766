//! Parties of the exchange and the registries customs rely on (offices, ITDB holders).

use serde::{Deserialize, Serialize};

use crate::ids::{Country, OfficeCode, TirId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    Admin,
    Customs,
    GuaranteeChain,
    Holder,
}

impl PartyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Customs => "customs",
            Self::GuaranteeChain => "guarantee_chain",
            Self::Holder => "holder",
        }
    }

    pub fn parse(raw: &str) -> Option<PartyKind> {
        [Self::Admin, Self::Customs, Self::GuaranteeChain, Self::Holder].into_iter().find(|k| k.as_str() == raw)
    }
}

/// An authenticated sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Party {
    Admin,
    Customs { id: String, country: Country },
    GuaranteeChain { id: String },
    Holder { id: String, tir_id: TirId },
}

impl Party {
    pub fn kind(&self) -> PartyKind {
        match self {
            Self::Admin => PartyKind::Admin,
            Self::Customs { .. } => PartyKind::Customs,
            Self::GuaranteeChain { .. } => PartyKind::GuaranteeChain,
            Self::Holder { .. } => PartyKind::Holder,
        }
    }

    /// Stable key for idempotency records and the journal.
    pub fn id(&self) -> &str {
        match self {
            Self::Admin => "admin",
            Self::Customs { id, .. } | Self::GuaranteeChain { id } | Self::Holder { id, .. } => id,
        }
    }

    /// The notification feed this party reads (`None`: the admin reads every feed).
    pub fn feed(&self) -> Option<Recipient> {
        match self {
            Self::Admin => None,
            Self::Customs { country, .. } => Some(Recipient::Customs(*country)),
            Self::GuaranteeChain { id } => Some(Recipient::Chain(id.clone())),
            Self::Holder { tir_id, .. } => Some(Recipient::Holder(tir_id.clone())),
        }
    }
}

/// Whose notification feed an item goes to. Customs feeds are per country,
/// so every system of one administration reads the same feed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    Chain(String),
    Customs(Country),
    Holder(TirId),
}

impl Recipient {
    pub fn key(&self) -> String {
        match self {
            Self::Chain(id) => format!("chain:{id}"),
            Self::Customs(country) => format!("customs:{country}"),
            Self::Holder(tir_id) => format!("holder:{tir_id}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfficeRole {
    Departure,
    Destination,
    Entry,
    Exit,
}

impl OfficeRole {
    pub const ALL: [OfficeRole; 4] = [Self::Departure, Self::Destination, Self::Entry, Self::Exit];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Departure => "departure",
            Self::Destination => "destination",
            Self::Entry => "entry",
            Self::Exit => "exit",
        }
    }

    pub fn parse(raw: &str) -> Option<OfficeRole> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

/// A customs office (I19).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Office {
    pub code: OfficeCode,
    pub country: Country,
    pub name: String,
    pub roles: Vec<OfficeRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlocode: Option<String>,
}

impl Office {
    pub fn has_role(&self, role: OfficeRole) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderStatus {
    Authorized,
    Withdrawn,
}

impl HolderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(raw: &str) -> Option<HolderStatus> {
        [Self::Authorized, Self::Withdrawn].into_iter().find(|s| s.as_str() == raw)
    }
}

/// A holder as listed in the international TIR data bank (I3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HolderRecord {
    pub tir_id: TirId,
    pub name: String,
    pub country: Country,
    pub status: HolderStatus,
}
