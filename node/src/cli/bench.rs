//! `attesta bench`: a load generator on the node's own client stack (hyper + rustls, mTLS,
//! HTTP/1.1 keep-alive), reporting throughput and latency percentiles from an HDR histogram.
//!
//! Each of `--concurrency` workers holds one connection and sends its next request as soon as
//! the previous answer is in (closed loop). Requests of the warm-up are not counted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use attesta_certs::AgencyId;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use http::Method;
use serde::Serialize;

use crate::cli::query::ClientSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchRoute {
    /// `POST /v1/status` (the coordinator: two peer calls per request).
    Status,
    /// `POST /v1/attest/residence` (a registry's signed answer).
    Residence,
    /// `GET /v1/whoami` (TLS and HTTP only).
    Whoami,
}

impl BenchRoute {
    fn name(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Residence => "residence",
            Self::Whoami => "whoami",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Status => crate::wire::path::STATUS,
            Self::Residence => crate::wire::path::ATTEST_RESIDENCE,
            Self::Whoami => crate::wire::path::WHOAMI,
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// client.toml: CA, the agency's certificate and key, the node to load.
    #[arg(long)]
    config: PathBuf,
    #[arg(long, value_enum, default_value = "status")]
    route: BenchRoute,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long to measure: 30s, 2m, 500ms.
    #[arg(long, default_value = "10s")]
    duration: String,
    /// Load before measuring, not counted.
    #[arg(long, default_value = "1s")]
    warmup: String,
    /// Subjects to ask about: samples.json (`cf`, `comune`) or a CSV whose header names a
    /// `codice_fiscale` or `cf` column (and optionally `comune`), e.g. generated residents.csv.
    #[arg(long)]
    subjects: Option<PathBuf>,
    /// Declared purpose of status and residence requests.
    #[arg(long, default_value = "benefit-eligibility")]
    purpose: String,
    /// Load this node instead of client.toml's (e.g. a registry for `--route residence`), or
    /// a hosted agency on its host (`https://host:port/tenants/AGENCY`).
    #[arg(long)]
    url: Option<String>,
    /// The agency the `--url` node must be; without it any node of the federation is accepted.
    #[arg(long)]
    node_agency: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// A subject to ask about.
#[derive(Debug, Clone)]
pub struct Subject {
    pub cf: String,
    pub comune: Option<String>,
}

/// Parses `30s`, `2m`, `500ms`, `1h`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .with_context(|| format!("duration {s:?}: expected a number and a unit (ms, s, m, h)"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        other => anyhow::bail!("duration {s:?}: unknown unit {other:?} (ms, s, m, h)"),
    })
}

/// Reads subjects from samples.json or a CSV with a `codice_fiscale`/`cf` column.
pub fn read_subjects(path: &Path) -> anyhow::Result<Vec<Subject>> {
    let name = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("reading {name}"))?;
    let subjects = if path.extension().is_some_and(|e| e == "json") {
        let doc: Vec<serde_json::Value> =
            serde_json::from_slice(&bytes).with_context(|| format!("{name}: not samples.json"))?;
        doc.iter()
            .map(|s| {
                Ok(Subject {
                    cf: s["cf"]
                        .as_str()
                        .with_context(|| format!("{name}: a sample without cf"))?
                        .to_owned(),
                    comune: s["comune"].as_str().map(str::to_owned),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header = reader
            .headers()
            .with_context(|| format!("{name}: no CSV header"))?
            .clone();
        let col = |names: &[&str]| header.iter().position(|h| names.contains(&h));
        let cf = col(&["codice_fiscale", "cf"])
            .with_context(|| format!("{name}: no codice_fiscale or cf column"))?;
        let comune = col(&["comune"]);
        let mut out = Vec::new();
        for (i, row) in reader.records().enumerate() {
            let row = row.with_context(|| format!("{name}: row {}", i + 2))?;
            out.push(Subject {
                cf: row.get(cf).unwrap_or_default().to_owned(),
                comune: comune.and_then(|c| row.get(c)).map(str::to_owned),
            });
        }
        out
    };
    if subjects.is_empty() {
        anyhow::bail!("{name}: no subjects");
    }
    Ok(subjects)
}

/// The report of one run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub route: &'static str,
    pub url: String,
    pub concurrency: usize,
    pub duration_secs: f64,
    /// Answers with a 2xx status.
    pub ok: u64,
    /// Answers with another status.
    pub failed: u64,
    /// Requests that got no answer (connection errors).
    pub errors: u64,
    /// Status answers with `complete: false`.
    pub incomplete: u64,
    pub throughput_per_sec: f64,
    pub latency_ms: Latency,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl Report {
    pub fn text(&self) -> String {
        let l = &self.latency_ms;
        format!(
            "route {} at {}: {} connections, {:.1} s\n  \
             requests   {} ok, {} failed, {} errors{}\n  \
             throughput {:.1} requests/s\n  \
             latency    p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms\n",
            self.route,
            self.url,
            self.concurrency,
            self.duration_secs,
            self.ok,
            self.failed,
            self.errors,
            if self.route == "status" {
                format!(", {} incomplete", self.incomplete)
            } else {
                String::new()
            },
            self.throughput_per_sec,
            l.p50,
            l.p90,
            l.p99,
            l.p99_9,
            l.max,
        )
    }
}

/// Counts of one worker.
struct Tally {
    latency: Histogram<u64>,
    ok: u64,
    failed: u64,
    errors: u64,
    incomplete: u64,
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let settings = ClientSettings::load(&args.config)?;
    let duration = parse_duration(&args.duration)?;
    let warmup = parse_duration(&args.warmup)?;
    if args.concurrency == 0 {
        anyhow::bail!("--concurrency must be at least 1");
    }
    let (url, client) = match &args.url {
        Some(url) => {
            crate::client::check_agency_url(url).map_err(|_| {
                anyhow::anyhow!("--url {url:?} is not https://host:port[/tenants/AGENCY]")
            })?;
            let expected = args
                .node_agency
                .as_deref()
                .map(AgencyId::new)
                .transpose()
                .context("--node-agency")?;
            let client = crate::client::Client::pinned(
                &settings.trust,
                &settings.identity,
                expected.as_ref(),
            )?;
            (url.trim_end_matches('/').to_owned(), client)
        }
        None => (settings.node.clone(), settings.client()?),
    };
    let subjects: std::sync::Arc<Vec<Subject>> = std::sync::Arc::new(match &args.subjects {
        Some(path) => read_subjects(path)?,
        None if args.route == BenchRoute::Whoami => Vec::new(),
        None => anyhow::bail!("--subjects is required for --route {}", args.route.name()),
    });

    let started = Instant::now();
    let measure_from = started + warmup;
    let end = measure_from + duration;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..args.concurrency {
        let (client, url, subjects) = (client.clone(), url.clone(), subjects.clone());
        let (route, purpose) = (args.route, args.purpose.clone());
        workers.spawn(async move {
            let mut t = Tally {
                latency: histogram(),
                ok: 0,
                failed: 0,
                errors: 0,
                incomplete: 0,
            };
            let mut conn = None;
            let mut i = w;
            while Instant::now() < end {
                let body = match route {
                    BenchRoute::Whoami => None,
                    _ => {
                        let s = &subjects[i % subjects.len()];
                        i = i.wrapping_add(stride(subjects.len()));
                        let mut q = serde_json::json!({"subject": s.cf, "purpose": purpose});
                        if let (BenchRoute::Status, Some(c)) = (route, &s.comune) {
                            q["comune"] = c.as_str().into();
                        }
                        Some(Bytes::from(q.to_string()))
                    }
                };
                if conn.is_none() {
                    match client.connect(&url).await {
                        Ok(c) => conn = Some(c),
                        Err(_) => {
                            t.errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                let sent = Instant::now();
                let method = if body.is_some() {
                    Method::POST
                } else {
                    Method::GET
                };
                let result = c.request(method, route.path(), body).await;
                let counted = sent >= measure_from && Instant::now() <= end;
                match result {
                    Ok(reply) => {
                        if !counted {
                            continue;
                        }
                        let micros = sent.elapsed().as_micros().max(1) as u64;
                        t.latency.saturating_record(micros);
                        if reply.status.is_success() {
                            t.ok += 1;
                            if route == BenchRoute::Status
                                && !reply.body.windows(15).any(|w| w == b"\"complete\":true")
                            {
                                t.incomplete += 1;
                            }
                        } else {
                            t.failed += 1;
                        }
                    }
                    Err(_) => {
                        conn = None;
                        if counted {
                            t.errors += 1;
                        }
                    }
                }
            }
            t
        });
    }
    let mut all = Tally {
        latency: histogram(),
        ok: 0,
        failed: 0,
        errors: 0,
        incomplete: 0,
    };
    while let Some(t) = workers.join_next().await {
        let t = t.context("a load worker failed")?;
        all.latency.add(&t.latency).context("merging histograms")?;
        all.ok += t.ok;
        all.failed += t.failed;
        all.errors += t.errors;
        all.incomplete += t.incomplete;
    }
    let secs = duration.as_secs_f64();
    let ms = |q: f64| all.latency.value_at_quantile(q) as f64 / 1000.0;
    let report = Report {
        route: args.route.name(),
        url,
        concurrency: args.concurrency,
        duration_secs: secs,
        ok: all.ok,
        failed: all.failed,
        errors: all.errors,
        incomplete: all.incomplete,
        throughput_per_sec: all.ok as f64 / secs,
        latency_ms: Latency {
            mean: all.latency.mean() / 1000.0,
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p99_9: ms(0.999),
            max: all.latency.max() as f64 / 1000.0,
        },
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    if report.ok == 0 {
        anyhow::bail!(
            "no request succeeded ({} failed, {} errors)",
            report.failed,
            report.errors
        );
    }
    Ok(())
}

/// Workers walk the subjects with a stride coprime to their number, so that concurrent
/// workers ask about different people.
fn stride(n: usize) -> usize {
    let mut s = 7919 % n.max(1);
    while s == 0 || gcd(s, n) != 1 {
        s += 1;
    }
    s
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 weeks").is_err());
    }

    #[test]
    fn the_stride_visits_every_subject() {
        for n in [1, 2, 9, 7919, 20_000] {
            let s = stride(n);
            let mut seen = std::collections::HashSet::new();
            let mut i = 0usize;
            for _ in 0..n {
                seen.insert(i % n);
                i = i.wrapping_add(s);
            }
            assert_eq!(seen.len(), n, "n = {n}");
        }
    }

    #[test]
    fn subjects_come_from_samples_or_csv() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("samples.json");
        std::fs::write(
            &json,
            r#"[{"cf": "RSSMRA85T10A562S", "comune": "041044"}, {"cf": "BNCLRA90A41G479X", "comune": null}]"#,
        )
        .unwrap();
        let s = read_subjects(&json).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].comune.as_deref(), Some("041044"));
        assert_eq!(s[1].comune, None);

        let csv = dir.path().join("residents.csv");
        std::fs::write(
            &csv,
            "codice_fiscale,surname,comune\nRSSMRA85T10A562S,ROSSI,041044\n",
        )
        .unwrap();
        let s = read_subjects(&csv).unwrap();
        assert_eq!(s[0].cf, "RSSMRA85T10A562S");
        assert_eq!(s[0].comune.as_deref(), Some("041044"));

        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "name\nMario\n").unwrap();
        let e = read_subjects(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.csv") && e.contains("codice_fiscale"), "{e}");
    }
}
