//! In-process lookups: the store and the legal-presence rules without HTTP or TLS.
//!
//! `cargo bench -p attesta --bench lookups`. Imports 100,000 generated residents and their
//! permits into a temporary store, then measures residence and legal-presence answers.

use criterion::{criterion_group, criterion_main, Criterion};

use attesta::domain::cf::CodiceFiscale;
use attesta::domain::presence::{legal_presence_on, residence_on};
use attesta::import::{self, Mode};
use attesta::store::{Dataset, Store};

fn lookups(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("gen");
    attesta::cli::generate::run(&attesta::cli::generate::GenerateArgs {
        out: out.clone(),
        residents: 100_000,
        seed: 1,
        as_of: Some("2026-11-23".into()),
    })
    .expect("generate");
    let store = Store::open(&dir.path().join("db")).expect("store");
    for (file, ds) in [
        ("residents.csv", Dataset::Residents),
        ("permits.csv", Dataset::Permits),
    ] {
        import::run(&store, &out.join(file), ds, Mode::Snapshot, None, false).expect("import");
    }
    let text = std::fs::read_to_string(out.join("residents.csv")).expect("residents");
    let subjects: Vec<CodiceFiscale> = text
        .lines()
        .skip(1)
        .step_by(97)
        .filter_map(|l| CodiceFiscale::parse(l.split(',').next()?).ok())
        .collect();
    let as_of = time::macros::date!(2026 - 11 - 23);

    let mut i = 0;
    c.bench_function("residence lookup (store + rule)", |b| {
        b.iter(|| {
            i = (i + 1) % subjects.len();
            let (r, _) = store.resident(&subjects[i]).expect("read");
            residence_on(r.as_ref(), as_of)
        })
    });
    c.bench_function("legal-presence lookup (store + rule)", |b| {
        b.iter(|| {
            i = (i + 1) % subjects.len();
            let (p, _) = store.permits_of(&subjects[i]).expect("read");
            legal_presence_on(&subjects[i], &p, as_of)
        })
    });
    c.bench_function("codice fiscale parse", |b| {
        b.iter(|| CodiceFiscale::parse(std::hint::black_box("RSSMRA85T10A56NH")))
    });
}

criterion_group!(benches, lookups);
criterion_main!(benches);
