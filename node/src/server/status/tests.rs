//! The coordinator's rules, one test each, against fake peers that sign real attestations
//! (keys from a test CA) and answer after a delay on tokio's paused clock: deadlines are
//! exact and no test waits in real time.

use std::collections::HashMap;
use std::time::Duration;

use attesta_certs::{Ca, SigningIdentity, TrustDomain};

use super::*;
use crate::attestation::{Envelope, ATTESTATION_TYP};

const ME: &str = "inps-pesaro";
const DEADLINE: Duration = Duration::from_secs(2);

/// What a fake peer does when asked.
#[derive(Clone)]
enum Does {
    /// Signs a residence answer.
    Resident {
        resident: bool,
        permit_required: Option<bool>,
    },
    /// Signs a legal-presence answer.
    Present(bool),
    /// Answers with a problem.
    Refuses(StatusCode, &'static str),
    /// No answer: the call failed this way.
    Fails(PeerFailure),
    /// Never answers.
    Hangs,
    /// Signs a residence answer about another question (another request digest).
    AnswersAnotherQuestion,
    /// Signs a residence answer addressed to another agency.
    AddressesAnother,
    /// Its answer is signed by another agency's key.
    SignedByAnother(&'static str),
    /// A host answering for the registries it hosts: a residence answer signed by `signer`.
    Host {
        signer: &'static str,
        resident: bool,
        covers: &'static [&'static str],
    },
}

struct Fake {
    signers: Arc<HashMap<String, SigningIdentity>>,
    script: HashMap<String, (Duration, Does)>,
}

fn agency(s: &str) -> AgencyId {
    AgencyId::new(s).unwrap()
}

impl Fake {
    fn sign(&self, by: &str, payload: &impl Serialize) -> Reply {
        let payload = serde_json::to_vec(payload).unwrap();
        let token = attesta_certs::jws::sign(&self.signers[by], ATTESTATION_TYP, &payload).unwrap();
        Reply {
            status: StatusCode::OK,
            headers: http::HeaderMap::new(),
            body: Bytes::from(token),
        }
    }
}

fn envelope(issuer: &str, audience: &str, body: &[u8]) -> Envelope {
    Envelope {
        issuer: issuer.into(),
        audience: audience.into(),
        query_id: "00".repeat(16),
        subject: "RSSMRA85T10A562S".into(),
        purpose: "benefit-eligibility".into(),
        as_of: "2026-12-01".into(),
        data_as_of: Some("2026-11-30".into()),
        iat: time::OffsetDateTime::now_utc().unix_timestamp(),
        request_sha256: crate::attestation::sha256_hex(body),
    }
}

fn residence(envelope: Envelope, resident: bool, permit_required: Option<bool>) -> ResidenceAnswer {
    ResidenceAnswer {
        envelope,
        resident,
        comune: resident.then(|| "041044".into()),
        since: resident.then(|| "2010-01-01".into()),
        permit_required,
        covers: Vec::new(),
    }
}

impl AskPeer for Fake {
    async fn ask(
        &self,
        target: Target,
        path: &'static str,
        body: Bytes,
        _query_id: Arc<str>,
    ) -> (Option<[u8; 32]>, Result<Reply, PeerFailure>) {
        let name = target.agency.as_str();
        let (delay, does) = self.script[name].clone();
        tokio::time::sleep(delay).await;
        let cert = Some([7; 32]);
        let reply = match does {
            Does::Resident {
                resident,
                permit_required,
            } => {
                assert_eq!(path, "/v1/attest/residence");
                self.sign(
                    name,
                    &residence(envelope(name, ME, &body), resident, permit_required),
                )
            }
            Does::Present(present) => {
                assert_eq!(path, "/v1/attest/legal-presence");
                self.sign(
                    name,
                    &PresenceAnswer {
                        envelope: envelope(name, ME, &body),
                        legally_present: present,
                        basis: present.then(|| "permit".into()),
                        valid_until: present.then(|| "2027-06-30".into()),
                    },
                )
            }
            Does::Refuses(status, slug) => Reply {
                status,
                headers: http::HeaderMap::new(),
                body: Bytes::from(
                    serde_json::to_vec(
                        &Problem::new(match slug {
                            "no-data" => ProblemKind::NoData,
                            _ => ProblemKind::PolicyDenied,
                        })
                        .with_detail("said no"),
                    )
                    .unwrap(),
                ),
            },
            Does::Fails(f) => return (None, Err(f)),
            Does::Hangs => std::future::pending().await,
            Does::AnswersAnotherQuestion => {
                self.sign(name, &residence(envelope(name, ME, b"another"), true, None))
            }
            Does::AddressesAnother => {
                self.sign(name, &residence(envelope(name, "asl-1", &body), true, None))
            }
            Does::SignedByAnother(key) => {
                self.sign(key, &residence(envelope(name, ME, &body), true, None))
            }
            Does::Host {
                signer,
                resident,
                covers,
            } => {
                assert_eq!(path, "/v1/attest/residence");
                let mut a = residence(envelope(signer, ME, &body), resident, Some(false));
                a.covers = covers.iter().map(|c| c.to_string()).collect();
                self.sign(signer, &a)
            }
        };
        (cert, Ok(reply))
    }
}

/// A federation of test keys: two comuni, a Questura, and this node (INPS).
struct World {
    _dir: tempfile::TempDir,
    trust: TrustStore,
    signers: Arc<HashMap<String, SigningIdentity>>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let td = TrustDomain::new("pu.attesta.test").unwrap();
    let mut ca = Ca::init(&dir.path().join("ca"), td.clone()).unwrap();
    let mut signers = HashMap::new();
    for a in [
        "comune-pesaro",
        "comune-fano",
        "comune-cagli",
        "cst-pu",
        "questura-pu",
        ME,
    ] {
        let out = dir.path().join(a);
        ca.issue_agency(&agency(a), vec![], vec![], 30, &out)
            .unwrap();
        let s = SigningIdentity::load(&td, &out.join("sign.crt"), &out.join("sign.key")).unwrap();
        signers.insert(a.to_owned(), s);
    }
    let trust = TrustStore::load(td, &dir.path().join("ca/ca.crt"), None).unwrap();
    World {
        _dir: dir,
        trust,
        signers: Arc::new(signers),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs the coordinator against `script`: registries and Questure are the agencies named in
/// it (comuni first); returns what it found and how long it took on the paused clock.
async fn run(w: &World, script: &[(&str, u64, Does)]) -> (Found, Duration) {
    let pick = |questura: bool| -> Result<Vec<Target>, String> {
        let nodes: Vec<_> = script
            .iter()
            .filter(|(a, _, _)| a.starts_with("questura") == questura)
            .map(|(a, _, _)| Target::own(agency(a), format!("https://{a}.test")))
            .collect();
        if nodes.is_empty() {
            Err("no node in the directory answers this".into())
        } else {
            Ok(nodes)
        }
    };
    let fake = Fake {
        signers: w.signers.clone(),
        script: script
            .iter()
            .map(|(a, d, does)| (a.to_string(), (ms(*d), does.clone())))
            .collect(),
    };
    let start = Instant::now();
    let found = ask(w, fake, pick(false), pick(true)).await;
    (found, start.elapsed())
}

/// The coordinator's one question to `fake`'s targets, within [`DEADLINE`].
async fn ask(
    w: &World,
    fake: Fake,
    registries: Result<Vec<Target>, String>,
    questure: Result<Vec<Target>, String>,
) -> Found {
    coordinate(
        Arc::new(fake),
        Inputs {
            body: Bytes::from_static(br#"{"subject":"RSSMRA85T10A562S"}"#),
            query_id: "00".repeat(16),
            as_of: "2026-12-01".into(),
            me: agency(ME),
            trust: w.trust.clone(),
            registries,
            questure,
            deadline: Instant::now() + DEADLINE,
        },
    )
    .await
}

fn outcome<'a>(f: &'a Found, agency: &str) -> &'a str {
    f.calls
        .iter()
        .find(|c| c.agency.as_str() == agency)
        .map(|c| c.outcome)
        .unwrap_or("not called")
}

fn reason<'a>(f: &'a Found, agency: Option<&str>) -> Option<&'a str> {
    f.answer
        .unavailable
        .iter()
        .find(|u| u.agency.as_deref() == agency)
        .map(|u| u.reason.as_str())
}

const YES: Does = Does::Resident {
    resident: true,
    permit_required: Some(true),
};
const NO: Does = Does::Resident {
    resident: false,
    permit_required: None,
};

#[tokio::test(start_paused = true)]
async fn the_first_positive_registry_wins_without_waiting_for_the_others() {
    let w = world();
    let (f, took) = run(
        &w,
        &[
            ("comune-pesaro", 100, YES),
            ("comune-fano", 1500, NO),
            ("questura-pu", 50, Does::Present(true)),
        ],
    )
    .await;
    assert_eq!(f.answer.resident, Some(true));
    assert_eq!(f.answer.comune.as_deref(), Some("041044"));
    assert_eq!(f.answer.legally_present, Some(true));
    assert_eq!(f.answer.basis.as_deref(), Some("permit"));
    assert!(f.answer.complete);
    assert_eq!(took, ms(100), "settled by the positive answer");
    assert_eq!(outcome(&f, "comune-fano"), "abandoned");
    assert_eq!(outcome(&f, "comune-pesaro"), "ok");
    assert_eq!(f.answer.attestations.len(), 2);
    assert!(f.answer.unavailable.is_empty());
}

#[tokio::test(start_paused = true)]
async fn not_resident_needs_a_no_from_every_registry_asked() {
    let w = world();
    let (f, took) = run(
        &w,
        &[
            ("comune-pesaro", 100, NO),
            ("comune-fano", 300, NO),
            ("questura-pu", 50, Does::Present(false)),
        ],
    )
    .await;
    assert_eq!(f.answer.resident, Some(false));
    assert_eq!(
        f.answer.legally_present,
        Some(false),
        "all said no, residence known"
    );
    assert!(f.answer.complete);
    assert_eq!(took, ms(300));
    assert_eq!(
        f.answer.attestations.len(),
        3,
        "negative answers are kept as evidence too"
    );

    // One registry that fails leaves residence unknown, not "no".
    let (f, _) = run(
        &w,
        &[
            ("comune-pesaro", 100, NO),
            (
                "comune-fano",
                100,
                Does::Fails(PeerFailure::Unreachable("reset".into())),
            ),
            ("questura-pu", 50, Does::Present(false)),
        ],
    )
    .await;
    assert_eq!(f.answer.resident, None);
    assert_eq!(reason(&f, Some("comune-fano")), Some("unreachable"));
}

#[tokio::test(start_paused = true)]
async fn a_person_who_needs_no_permit_is_present_by_registration() {
    let w = world();
    let exempt = Does::Resident {
        resident: true,
        permit_required: Some(false),
    };
    let (f, took) = run(
        &w,
        &[
            ("comune-pesaro", 100, exempt),
            ("questura-pu", 1800, Does::Present(false)),
        ],
    )
    .await;
    assert_eq!(f.answer.legally_present, Some(true));
    assert_eq!(f.answer.basis.as_deref(), Some("registration"));
    assert_eq!(f.answer.valid_until, None);
    assert_eq!(took, ms(100), "the Questura is not waited for");
    assert_eq!(outcome(&f, "questura-pu"), "abandoned");
}

#[tokio::test(start_paused = true)]
async fn a_questura_no_with_residence_unknown_stays_unknown() {
    let w = world();
    let (f, took) = run(
        &w,
        &[
            ("comune-pesaro", 0, Does::Hangs),
            ("questura-pu", 100, Does::Present(false)),
        ],
    )
    .await;
    assert_eq!(f.answer.resident, None);
    assert_eq!(
        f.answer.legally_present, None,
        "the person might be a citizen who needs no permit"
    );
    assert!(!f.answer.complete);
    assert_eq!(took, DEADLINE);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_does_not_answer_by_the_deadline_is_listed_as_timeout() {
    let w = world();
    let (f, took) = run(
        &w,
        &[
            ("comune-pesaro", 0, Does::Hangs),
            ("questura-pu", 2500, Does::Present(true)),
        ],
    )
    .await;
    assert_eq!(took, DEADLINE, "exactly the deadline, on the paused clock");
    assert_eq!(f.answer.resident, None);
    assert_eq!(f.answer.legally_present, None);
    assert_eq!(reason(&f, Some("comune-pesaro")), Some("timeout"));
    assert_eq!(reason(&f, Some("questura-pu")), Some("timeout"));
    assert_eq!(outcome(&f, "questura-pu"), "timeout");
    assert!(f.answer.attestations.is_empty());
}

#[tokio::test(start_paused = true)]
async fn refusals_and_failures_leave_the_fact_unknown_with_their_reason() {
    let w = world();
    let (f, _) = run(
        &w,
        &[
            (
                "comune-pesaro",
                10,
                Does::Refuses(StatusCode::FORBIDDEN, "policy-denied"),
            ),
            (
                "comune-fano",
                10,
                Does::Refuses(StatusCode::SERVICE_UNAVAILABLE, "no-data"),
            ),
            (
                "questura-pu",
                10,
                Does::Fails(PeerFailure::Refused("unexpected_agency")),
            ),
        ],
    )
    .await;
    assert_eq!((f.answer.resident, f.answer.legally_present), (None, None));
    assert_eq!(reason(&f, Some("comune-pesaro")), Some("denied"));
    assert_eq!(reason(&f, Some("comune-fano")), Some("no-data"));
    assert_eq!(reason(&f, Some("questura-pu")), Some("refused"));
    let denied = f
        .answer
        .unavailable
        .iter()
        .find(|u| u.reason == "denied")
        .unwrap();
    assert!(denied.detail.contains("said no"), "{}", denied.detail);
    // The calls that got an answer record its status; the one refused at TLS has none.
    let status = |a: &str| {
        f.calls
            .iter()
            .find(|c| c.agency.as_str() == a)
            .unwrap()
            .exchange
            .status
    };
    assert_eq!(status("comune-pesaro"), 403);
    assert_eq!(status("questura-pu"), 0);
}

#[tokio::test(start_paused = true)]
async fn an_attestation_that_does_not_verify_is_not_believed() {
    let w = world();
    for (does, says) in [
        (Does::AnswersAnotherQuestion, "answers another question"),
        (Does::AddressesAnother, "addressed to another agency"),
        (Does::SignedByAnother("comune-fano"), "comune-fano"),
    ] {
        let (f, _) = run(
            &w,
            &[
                ("comune-pesaro", 10, does),
                ("questura-pu", 10, Does::Present(true)),
            ],
        )
        .await;
        assert_eq!(f.answer.resident, None, "{says}");
        let u = f
            .answer
            .unavailable
            .iter()
            .find(|u| u.agency.as_deref() == Some("comune-pesaro"))
            .unwrap();
        assert_eq!(u.reason, "bad-attestation");
        assert!(u.detail.contains(says), "{}", u.detail);
        assert_eq!(
            f.answer.attestations.len(),
            1,
            "only the Questura's is kept"
        );
        assert_eq!(
            f.answer.legally_present,
            Some(true),
            "a valid permit, whatever the residence"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn no_node_to_ask_is_said_and_nothing_is_called() {
    let w = world();
    let (f, took) = run(&w, &[("questura-pu", 10, Does::Present(true))]).await;
    assert_eq!(f.answer.resident, None);
    assert_eq!(reason(&f, None), Some("no-node"));
    assert_eq!(
        f.answer.legally_present,
        Some(true),
        "a permit is enough, residence aside"
    );
    assert_eq!(f.calls.len(), 1);
    assert_eq!(took, ms(10));
}

/// The coordinator asking a service centre (`cst-pu`, hosting Fano and Cagli) for both its
/// registries in one call, and the Questura.
async fn run_host(w: &World, host: Does) -> Found {
    let fake = Fake {
        signers: w.signers.clone(),
        script: [
            ("cst-pu".to_owned(), (ms(100), host)),
            ("questura-pu".to_owned(), (ms(50), Does::Present(true))),
        ]
        .into_iter()
        .collect(),
    };
    let host = Target {
        agency: agency("cst-pu"),
        node: agency("cst-pu"),
        url: "https://cst-pu.test".into(),
        prefix: String::new(),
        hosted: vec![agency("comune-fano"), agency("comune-cagli")],
    };
    ask(
        w,
        fake,
        Ok(vec![host]),
        Ok(vec![Target::own(
            agency("questura-pu"),
            "https://q.test".into(),
        )]),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn a_host_answers_for_all_its_registries_in_one_call() {
    let w = world();
    // A resident of a hosted comune: the comune's own attestation, logged against the comune.
    let f = run_host(
        &w,
        Does::Host {
            signer: "comune-cagli",
            resident: true,
            covers: &[],
        },
    )
    .await;
    assert_eq!(f.answer.resident, Some(true));
    assert!(f.answer.complete);
    assert_eq!(outcome(&f, "comune-cagli"), "ok");
    // Nobody there: the host's own no, covering every registry it hosts.
    let f = run_host(
        &w,
        Does::Host {
            signer: "cst-pu",
            resident: false,
            covers: &["comune-fano", "comune-cagli"],
        },
    )
    .await;
    assert_eq!(f.answer.resident, Some(false));
    assert_eq!(outcome(&f, "cst-pu"), "ok");

    // A no that leaves out a hosted registry is no answer about it: residence unknown.
    let f = run_host(
        &w,
        Does::Host {
            signer: "cst-pu",
            resident: false,
            covers: &["comune-fano"],
        },
    )
    .await;
    assert_eq!(f.answer.resident, None);
    assert_eq!(reason(&f, Some("cst-pu")), Some("incomplete"));
    // The host may not say yes in its own name, a hosted registry may not say no for the
    // others, and a registry the host does not host may say nothing.
    for (signer, resident) in [
        ("cst-pu", true),
        ("comune-fano", false),
        ("comune-pesaro", true),
    ] {
        let f = run_host(
            &w,
            Does::Host {
                signer,
                resident,
                covers: &["comune-fano", "comune-cagli"],
            },
        )
        .await;
        assert_eq!(f.answer.resident, None, "{signer} {resident}");
        assert_eq!(
            reason(&f, Some("cst-pu")),
            Some("bad-attestation"),
            "{signer}"
        );
    }
}
