//! The audit log's numbers, for `node/benches/scripts/audit.sh`: durable appends per second under
//! concurrent load, then the offline verification time of a large bundle.
//!
//! 1. `--concurrency` tasks append one entry each, in a loop, for `--seconds`: every append
//!    waits for its synced write, as a request does. Group commit shares the syncs.
//! 2. The log is filled to `--entries` (bulk appends), a checkpoint is signed, the whole log
//!    is written as a bundle (as `attesta audit export` writes it), and the bundle is read
//!    and verified (as `attesta audit verify` does), timed.
//!
//! ```sh
//! audit_scale --entries 1000000 --concurrency 64 --seconds 5
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use attesta::audit::bundle::{self, Bundle, Header};
use attesta::audit::entry::{Decision, Direction, Entry};
use attesta::audit::log::{origin, AuditLog};
use attesta::audit::merkle;
use attesta::audit::subject::SubjectKey;
use attesta::store::Store;
use attesta_certs::{AgencyId, Ca, SigningIdentity, TrustDomain, TrustStore};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn entry(i: u64) -> Entry {
    Entry {
        time_ms: 1_790_000_000_000 + i,
        query_id: {
            let mut q = [0u8; 16];
            q[..8].copy_from_slice(&i.to_be_bytes());
            q
        },
        direction: Direction::Incoming,
        peer_agency: "inps-pesaro".into(),
        peer_cert: Some([7; 32]),
        route: "POST /v1/attest/residence".into(),
        purpose: "benefit-eligibility".into(),
        subject: Some(merkle::leaf_hash(&i.to_be_bytes())),
        decision: Decision::Allow,
        rule: "p, consumer, residence, read, benefit-eligibility, *, allow".into(),
        policy_version: "9f2c".repeat(16),
        status: 200,
        request_sha256: [3; 32],
        response_sha256: Some([4; 32]),
        operator: None,
    }
}

fn main() -> anyhow::Result<()> {
    let entries = arg("--entries", 1_000_000);
    let concurrency = arg("--concurrency", 64);
    let seconds = arg("--seconds", 5);

    let dir = tempfile::tempdir()?;
    let td = TrustDomain::new("bench.attesta.example")?;
    let ca_dir = dir.path().join("ca");
    let mut ca = Ca::init(&ca_dir, td.clone())?;
    let agency = AgencyId::new("comune-pesaro")?;
    let files = ca.issue_agency(&agency, vec![], vec![], 30, &dir.path().join("agency"))?;
    let signing = Arc::new(SigningIdentity::load(
        &td,
        &files.sign_cert,
        &files.sign_key,
    )?);
    let store = Arc::new(Store::open(&dir.path().join("db"))?);
    let log = Arc::new(AuditLog::open(
        store.clone(),
        SubjectKey::new([1; 32]),
        origin(td.as_str(), agency.as_str()),
        signing.clone(),
    )?);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // 1. Durable appends under concurrent load.
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..concurrency {
            let (log, done) = (log.clone(), done.clone());
            tasks.spawn(async move {
                let mut i = t << 32;
                while Instant::now() < deadline {
                    log.append(&[entry(i)]).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                anyhow::Ok(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        anyhow::Ok(())
    })?;
    let appended = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "durable appends: {appended} in {elapsed:.1} s with {concurrency} concurrent writers = {:.0}/s",
        appended as f64 / elapsed
    );

    // 2. Fill, sign, export, verify.
    let fill = Instant::now();
    rt.block_on(async {
        let mut at = log.head().size;
        while at < entries {
            let n = (entries - at).min(2000);
            let batch: Vec<Entry> = (at..at + n).map(entry).collect();
            log.append(&batch).await?;
            at += n;
        }
        anyhow::Ok(())
    })?;
    let signed = log.sign_checkpoint()?.context("a checkpoint")?;
    let size = signed.checkpoint.size;
    println!(
        "filled to {size} entries in {:.1} s",
        fill.elapsed().as_secs_f64()
    );
    let mut all = Vec::with_capacity(size as usize);
    let mut start = 0;
    while start < size {
        let end = size.min(start + 100_000);
        all.extend(store.audit_entries(start, end)?);
        start = end;
    }
    let b = Bundle {
        header: Header {
            agency: agency.to_string(),
            origin: signed.checkpoint.origin.clone(),
            exported_at: String::new(),
            checkpoint: signed.note.render(),
            signer: signing.cert_pem(),
            witnesses: Vec::new(),
            range: None,
        },
        leaves: all.iter().map(|e| merkle::leaf_hash(e)).collect(),
        entries: all,
    };
    let path = dir.path().join("log.bundle");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    b.write(&mut file)?;
    drop(file);
    drop(b);
    let bytes = std::fs::metadata(&path)?.len();

    let trust = TrustStore::load(td, &ca_dir.join("ca.crt"), None)?;
    let verify = Instant::now();
    let read = Bundle::read(std::fs::File::open(&path)?, |_, _| {})?;
    let read_secs = verify.elapsed().as_secs_f64();
    let v = bundle::verify(&read, &trust, 0, None, |_, _| {})?;
    let total = verify.elapsed().as_secs_f64();
    println!(
        "offline verification of a {}-entry bundle ({} MB): {total:.2} s (read {read_secs:.2} s, verify {:.2} s), root {}",
        v.checkpoint.size,
        bytes >> 20,
        total - read_secs,
        hex::encode(v.checkpoint.root)
    );
    Ok(())
}
