//! Which operations of a transport an administration assesses, and at which
//! of its offices the truck will be seen (docs/risk.md, "When assessments run").

use tir_model::guarantee::Guarantee;
use tir_model::party::OfficeRole;
use tir_model::{Country, OfficeCode};

/// One operation `country`'s customs assess, at `office`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub operation: u16,
    pub office: OfficeCode,
}

/// The operations of `guarantee` that run through `country`, each with the
/// office of `country` the declaration names where the truck will be seen:
/// the departure office for the country a transport starts in, else an entry
/// office, else a departure office (goods loaded en route), else a destination
/// office. A country the declaration names no office of is crossed without a
/// customs stop there: it is told of the transport but has nothing to assess.
/// Before recording, the operations are the declaration's plan.
pub fn operations_due(guarantee: &Guarantee, country: Country) -> Vec<Due> {
    let Some(declaration) = guarantee.current_declaration() else {
        return Vec::new();
    };
    let sequences: Vec<(u16, bool)> = if guarantee.operations.is_empty() {
        declaration
            .operations()
            .iter()
            .filter(|p| p.countries().contains(&country))
            .map(|p| (p.sequence(), p.sequence() == 1 && p.countries().first() == Some(&country)))
            .collect()
    } else {
        guarantee
            .operations
            .iter()
            .filter(|o| o.countries.contains(&country))
            .map(|o| (o.sequence, o.sequence == 1 && o.countries.first() == Some(&country)))
            .collect()
    };
    let office_of = |role: OfficeRole| {
        declaration.offices.iter().find(|o| o.role == role && o.code.country() == country).map(|o| o.code.clone())
    };
    sequences
        .into_iter()
        .filter_map(|(operation, starts_transport)| {
            let order: &[OfficeRole] = if starts_transport {
                &[OfficeRole::Departure, OfficeRole::Entry, OfficeRole::Destination]
            } else {
                &[OfficeRole::Entry, OfficeRole::Departure, OfficeRole::Destination]
            };
            let office = order.iter().find_map(|role| office_of(*role))?;
            Some(Due { operation, office })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::guarantee;

    fn due(country: &str) -> Vec<(u16, String)> {
        operations_due(&guarantee(), Country::parse(country).unwrap())
            .into_iter()
            .map(|d| (d.operation, d.office.as_str().to_owned()))
            .collect()
    }

    #[test]
    fn each_country_assesses_its_operation_at_the_office_the_truck_reaches() {
        // TR -> BG -> RO -> HU: operation 1 in TR, operation 2 in the EU.
        assert_eq!(due("TR"), [(1, "TR000100".to_owned())]);
        assert_eq!(due("BG"), [(2, "BG000100".to_owned())]);
        assert_eq!(due("HU"), [(2, "HU000200".to_owned())]);
    }

    #[test]
    fn a_country_without_an_office_on_the_route_or_off_it_has_nothing_due() {
        assert!(due("RO").is_empty());
        assert!(due("DE").is_empty());
    }
}
