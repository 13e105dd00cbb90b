//! Witnessing (C2SP `tlog-witness`): every node cosigns its peers' checkpoints, and has its own
//! cosigned by them, so that a node cannot show different histories to different auditors
//! or quietly start its log over.
//!
//! **The witness** (`POST /v1/witness/add-checkpoint`, open to the agencies of the manifest's
//! directory) takes `old <size>`, the consistency proof from that size (one base64 hash per
//! line), an empty line and the checkpoint note. It checks that the checkpoint is a peer's
//! log, signed by that agency's signing certificate (sent in `Attesta-Log-Certificate`, base64
//! DER, checked against the CA; remembered for later calls), that `old` is the size it
//! cosigned last for that log (else 409 with its size, `text/x.tlog.size`), and that the
//! proof shows the new tree extends the old one (else 422). It then persists the new size
//! and root (one synced write), and answers with its `cosignature/v1` line, name
//! `<trust-domain>/<agency>/witness`, and its own signing certificate in
//! `Attesta-Witness-Certificate`.
//!
//! **The log side**: after each new checkpoint, the node sends it to every peer of the
//! directory, verifies the cosignatures that come back and serves the checkpoint with them.
//!
//! Cosigning requests that succeed are not audit-log entries: each would make the next
//! checkpoint to cosign, and the logs would never stop growing. Refusals are entries.
//!
//! **Forgetting** (`attesta node forget-witnessed`, node stopped): after a peer lost its log
//! and its new history was accepted, the operator drops this witness's state for that log;
//! the reset is a `change` entry of this node's own log first.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use attesta_certs::{AgencyId, SignerCert};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use super::peers::Call;
use super::respond::Resp;
use super::served::Served;
use super::{Peer, Shared};
use crate::audit::bundle::witness_name;
use crate::audit::log::Signed;
use crate::audit::merkle::{self, Hash};
use crate::audit::note::{self, AddCheckpoint, Note, Signature};
use crate::audit::witness::{self, Last, Verdict};
use crate::audit::witnessed::Witnessed;
use crate::metrics::Outcome;
use crate::problem::{Problem, ProblemKind};

/// The route.
pub const PATH: &str = crate::wire::path::WITNESS_ADD_CHECKPOINT;
/// The log's signing certificate, base64 DER, on a request.
pub const LOG_CERT_HEADER: &str = "attesta-log-certificate";
/// The witness's signing certificate, base64 DER, on a cosignature.
pub const WITNESS_CERT_HEADER: &str = "attesta-witness-certificate";
/// The content type of a 409's body: the size the witness has.
const SIZE_TYPE: &str = "text/x.tlog.size";
/// How long a partly cosigned checkpoint waits before the missing witnesses are asked again.
const RETRY: Duration = Duration::from_secs(5);

/// The witness's state, and what the node learnt of the witnesses of its logs.
#[derive(Default)]
pub(crate) struct Witnessing {
    /// Serialises cosigning (read state, check, write state).
    cosigning: Mutex<()>,
    /// The signing certificates (PEM) of the witnesses whose cosignatures this node checked,
    /// by cosignature key name: served with its own, so that auditors get them from here.
    certificates: Mutex<HashMap<String, String>>,
}

impl Witnessing {
    /// The certificates (PEM) of the witnesses that cosigned `note`.
    pub(super) fn certificates_for(&self, note: &Note) -> Vec<String> {
        let known = self.certificates.lock().unwrap_or_else(|p| p.into_inner());
        note.signatures
            .iter()
            .filter_map(|s| known.get(&s.name).cloned())
            .collect()
    }
}

fn bad(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemKind::BadRequest).with_detail(detail)
}

fn parse(body: &[u8]) -> Result<AddCheckpoint, Problem> {
    AddCheckpoint::parse(body).map_err(|e| bad(e.0))
}

/// The body of a request: `old`, the proof, the note.
fn request_body(old: u64, proof: &[Hash], note: &Note) -> String {
    let mut out = format!("old {old}\n");
    for h in proof {
        out.push_str(&STANDARD.encode(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&note.render());
    out
}

/// The peer agency whose log `origin` names, if it is one this node witnesses.
fn log_agency(shared: &Shared, origin: &str) -> Option<AgencyId> {
    let agency = crate::audit::names::log_agency(shared.settings.trust_domain.as_str(), origin)?;
    let active = shared.manifest.current()?;
    let entry = active.manifest.entry(agency.as_str())?;
    let peer = !active.manifest.is_revoked(agency.as_str());
    // Not this node's own log, nor a tenant's it hosts: a witness vouches for others.
    let own = agency == shared.settings.agency
        || entry.hosted_by.as_deref() == Some(shared.settings.agency.as_str());
    (peer && !own).then_some(agency)
}

/// Counts a cosigning request by its result.
fn count(shared: &Shared, result: &'static str) {
    shared
        .metrics
        .witness_requests
        .get_or_create(&Outcome { result })
        .inc();
}

fn refused(shared: &Shared, result: &'static str, problem: Problem) -> Problem {
    count(shared, result);
    problem
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn failed(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "witness state");
    Problem::new(ProblemKind::Internal)
}

/// `POST /v1/witness/add-checkpoint`.
pub(super) fn add_checkpoint(
    shared: &Shared,
    peer: &Peer,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Resp, Problem> {
    let forbidden = |detail: String| {
        refused(
            shared,
            "refused",
            Problem::new(ProblemKind::Forbidden).with_detail(detail),
        )
    };
    let caller = peer.leaf.agency().as_str();
    let active = shared.manifest.current().ok_or_else(|| {
        forbidden("no manifest is in force: this node does not know its peers yet".into())
    })?;
    if active.manifest.entry(caller).is_none() {
        return Err(forbidden(format!(
            "{caller} is not in the federation directory"
        )));
    }
    let req = parse(body).map_err(|p| refused(shared, "refused", p))?;
    let origin = req.checkpoint.origin.as_str();
    let agency = log_agency(shared, origin).ok_or_else(|| {
        refused(
            shared,
            "refused",
            Problem::new(ProblemKind::UnknownLog)
                .with_detail(format!("{origin} is not the log of a peer of this node")),
        )
    })?;
    let store = shared.own.audit.store();
    let key = origin.as_bytes();

    let _guard = shared
        .witness
        .cosigning
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let state: Option<Witnessed> = match store.audit_get(true, key).map_err(failed)? {
        None => None,
        Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(failed)?),
    };

    // The log's signing certificate: sent along, or the one it sent before.
    let signer = match headers.get(LOG_CERT_HEADER) {
        Some(v) => STANDARD
            .decode(v.as_bytes())
            .map_err(|_| forbidden(format!("{LOG_CERT_HEADER} is not base64")))
            .and_then(|der| SignerCert::from_der(&der).map_err(forbidden))?,
        None => match &state {
            Some(s) => SignerCert::from_pem(s.signer.as_bytes()).map_err(failed)?,
            None => {
                return Err(forbidden(format!(
                    "no signing certificate known for {agency}: send it in {LOG_CERT_HEADER}"
                )))
            }
        },
    };
    let trust = shared.tls.load().trust.clone();
    let who = signer
        .check(&trust)
        .map_err(|e| forbidden(format!("{agency}'s signing certificate: {e}")))?;
    if who.agency() != &agency {
        return Err(forbidden(format!(
            "the signing certificate is {}'s, not {agency}'s",
            who.agency()
        )));
    }
    // A checkpoint carries no time: the witness's cosignature says "signed by a valid key,
    // seen now", so an expired key gets nothing cosigned.
    if !signer.valid_at(unix_now() as i64) {
        return Err(forbidden(format!(
            "{agency}'s signing certificate is not valid now (expired or not yet valid)"
        )));
    }
    let public_key = signer
        .public_key()
        .ok_or_else(|| forbidden("the signing certificate has no Ed25519 key".into()))?;
    if !req
        .note
        .verify(origin, &public_key, |m, s| signer.verify(m, s))
    {
        return Err(forbidden(format!(
            "the checkpoint is not signed by {agency}'s signing key"
        )));
    }

    let c = &req.checkpoint;
    let last = match &state {
        Some(s) => Last {
            size: s.size,
            root: STANDARD
                .decode(&s.root)
                .ok()
                .and_then(|b| Hash::try_from(b.as_slice()).ok())
                .ok_or_else(|| failed("stored root is not 32 bytes of base64"))?,
        },
        None => Last::none(),
    };
    match witness::check(last, &req) {
        Verdict::Cosign => {}
        Verdict::Malformed(why) => return Err(refused(shared, "refused", bad(why))),
        Verdict::Conflict(size) => {
            count(shared, "conflict");
            // tlog-witness: the body is the size in decimal and a newline.
            let mut resp = Response::new(Full::new(Bytes::from(format!("{size}\n"))));
            *resp.status_mut() = StatusCode::CONFLICT;
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(SIZE_TYPE));
            return Ok(resp);
        }
        Verdict::Inconsistent(why) => {
            if last.size > 0 {
                if let Some(repeats) = shared.warnings.allow(&format!("inconsistent {agency}")) {
                    tracing::warn!(log = %agency, from = last.size, to = c.size, repeats, "inconsistent checkpoint refused");
                }
            }
            return Err(refused(
                shared,
                "inconsistent",
                Problem::new(ProblemKind::InconsistentCheckpoint).with_detail(why),
            ));
        }
    }
    let next = Witnessed {
        size: c.size,
        root: STANDARD.encode(c.root),
        signer: signer.pem(),
    };
    let bytes = serde_json::to_vec(&next).map_err(failed)?;
    store.audit_put(true, key, &bytes).map_err(failed)?;

    let settings = &shared.settings;
    let signing = &settings.signing;
    let name = witness_name(settings.trust_domain.as_str(), settings.agency.as_str());
    let sig = note::cosign(
        &req.note.body,
        &name,
        &signing.public_key(),
        unix_now(),
        |m| signing.sign(m),
    )
    .map_err(failed)?;
    count(shared, "cosigned");
    let mut resp = Response::new(Full::new(Bytes::from(sig.line())));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&STANDARD.encode(signing.cert_der())) {
        resp.headers_mut().insert(WITNESS_CERT_HEADER, v);
    }
    Ok(resp)
}

/// Sends the latest checkpoint of `served`'s log to the peers that have not cosigned it: right
/// away when `fresh` (a new checkpoint), otherwise at most every [`RETRY`]. One round at a time
/// per log.
pub(super) fn submit(shared: &Arc<Shared>, served: &Arc<Served>, fresh: bool) {
    let w = &served.submitting;
    {
        let mut last = w.last_round.lock().unwrap_or_else(|p| p.into_inner());
        if !fresh && last.is_some_and(|t| t.elapsed() < RETRY) {
            return;
        }
        if w.busy.swap(true, Ordering::SeqCst) {
            return;
        }
        *last = Some(Instant::now());
    }
    let (shared, served) = (shared.clone(), served.clone());
    tokio::spawn(tracing::Instrument::in_current_span(async move {
        round(&shared, &served).await;
        served.submitting.busy.store(false, Ordering::SeqCst);
    }));
}

/// One round: the latest checkpoint of `served`'s log to every witness that has not cosigned
/// it; the cosignatures that come back are published with it.
pub(super) async fn round(shared: &Arc<Shared>, served: &Arc<Served>) {
    let Some(signed) = served.audit.latest() else {
        return;
    };
    let td = shared.settings.trust_domain.as_str();
    let mut calls = tokio::task::JoinSet::new();
    for (agency, url) in super::peers::nodes(shared) {
        let name = witness_name(td, agency.as_str());
        if signed.note.signatures.iter().any(|s| s.name == name) {
            continue;
        }
        let (shared, served, signed) = (shared.clone(), served.clone(), signed.clone());
        calls.spawn(tracing::Instrument::in_current_span(async move {
            let result = submit_one(&shared, &served, &agency, &url, &signed).await;
            (agency, result)
        }));
    }
    let mut cosignatures = Vec::new();
    while let Some(done) = calls.join_next().await {
        let Ok((agency, result)) = done else { continue };
        let outcome = match result {
            Ok(sig) => {
                cosignatures.push(sig);
                "cosigned"
            }
            Err((outcome, why)) => {
                let key = format!("witness {agency} {outcome} {}", served.agency);
                if let Some(repeats) = shared.warnings.allow(&key) {
                    tracing::warn!(log = %served.agency, witness = %agency, size = signed.checkpoint.size, reason = %why, repeats, "checkpoint not cosigned");
                }
                outcome
            }
        };
        shared
            .metrics
            .witness_submissions
            .get_or_create(&Outcome { result: outcome })
            .inc();
    }
    // Rounds run one at a time, on the latest checkpoint: what they publish only moves on.
    let mut note = signed.note.clone();
    for sig in cosignatures {
        note.add(sig);
    }
    served.audit.publish(Signed {
        checkpoint: signed.checkpoint.clone(),
        note,
    });
}

type Refusal = (&'static str, String);

/// Asks one witness to cosign; on a 409 once more from the size it says it has.
async fn submit_one(
    shared: &Shared,
    served: &Served,
    agency: &AgencyId,
    url: &str,
    signed: &Signed,
) -> Result<Signature, Refusal> {
    let c = &signed.checkpoint;
    let cert = STANDARD.encode(served.signing.cert_der());
    let headers = [(LOG_CERT_HEADER, cert.as_str())];
    let known = |size: Option<u64>| {
        let mut k = served
            .submitting
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match size {
            Some(s) => {
                k.insert(agency.to_string(), s);
                s
            }
            None => k.get(agency.as_str()).copied().unwrap_or(0),
        }
    };
    let mut old = known(None);
    for _ in 0..2 {
        if old > c.size {
            return Err((
                "conflict",
                format!(
                    "the witness cosigned size {old}, more than this log's {}: the log lost entries",
                    c.size
                ),
            ));
        }
        let proof = if old == 0 {
            Vec::new()
        } else {
            merkle::consistency_proof(&served.audit.tree(), old, c.size)
                .map_err(|e| ("error", format!("consistency proof: {e}")))?
        };
        let call = Call {
            path: PATH,
            content_type: "text/plain; charset=utf-8",
            headers: &headers,
            body: Bytes::from(request_body(old, &proof, &signed.note)),
        };
        // Submitted by the node itself, for each log it keeps: a witness takes checkpoints
        // from any agency of the directory, and checks the log's own signature.
        let reply = shared
            .peers
            .post(shared, &shared.own, agency, url, &call, &mut None)
            .await
            .map_err(|f| ("unreachable", f.detail(agency.as_str())))?;
        match reply.status {
            StatusCode::OK => {
                let sig = check_cosignature(shared, agency, signed, &reply.headers, &reply.body)
                    .map_err(|why| ("refused", why))?;
                known(Some(c.size));
                return Ok(sig);
            }
            StatusCode::CONFLICT => {
                let size = std::str::from_utf8(&reply.body)
                    .ok()
                    .and_then(|s| s.strip_suffix('\n'))
                    .and_then(note::decimal)
                    .ok_or(("refused", "409 without a size".to_owned()))?;
                old = known(Some(size));
            }
            status => {
                let detail = reply.problem().and_then(|p| p.detail).unwrap_or_default();
                return Err(("refused", format!("{status}: {detail}")));
            }
        }
    }
    Err(("conflict", "the witness's size kept changing".to_owned()))
}

/// The witness's cosignature from its answer, verified with its signing certificate (checked
/// against the CA, and of that agency).
fn check_cosignature(
    shared: &Shared,
    agency: &AgencyId,
    signed: &Signed,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Signature, String> {
    let cert = headers
        .get(WITNESS_CERT_HEADER)
        .and_then(|v| STANDARD.decode(v.as_bytes()).ok())
        .ok_or_else(|| format!("no {WITNESS_CERT_HEADER}"))
        .and_then(|der| SignerCert::from_der(&der))?;
    let who = cert
        .check(&shared.tls.load().trust)
        .map_err(|e| format!("witness certificate: {e}"))?;
    if who.agency() != agency {
        return Err(format!("witness certificate is {}'s", who.agency()));
    }
    let pk = cert
        .public_key()
        .ok_or("the witness certificate has no Ed25519 key")?;
    let lines = std::str::from_utf8(body).map_err(|_| "the cosignature is not text")?;
    let note = Note::parse(&format!("{}\n{lines}", signed.note.body))
        .map_err(|e| format!("cosignature: {e}"))?;
    let name = witness_name(shared.settings.trust_domain.as_str(), agency.as_str());
    note::cosigned_at(&note, &name, &pk, |m, s| cert.verify(m, s))
        .ok_or("the cosignature does not verify")?;
    let id = note::key_id(&name, note::COSIGNATURE_V1, &pk);
    let sig = note
        .signatures
        .into_iter()
        .find(|s| s.name == name && s.key_id == id)
        .ok_or_else(|| "no cosignature line".to_owned())?;
    shared
        .witness
        .certificates
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name, cert.pem());
    Ok(sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::note::Checkpoint;

    #[test]
    fn requests_round_trip_and_malformed_ones_are_refused() {
        let c = Checkpoint {
            origin: "td/questura-pu/audit".into(),
            size: 5,
            root: [3; 32],
        };
        let note = Note::sign(c.body(), &c.origin, &[1; 32], |_| Ok::<_, ()>(vec![7; 64])).unwrap();
        let body = request_body(3, &[[1; 32], [2; 32]], &note);
        assert!(body.starts_with("old 3\nAQEB"));
        let parsed = parse(body.as_bytes()).unwrap();
        assert_eq!(parsed.old, 3);
        assert_eq!(parsed.proof, vec![[1; 32], [2; 32]]);
        assert_eq!(parsed.checkpoint, c);
        assert_eq!(parsed.note, note);
        assert_eq!(
            parse(request_body(0, &[], &note).as_bytes()).unwrap().old,
            0
        );

        let text = note.render();
        for bad in [
            format!("old 03\n\n{text}"),
            format!("old -1\n\n{text}"),
            format!("new 3\n\n{text}"),
            format!("old 3\nAAAA\n\n{text}"),
            format!("old 3\n{text}"),
            "old 3\n\nnot a note\n".to_owned(),
            format!("old 3\n\n{}", text.replace("\n5\n", "\nfive\n")),
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
