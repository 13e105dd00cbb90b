//! The registry's own routes: `GET /v1/monitor/expiring` (a Questura's permits about to
//! expire in a comune) and `GET /v1/family/{cf}` (a registry's famiglia anagrafica). Each
//! request is parsed (`parse_*`) before the router asks the policy with its purpose and
//! territory, so no data is read for a caller without a grant.

use http::StatusCode;
use serde::Serialize;

use super::respond::{data_as_of, json, store_failure, Resp};
use super::served::Served;
use super::{Peer, Shared};
use crate::domain::cf::CodiceFiscale;
use crate::domain::places::ComuneCode;
use crate::domain::presence::residence_on;
use crate::domain::purpose::Purpose;
use crate::domain::records::format_date;
use crate::problem::{Problem, ProblemKind};
use crate::wire::{bad_request, parse_purpose, query_params, today};

#[derive(Serialize)]
struct Expiring {
    subject: String,
    valid_until: String,
    renewal_pending: bool,
}

#[derive(Serialize)]
struct ExpiringAnswer<'a> {
    issuer: &'a str,
    audience: &'a str,
    comune: String,
    from: String,
    to: String,
    data_as_of: Option<String>,
    permits: Vec<Expiring>,
}

/// `GET /v1/monitor/expiring?days=N&purpose=P[&comune=C]`, parsed.
pub(super) struct ExpiringQuery {
    days: u16,
    pub purpose: Purpose,
    pub comune: ComuneCode,
}

/// Parses the monitor's query. The comune defaults to the caller's, when the manifest's
/// directory gives it exactly one; the policy decides whether the caller may see it.
pub(super) fn parse_expiring(
    shared: &Shared,
    peer: &Peer,
    query: Option<&str>,
) -> Result<ExpiringQuery, Problem> {
    let mut params = query_params(query, &["days", "purpose", "comune"])?;
    let days = params
        .get("days")
        .map(|v| {
            v.parse::<u16>()
                .ok()
                .filter(|d| (1..=366).contains(d))
                .ok_or_else(|| bad_request("days: 1 to 366"))
        })
        .transpose()?;
    let purpose = parse_purpose(&params.remove("purpose").unwrap_or_default())?;
    let comune = params
        .get("comune")
        .map(|v| ComuneCode::parse(v).map_err(|e| bad_request(format!("comune: {e}"))))
        .transpose()?;
    let days = days.ok_or_else(|| bad_request("days: required, 1 to 366"))?;
    let comune = match comune {
        Some(c) => c,
        None => {
            let active = shared.manifest.current();
            let own = active
                .as_ref()
                .map(|a| a.comuni_of(peer.leaf.agency().as_str()))
                .unwrap_or_default();
            match own {
                [one] => ComuneCode::parse(one).map_err(|_| Problem::new(ProblemKind::Internal))?,
                _ => {
                    return Err(bad_request(
                        "comune: required (the directory gives this agency no single comune)",
                    ))
                }
            }
        }
    };
    Ok(ExpiringQuery {
        days,
        purpose,
        comune,
    })
}

/// `GET /v1/monitor/expiring` on a Questura node: permits domiciled in the comune that expire
/// within N days, soonest first. Never the permit type.
pub(super) fn monitor_expiring(
    _shared: &Shared,
    served: &Served,
    peer: &Peer,
    q: &ExpiringQuery,
) -> Result<Resp, Problem> {
    if !served.serves(attesta_policy::Service::LegalPresence) {
        return Err(Problem::new(ProblemKind::NotServed));
    }
    let (days, comune) = (q.days, &q.comune);
    let from = today();
    let to = from
        .checked_add(time::Duration::days(i64::from(days)))
        .unwrap_or(from);
    let (permits, info) = served
        .store
        .expiring(comune, from, to)
        .map_err(store_failure)?;
    let data_as_of = data_as_of(&info)?;
    let permits = permits
        .into_iter()
        .filter_map(|p| {
            Some(Expiring {
                subject: p.holder.canonical().to_owned(),
                valid_until: format_date(p.expires?),
                renewal_pending: p.status == crate::domain::records::PermitStatus::RenewalPending,
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &ExpiringAnswer {
            issuer: served.agency.as_str(),
            audience: peer.leaf.agency().as_str(),
            comune: comune.to_string(),
            from: format_date(from),
            to: format_date(to),
            data_as_of,
            permits,
        },
    ))
}

#[derive(Serialize)]
struct Member {
    subject: String,
    sex: &'static str,
    birth_date: String,
    resident: bool,
}

#[derive(Serialize)]
struct FamilyAnswer<'a> {
    issuer: &'a str,
    audience: &'a str,
    subject: String,
    data_as_of: Option<String>,
    members: Vec<Member>,
}

/// `GET /v1/family/{cf}?purpose=P`, parsed.
pub(super) struct FamilyQuery {
    pub subject: CodiceFiscale,
    pub purpose: Purpose,
}

pub(super) fn parse_family(subject: &str, query: Option<&str>) -> Result<FamilyQuery, Problem> {
    let purpose = parse_purpose(
        &query_params(query, &["purpose"])?
            .remove("purpose")
            .unwrap_or_default(),
    )?;
    let subject = CodiceFiscale::parse(subject)
        .map_err(|e| Problem::new(ProblemKind::InvalidSubject).with_detail(e.to_string()))?;
    Ok(FamilyQuery { subject, purpose })
}

/// `GET /v1/family/{cf}` on a registry node: the members of the subject's famiglia
/// anagrafica (the subject included).
pub(super) fn family(
    _shared: &Shared,
    served: &Served,
    peer: &Peer,
    q: &FamilyQuery,
) -> Result<Resp, Problem> {
    if !served.serves(attesta_policy::Service::Residence) {
        return Err(Problem::new(ProblemKind::NotServed));
    }
    let subject = &q.subject;
    let (resident, info) = served.store.resident(subject).map_err(store_failure)?;
    let data_as_of = data_as_of(&info)?;
    let members = match resident {
        Some(r) => served.store.family(&r.family_id).map_err(store_failure)?.0,
        None => Vec::new(),
    };
    let now = today();
    Ok(json(
        StatusCode::OK,
        &FamilyAnswer {
            issuer: served.agency.as_str(),
            audience: peer.leaf.agency().as_str(),
            subject: subject.canonical().to_owned(),
            data_as_of,
            members: members
                .iter()
                .map(|m| Member {
                    subject: m.cf.canonical().to_owned(),
                    sex: match m.sex {
                        crate::domain::cf::Sex::M => "M",
                        crate::domain::cf::Sex::F => "F",
                    },
                    birth_date: format_date(m.birth_date),
                    resident: residence_on(Some(m), now).resident,
                })
                .collect(),
        },
    ))
}
