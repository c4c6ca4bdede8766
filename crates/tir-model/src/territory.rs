//! TIR territories (etir-binding.md, "What changed from binding v1"): a TIR
//! operation runs through one territory. For TIR the European Union is a single
//! territory of its 27 member states; every other country is a territory of its
//! own. Which countries share a territory comes from `data/tir-territories.csv`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{Country, ParseError};
use crate::refdata;

/// The territory of a country: `EU` for a member state of the European Union,
/// the country itself otherwise. Only built from a known country or a known
/// territory code, so it always names a territory of the shipped data.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Territory(Kind);

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// A territory of several countries, by its code in `tir-territories.csv`.
    Union(&'static str),
    /// A country that is a territory of its own.
    Country(Country),
}

impl Territory {
    /// The territory `country` belongs to.
    pub fn of(country: Country) -> Territory {
        match refdata::tir_territory_of(country.as_str()) {
            Some(code) => Territory(Kind::Union(code)),
            None => Territory(Kind::Country(country)),
        }
    }

    /// A territory code: one of `tir-territories.csv` (`EU`), or the alpha-2
    /// code of a country that is a territory of its own. A member state's code
    /// names no territory (`LT` is `Unknown`: its territory is `EU`).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if let Some(code) = refdata::tir_territory(s) {
            return Ok(Territory(Kind::Union(code)));
        }
        let country = Country::parse(s)?;
        match Territory::of(country) {
            own @ Territory(Kind::Country(_)) => Ok(own),
            Territory(Kind::Union(_)) => Err(ParseError::Unknown),
        }
    }

    /// The code: `EU`, or the country's alpha-2 code.
    pub fn as_str(&self) -> &'static str {
        match self.0 {
            Kind::Union(code) => code,
            Kind::Country(country) => country.as_str(),
        }
    }

    /// Whether this is a territory of several countries (the European Union)
    /// rather than a single country.
    pub fn is_union(&self) -> bool {
        matches!(self.0, Kind::Union(_))
    }

    /// Whether `country` belongs to this territory.
    pub fn contains(&self, country: Country) -> bool {
        Territory::of(country) == *self
    }
}

impl Country {
    /// The TIR territory of this country (see `Territory::of`).
    pub fn territory(&self) -> Territory {
        Territory::of(*self)
    }
}

/// By code. Consistent with `Eq`: no territory code is also a country code
/// (checked by `refdata`'s tests).
impl Ord for Territory {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Territory {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Territory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Territory").field(&self.as_str()).finish()
    }
}

string_id!(Territory, "territory code");

#[cfg(test)]
mod tests {
    use super::*;

    fn country(code: &str) -> Country {
        Country::parse(code).unwrap()
    }

    #[test]
    fn member_states_are_in_the_union() {
        for code in ["LT", "PL", "DE", "BG", "RO", "HU", "AT"] {
            let territory = Territory::of(country(code));
            assert_eq!(territory.as_str(), "EU", "{code}");
            assert!(territory.is_union());
            assert_eq!(territory.to_string(), "EU");
            assert_eq!(country(code).territory(), territory);
        }
    }

    #[test]
    fn other_countries_are_territories_of_their_own() {
        for code in ["TR", "RS", "BY", "RU", "KZ", "GE", "AZ", "UZ", "CH", "NO", "GB", "UA", "MD"] {
            let territory = country(code).territory();
            assert_eq!(territory.as_str(), code);
            assert!(!territory.is_union());
            assert_eq!(format!("{territory}"), code);
            assert_eq!(format!("{territory:?}"), format!("Territory({code:?})"));
        }
    }

    #[test]
    fn every_country_of_the_territory_file_is_a_known_country() {
        for member in refdata::tir_territory_members() {
            let country = Country::parse(member.country).unwrap_or_else(|e| panic!("{}: {e}", member.country));
            assert_eq!(country.territory().as_str(), member.territory);
            assert!(country.territory().is_union());
        }
    }

    #[test]
    fn every_country_has_a_territory_that_parses_back() {
        let mut union = 0;
        for record in refdata::countries() {
            let country = country(record.alpha2);
            let territory = country.territory();
            assert!(territory.contains(country));
            assert_eq!(Territory::parse(territory.as_str()), Ok(territory));
            if territory.is_union() {
                union += 1;
                assert_eq!(Territory::parse(record.alpha2), Err(ParseError::Unknown), "{}", record.alpha2);
            } else {
                assert_eq!(territory.as_str(), record.alpha2);
            }
        }
        assert_eq!(union, 27);
    }

    #[test]
    fn contains_follows_the_territory() {
        let eu = Territory::parse("EU").unwrap();
        assert!(eu.contains(country("LT")) && eu.contains(country("BG")));
        assert!(!eu.contains(country("TR")) && !eu.contains(country("RS")));
        let tr = Territory::parse("TR").unwrap();
        assert!(tr.contains(country("TR")));
        assert!(!tr.contains(country("GE")) && !tr.contains(country("BG")));
    }

    #[test]
    fn parse_checks_length_then_shape_then_data() {
        assert_eq!(Territory::parse("EUR"), Err(ParseError::Length));
        assert_eq!(Territory::parse(""), Err(ParseError::Length));
        assert_eq!(Territory::parse("eu"), Err(ParseError::Pattern));
        assert_eq!(Territory::parse("XX"), Err(ParseError::UnknownCountry));
        assert_eq!(Territory::parse("LT"), Err(ParseError::Unknown));
        assert_eq!("TR".parse::<Territory>(), Ok(country("TR").territory()));
    }

    #[test]
    fn serde_uses_the_code() {
        let eu = country("DE").territory();
        assert_eq!(serde_json::to_string(&eu).unwrap(), "\"EU\"");
        assert_eq!(serde_json::from_str::<Territory>("\"EU\"").unwrap(), eu);
        assert_eq!(serde_json::from_str::<Territory>("\"TR\"").unwrap(), country("TR").territory());
        let err = serde_json::from_str::<Territory>("\"LT\"").unwrap_err();
        assert!(err.to_string().contains("invalid territory code: unknown code"), "{err}");
    }

    #[test]
    fn order_is_by_code() {
        let mut territories: Vec<Territory> = ["TR", "LT", "BY", "GE"].map(|c| country(c).territory()).to_vec();
        territories.sort();
        assert_eq!(territories.iter().map(Territory::as_str).collect::<Vec<_>>(), ["BY", "EU", "GE", "TR"]);
    }
}
