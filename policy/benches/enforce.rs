//! casbin enforcement cost against policy size, with and without the decision cache.
//!
//! `cargo bench --profile dev -p attesta-policy --bench enforce`. Each policy has N allow
//! lines, one per synthetic agency; the request matches the last one (the worst case for a
//! linear scan).

use attesta_policy::{Policy, Request};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn policy(lines: usize) -> Policy {
    let mut rules = String::new();
    for i in 0..lines {
        rules.push_str(&format!(
            "p, agency-{i}, residence, read, benefit-eligibility, *, allow\n"
        ));
    }
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(Policy::load(&rules))
        .expect("policy loads")
}

fn enforce(c: &mut Criterion) {
    let mut group = c.benchmark_group("enforce");
    for lines in [10usize, 1_000, 10_000] {
        let p = policy(lines);
        let req = Request {
            agency: format!("agency-{}", lines - 1),
            resource: "residence".into(),
            action: "read".into(),
            purpose: "benefit-eligibility".into(),
            territory: "*".into(),
        };
        assert!(p.decide(&req).expect("decides").is_allow());
        group.bench_with_input(BenchmarkId::new("uncached", lines), &req, |b, r| {
            b.iter(|| p.decide_uncached(r).expect("decides"))
        });
        group.bench_with_input(BenchmarkId::new("cached", lines), &req, |b, r| {
            b.iter(|| p.decide(r).expect("decides"))
        });
    }
    group.finish();
}

criterion_group!(benches, enforce);
criterion_main!(benches);
