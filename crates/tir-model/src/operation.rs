//! The TIR operations of a transport, derived from its itinerary
//! (etir-binding.md, "Operations" and "Declaration"): consecutive countries of
//! one territory form one TIR operation, so Türkiye → Bulgaria → Romania →
//! Hungary → Austria → Germany is two operations, TR then EU.

use std::fmt;

use serde::Serialize;

use crate::error::ErrorCode;
use crate::ids::Country;
use crate::limits::ITINERARY_COUNTRIES_MAX;
use crate::territory::Territory;

/// One TIR operation as the itinerary plans it: the countries it runs through,
/// in the order travelled, all of one territory. Only `plan` makes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedOperation {
    sequence: u16,
    territory: Territory,
    countries: Vec<Country>,
}

impl PlannedOperation {
    /// 1 for the first operation of the transport, then 2, 3, ...
    pub fn sequence(&self) -> u16 {
        self.sequence
    }

    pub fn territory(&self) -> Territory {
        self.territory
    }

    /// Never empty; no country twice.
    pub fn countries(&self) -> &[Country] {
        &self.countries
    }
}

/// Why an itinerary plans no TIR transport. Each maps to a contract code
/// (`code`): 181 when the itinerary never leaves its first territory,
/// 180 when a country comes again within one operation, 105 past the length
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanError {
    /// 105: more than `ITINERARY_COUNTRIES_MAX` countries.
    TooLong,
    /// 181: the itinerary spans fewer than two territories (or is empty), so
    /// it is not a TIR transport. Answers before 180: a transport inside one
    /// territory is not a TIR transport whatever its order.
    NotTirTransport,
    /// 180: `itinerary[index]` is the country just before it.
    CountryFollowsItself { index: usize },
    /// 180: `itinerary[index]` is already in the operation it belongs to: it
    /// comes again with no country of another territory in between.
    CountryAgainInTerritory { index: usize },
}

impl PlanError {
    /// The contract's error code for it.
    pub const fn code(self) -> ErrorCode {
        match self {
            PlanError::TooLong => ErrorCode::WrongLength,
            PlanError::NotTirTransport => ErrorCode::NotTirTransport,
            PlanError::CountryFollowsItself { .. } | PlanError::CountryAgainInTerritory { .. } => {
                ErrorCode::DeclarationRuleBroken
            }
        }
    }

    /// The index in the itinerary the error points at; `None` when it is
    /// about the itinerary as a whole.
    pub const fn index(self) -> Option<usize> {
        match self {
            PlanError::TooLong | PlanError::NotTirTransport => None,
            PlanError::CountryFollowsItself { index } | PlanError::CountryAgainInTerritory { index } => Some(index),
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::TooLong => write!(f, "the itinerary lists more than {ITINERARY_COUNTRIES_MAX} countries"),
            PlanError::NotTirTransport => {
                f.write_str("the itinerary does not leave its first territory: not a TIR transport")
            }
            PlanError::CountryFollowsItself { .. } => f.write_str("a country follows itself on the itinerary"),
            PlanError::CountryAgainInTerritory { .. } => {
                f.write_str("a country appears again before the itinerary has left its territory")
            }
        }
    }
}

impl std::error::Error for PlanError {}

/// The TIR operations of `itinerary`, in order: consecutive countries of one
/// territory form one operation. Checks the itinerary's own rules of the
/// contract's Declaration section: at least two territories (181); no country
/// follows itself, and a country appears again only after a country of
/// another territory (180). An itinerary past `ITINERARY_COUNTRIES_MAX` is
/// refused first (105, as the declaration's own bound on the array would);
/// then the first broken rule, in the order above, answers; among the 180s,
/// the earliest index.
pub fn plan(itinerary: &[Country]) -> Result<Vec<PlannedOperation>, PlanError> {
    if itinerary.len() > ITINERARY_COUNTRIES_MAX {
        return Err(PlanError::TooLong);
    }
    let first = itinerary.first().map(Country::territory);
    if itinerary.iter().all(|c| Some(c.territory()) == first) {
        return Err(PlanError::NotTirTransport);
    }
    let mut operations: Vec<PlannedOperation> = Vec::new();
    for (index, &country) in itinerary.iter().enumerate() {
        let territory = country.territory();
        match operations.last_mut() {
            Some(current) if current.territory == territory => {
                if current.countries.last() == Some(&country) {
                    return Err(PlanError::CountryFollowsItself { index });
                }
                if current.countries.contains(&country) {
                    return Err(PlanError::CountryAgainInTerritory { index });
                }
                current.countries.push(country);
            }
            _ => {
                // At most ITINERARY_COUNTRIES_MAX operations, checked above.
                let sequence = operations.len() as u16 + 1;
                operations.push(PlannedOperation { sequence, territory, countries: vec![country] });
            }
        }
    }
    Ok(operations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refdata;
    use proptest::prelude::*;

    fn itinerary(codes: &[&str]) -> Vec<Country> {
        codes.iter().map(|c| Country::parse(c).unwrap()).collect()
    }

    /// Each operation as `(sequence, territory, countries)`, for short asserts.
    fn summary(operations: &[PlannedOperation]) -> Vec<(u16, &'static str, Vec<&'static str>)> {
        operations
            .iter()
            .map(|o| (o.sequence(), o.territory().as_str(), o.countries().iter().map(Country::as_str).collect()))
            .collect()
    }

    fn planned(codes: &[&str]) -> Vec<(u16, &'static str, Vec<&'static str>)> {
        summary(&plan(&itinerary(codes)).unwrap())
    }

    fn refused(codes: &[&str]) -> PlanError {
        plan(&itinerary(codes)).unwrap_err()
    }

    #[test]
    fn turkiye_to_germany_through_the_union_is_two_operations() {
        assert_eq!(
            planned(&["TR", "BG", "RO", "HU", "AT", "DE"]),
            [(1, "TR", vec!["TR"]), (2, "EU", vec!["BG", "RO", "HU", "AT", "DE"])]
        );
    }

    #[test]
    fn leaving_and_reentering_the_union_is_four_operations_two_in_the_union() {
        let operations = planned(&["TR", "BG", "RS", "HU", "DE"]);
        assert_eq!(
            operations,
            [(1, "TR", vec!["TR"]), (2, "EU", vec!["BG"]), (3, "RS", vec!["RS"]), (4, "EU", vec!["HU", "DE"])]
        );
        assert_eq!(operations.iter().filter(|o| o.1 == "EU").count(), 2);
    }

    #[test]
    fn an_itinerary_inside_the_union_is_not_a_tir_transport() {
        let err = refused(&["LT", "PL", "DE"]);
        assert_eq!(err, PlanError::NotTirTransport);
        assert_eq!(err.code().number(), 181);
        assert_eq!(err.index(), None);
        // v1's demo corridor, Via Baltica, never leaves the Union either.
        assert_eq!(refused(&["FI", "EE", "LV", "LT", "PL", "CZ", "SK"]), PlanError::NotTirTransport);
    }

    #[test]
    fn one_country_or_none_is_not_a_tir_transport() {
        assert_eq!(refused(&["TR"]), PlanError::NotTirTransport);
        assert_eq!(refused(&["LT"]), PlanError::NotTirTransport);
        assert_eq!(refused(&[]), PlanError::NotTirTransport);
    }

    #[test]
    fn corridors_entering_the_union_from_outside_plan_one_operation_per_territory() {
        assert_eq!(
            planned(&["KZ", "RU", "BY", "LT", "PL", "DE"]),
            [(1, "KZ", vec!["KZ"]), (2, "RU", vec!["RU"]), (3, "BY", vec!["BY"]), (4, "EU", vec!["LT", "PL", "DE"])]
        );
        assert_eq!(
            planned(&["TR", "GE", "AZ", "KZ"]),
            [(1, "TR", vec!["TR"]), (2, "GE", vec!["GE"]), (3, "AZ", vec!["AZ"]), (4, "KZ", vec!["KZ"])]
        );
        assert_eq!(planned(&["LT", "BY"]), [(1, "EU", vec!["LT"]), (2, "BY", vec!["BY"])]);
    }

    #[test]
    fn a_country_that_follows_itself_is_180() {
        for (codes, index) in
            [(&["TR", "TR", "BG"][..], 1), (&["TR", "BG", "BG"][..], 2), (&["TR", "BG", "RO", "RO", "RS"][..], 3)]
        {
            let err = refused(codes);
            assert_eq!(err, PlanError::CountryFollowsItself { index }, "{codes:?}");
            assert_eq!(err.code().number(), 180);
            assert_eq!(err.index(), Some(index));
        }
    }

    #[test]
    fn a_country_again_without_leaving_its_territory_is_180() {
        for (codes, index) in [(&["TR", "BG", "RO", "BG"][..], 3), (&["BY", "LT", "PL", "DE", "PL", "CZ"][..], 4)] {
            let err = refused(codes);
            assert_eq!(err, PlanError::CountryAgainInTerritory { index }, "{codes:?}");
            assert_eq!(err.code().number(), 180);
            assert_eq!(err.index(), Some(index));
        }
    }

    #[test]
    fn a_country_may_come_again_after_another_territory() {
        assert_eq!(
            planned(&["TR", "BG", "RS", "BG"]),
            [(1, "TR", vec!["TR"]), (2, "EU", vec!["BG"]), (3, "RS", vec!["RS"]), (4, "EU", vec!["BG"])]
        );
        assert_eq!(planned(&["TR", "GE", "TR"]), [(1, "TR", vec!["TR"]), (2, "GE", vec!["GE"]), (3, "TR", vec!["TR"])]);
    }

    #[test]
    fn not_a_tir_transport_answers_before_a_repeated_country() {
        assert_eq!(refused(&["DE", "AT", "DE"]), PlanError::NotTirTransport);
        assert_eq!(refused(&["TR", "TR"]), PlanError::NotTirTransport);
    }

    #[test]
    fn the_earliest_broken_rule_of_the_itinerary_answers() {
        assert_eq!(refused(&["TR", "BG", "RO", "BG", "BG"]), PlanError::CountryAgainInTerritory { index: 3 });
        assert_eq!(refused(&["TR", "TR", "BG", "RO", "BG"]), PlanError::CountryFollowsItself { index: 1 });
    }

    #[test]
    fn the_itinerary_length_has_a_limit() {
        let alternating: Vec<&str> = ["TR", "GE"].into_iter().cycle().take(ITINERARY_COUNTRIES_MAX + 1).collect();
        assert_eq!(plan(&itinerary(&alternating[..ITINERARY_COUNTRIES_MAX])).unwrap().len(), ITINERARY_COUNTRIES_MAX);
        let err = refused(&alternating);
        assert_eq!(err, PlanError::TooLong);
        assert_eq!((err.code().number(), err.index()), (105, None));
    }

    #[test]
    fn errors_read_as_the_rule_broken() {
        assert_eq!(
            PlanError::NotTirTransport.to_string(),
            "the itinerary does not leave its first territory: not a TIR transport"
        );
        assert!(PlanError::CountryFollowsItself { index: 1 }.to_string().contains("follows itself"));
        assert!(PlanError::CountryAgainInTerritory { index: 3 }.to_string().contains("appears again"));
        assert!(PlanError::TooLong.to_string().contains(&ITINERARY_COUNTRIES_MAX.to_string()));
    }

    #[test]
    fn planned_operation_serializes_as_the_contract_names_it() {
        let operations = plan(&itinerary(&["TR", "BG", "RO"])).unwrap();
        assert_eq!(
            serde_json::to_value(&operations[1]).unwrap(),
            serde_json::json!({"sequence": 2, "territory": "EU", "countries": ["BG", "RO"]})
        );
    }

    /// The invariants of any plan of `itinerary`.
    fn check_plan(itinerary: &[Country], operations: &[PlannedOperation]) -> Result<(), TestCaseError> {
        let concatenated: Vec<Country> = operations.iter().flat_map(|o| o.countries().iter().copied()).collect();
        prop_assert_eq!(&concatenated, itinerary, "the operations partition the itinerary in order");
        let sequences: Vec<u16> = operations.iter().map(PlannedOperation::sequence).collect();
        prop_assert_eq!(sequences, (1..=operations.len() as u16).collect::<Vec<_>>());
        prop_assert!(operations.len() >= 2, "a TIR transport spans two territories at least");
        for pair in operations.windows(2) {
            prop_assert_ne!(pair[0].territory(), pair[1].territory());
        }
        for operation in operations {
            prop_assert!(!operation.countries().is_empty());
            for (i, &country) in operation.countries().iter().enumerate() {
                prop_assert_eq!(country.territory(), operation.territory());
                prop_assert!(!operation.countries()[..i].contains(&country), "no country twice in one operation");
            }
        }
        Ok(())
    }

    fn countries_where(union: bool) -> Vec<Country> {
        refdata::countries()
            .iter()
            .map(|r| Country::parse(r.alpha2).unwrap())
            .filter(|c| c.territory().is_union() == union)
            .collect()
    }

    /// The countries of one operation: one to four member states in any order,
    /// or one country that is a territory of its own.
    fn operation_countries() -> impl Strategy<Value = Vec<Country>> {
        prop_oneof![
            prop::sample::subsequence(countries_where(true), 1..=4).prop_shuffle(),
            prop::sample::select(countries_where(false)).prop_map(|c| vec![c]),
        ]
    }

    /// Itineraries across territories, with the operations they must give.
    fn transport() -> impl Strategy<Value = Vec<Vec<Country>>> {
        prop::collection::vec(operation_countries(), 2..=5).prop_filter("one operation per territory visit", |ops| {
            ops.iter().map(Vec::len).sum::<usize>() <= ITINERARY_COUNTRIES_MAX
                && ops.windows(2).all(|w| w[0][0].territory() != w[1][0].territory())
        })
    }

    /// A few countries in and out of the Union, so that repeats are frequent.
    fn small_itinerary() -> impl Strategy<Value = Vec<Country>> {
        let pool = itinerary(&["TR", "BG", "RO", "RS", "HU", "LT", "BY"]);
        prop::collection::vec(prop::sample::select(pool), 0..=ITINERARY_COUNTRIES_MAX)
    }

    fn one_territory(itinerary: &[Country]) -> bool {
        itinerary.windows(2).all(|w| w[0].territory() == w[1].territory())
    }

    /// Whether `itinerary[index]` is already in the run of countries of its
    /// territory that leads up to it.
    fn comes_again_in_its_territory(itinerary: &[Country], index: usize) -> bool {
        let territory = itinerary[index].territory();
        itinerary[..index].iter().rev().take_while(|c| c.territory() == territory).any(|&c| c == itinerary[index])
    }

    proptest! {
        #[test]
        fn operations_partition_an_itinerary_across_territories(expected in transport()) {
            let itinerary: Vec<Country> = expected.concat();
            let operations = plan(&itinerary).unwrap();
            check_plan(&itinerary, &operations)?;
            let countries: Vec<Vec<Country>> = operations.iter().map(|o| o.countries().to_vec()).collect();
            prop_assert_eq!(countries, expected);
        }

        #[test]
        fn any_itinerary_is_planned_or_refused_for_a_rule_it_breaks(itinerary in small_itinerary()) {
            match plan(&itinerary) {
                Ok(operations) => check_plan(&itinerary, &operations)?,
                Err(PlanError::NotTirTransport) => prop_assert!(one_territory(&itinerary)),
                Err(err) => {
                    prop_assert!(!one_territory(&itinerary));
                    let index = err.index().unwrap();
                    prop_assert!(comes_again_in_its_territory(&itinerary, index));
                    prop_assert!(!(0..index).any(|i| comes_again_in_its_territory(&itinerary, i)), "the earliest");
                    let follows_itself = itinerary[index - 1] == itinerary[index];
                    prop_assert_eq!(err == PlanError::CountryFollowsItself { index }, follows_itself);
                }
            }
        }
    }
}
