//! The names a log and a witness sign under (C2SP signed-note key names), and their inverses.
//!
//! A log's checkpoints carry the origin `<trust-domain>/<agency>/audit`; a witness cosigns as
//! `<trust-domain>/<agency>/witness`. Both are names of this federation's agencies: whoever
//! reads one back gets an [`AgencyId`] or nothing.

use attesta_certs::AgencyId;

/// The origin (and checkpoint key name) of an agency's log: `<trust-domain>/<agency>/audit`.
pub fn origin(trust_domain: &str, agency: &str) -> String {
    format!("{trust_domain}/{agency}/audit")
}

/// The name under which a witness cosigns: `<trust-domain>/<agency>/witness`.
pub fn witness_name(trust_domain: &str, agency: &str) -> String {
    format!("{trust_domain}/{agency}/witness")
}

/// The agency whose log `origin` is, if it is a log origin of `trust_domain`.
pub fn log_agency(trust_domain: &str, origin: &str) -> Option<AgencyId> {
    agency_in(trust_domain, origin, "audit")
}

/// The agency that cosigns as `name`, if it is a witness name of `trust_domain`.
pub fn witness_agency(trust_domain: &str, name: &str) -> Option<AgencyId> {
    agency_in(trust_domain, name, "witness")
}

fn agency_in(trust_domain: &str, name: &str, role: &str) -> Option<AgencyId> {
    let rest = name.strip_prefix(trust_domain)?.strip_prefix('/')?;
    let agency = rest.strip_suffix(role)?.strip_suffix('/')?;
    AgencyId::new(agency).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_to_their_agency_and_nothing_else() {
        let td = "pu.attesta.example";
        let o = origin(td, "questura-pu");
        let w = witness_name(td, "comune-pesaro");
        assert_eq!(o, "pu.attesta.example/questura-pu/audit");
        assert_eq!(w, "pu.attesta.example/comune-pesaro/witness");
        assert_eq!(log_agency(td, &o).unwrap().as_str(), "questura-pu");
        assert_eq!(witness_agency(td, &w).unwrap().as_str(), "comune-pesaro");
        for bad in [
            w.as_str(),
            "other.example/questura-pu/audit",
            "pu.attesta.example/questura-pu/audit/x",
            "pu.attesta.example//audit",
            "pu.attesta.example/a/b/audit",
            "pu.attesta.example/Questura/audit",
            "pu.attesta.examplex/questura-pu/audit",
        ] {
            assert!(log_agency(td, bad).is_none(), "{bad}");
        }
        assert!(witness_agency(td, &o).is_none());
    }
}
