//! `attesta generate`: synthetic but realistic registry and permit data for the Province of
//! Pesaro e Urbino, deterministic for a seed and a reference date.
//!
//! - residents spread over the real 50 comuni in proportion to their 2011 population;
//! - ~8.5% foreign residents with the province's citizenship mix (Romania, Moldova, Ukraine,
//!   Albania, Morocco, China, Pakistan, …; EU and non-EU);
//! - families sharing a surname, address and family id;
//! - valid codici fiscali; when two people would share a code, the later one gets an
//!   omocodia variant, as the Agenzia delle Entrate does;
//! - permits of the real types and durations for non-EU residents: valid, expired, renewal
//!   pending, EU long-term; children under 14 listed on a parent's permit;
//! - emigrated and deceased residents.
//!
//! `samples.json` lists subjects with the answers a correct federation gives as of the
//! reference date. Samples are taken from Pesaro and Urbino, the comuni with registry nodes in
//! the demo federation.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use time::{Date, Duration};

use crate::domain::cf::{compose, name_letters, surname_letters, CodiceFiscale, Sex};
use crate::domain::places::{self, Citizenship};
use crate::domain::records::{format_date, parse_date};
use crate::import::{PERMIT_COLUMNS, RESIDENT_COLUMNS};

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output directory for residents.csv, permits.csv and samples.json.
    #[arg(long)]
    pub out: PathBuf,
    /// How many residents.
    #[arg(long, default_value_t = 20_000)]
    pub residents: u32,
    /// Seed of the pseudo-random generator.
    #[arg(long, default_value_t = 2014)]
    pub seed: u64,
    /// The date the data describes (YYYY-MM-DD); every date is relative to it. Default: today.
    #[arg(long)]
    pub as_of: Option<String>,
}

/// SplitMix64: small, fast, and the same sequence on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = self.below(total);
        for (item, w) in items {
            if x < u64::from(*w) {
                return item;
            }
            x -= u64::from(*w);
        }
        &items[items.len() - 1].0
    }
}

/// ISTAT citizenship code, share (per mille of foreign residents), surnames, names (M, F).
type Nationality = (
    &'static str,
    u32,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const NATIONALITIES: &[Nationality] = &[
    (
        "235",
        220,
        &["Popescu", "Ionescu", "Dumitru", "Stan", "Munteanu"],
        &["Andrei", "Mihai", "Ion"],
        &["Elena", "Ioana", "Maria"],
    ),
    (
        "254",
        130,
        &["Rusu", "Ceban", "Ciobanu", "Lungu", "Botnari"],
        &["Vasile", "Sergiu", "Victor"],
        &["Natalia", "Olga", "Tatiana"],
    ),
    (
        "243",
        90,
        &["Shevchenko", "Kovalenko", "Bondarenko", "Tkachenko"],
        &["Oleksandr", "Dmytro", "Andriy"],
        &["Olena", "Iryna", "Oksana"],
    ),
    (
        "201",
        100,
        &["Hoxha", "Shehu", "Dervishi", "Krasniqi", "Gjoka"],
        &["Arben", "Ilir", "Erion"],
        &["Elira", "Blerina", "Anila"],
    ),
    (
        "436",
        90,
        &["Benali", "Elidrissi", "Amrani", "Bouzid"],
        &["Mohamed", "Youssef", "Rachid"],
        &["Fatima", "Khadija", "Samira"],
    ),
    (
        "314",
        70,
        &["Wang", "Li", "Zhang", "Chen", "Liu"],
        &["Wei", "Jun", "Hao"],
        &["Xiu", "Li", "Mei"],
    ),
    (
        "344",
        50,
        &["Khan", "Ahmed", "Ali", "Hussain"],
        &["Imran", "Bilal", "Usman"],
        &["Ayesha", "Sana", "Fatima"],
    ),
    (
        "330",
        40,
        &["Sharma", "Singh", "Kumar"],
        &["Rahul", "Amit", "Gurpreet"],
        &["Priya", "Simran", "Anita"],
    ),
    (
        "253",
        40,
        &["Stojanovski", "Petrovski", "Nikolovski"],
        &["Goran", "Zoran", "Dejan"],
        &["Marija", "Elena", "Ana"],
    ),
    (
        "450",
        30,
        &["Diop", "Ndiaye", "Fall", "Sarr"],
        &["Mamadou", "Cheikh", "Ousmane"],
        &["Aminata", "Fatou", "Awa"],
    ),
    (
        "443",
        30,
        &["Okafor", "Adeyemi", "Eze"],
        &["Chinedu", "Emeka", "Tunde"],
        &["Ngozi", "Amaka", "Bisi"],
    ),
    (
        "460",
        30,
        &["Ben Salah", "Trabelsi", "Gharbi"],
        &["Karim", "Sami", "Nabil"],
        &["Amira", "Leila", "Sonia"],
    ),
    (
        "605",
        20,
        &["Silva", "Santos", "Oliveira"],
        &["Joao", "Pedro", "Lucas"],
        &["Ana", "Julia", "Beatriz"],
    ),
    (
        "233",
        30,
        &["Nowak", "Kowalski", "Wisniewski"],
        &["Piotr", "Tomasz", "Pawel"],
        &["Anna", "Katarzyna", "Magdalena"],
    ),
    (
        "209",
        20,
        &["Ivanov", "Petrov", "Georgiev"],
        &["Georgi", "Dimitar", "Nikolay"],
        &["Maria", "Ivana", "Elena"],
    ),
    (
        "216",
        10,
        &["Muller", "Schmidt", "Schneider"],
        &["Lukas", "Jonas", "Felix"],
        &["Anna", "Lena", "Sophie"],
    ),
    (
        "241",
        5,
        &["Meier", "Keller", "Huber"],
        &["Luca", "Noah", "David"],
        &["Laura", "Sara", "Nina"],
    ),
];

const IT_SURNAMES: &[&str] = &[
    "Rossi",
    "Bianchi",
    "Ricci",
    "Marini",
    "Gentili",
    "Pierini",
    "Rossini",
    "Pagnini",
    "Fabbri",
    "Ferri",
    "Mancini",
    "Paolini",
    "Santini",
    "Bartolucci",
    "Gabellini",
    "Londei",
    "Morbidelli",
    "Renzi",
    "Vitali",
    "Ceccarelli",
    "Giorgini",
    "Tombari",
    "Baldelli",
    "Montanari",
];
const IT_MALE: &[&str] = &[
    "Marco",
    "Luca",
    "Giuseppe",
    "Francesco",
    "Matteo",
    "Andrea",
    "Lorenzo",
    "Paolo",
    "Giovanni",
    "Alessandro",
];
const IT_FEMALE: &[&str] = &[
    "Giulia",
    "Francesca",
    "Chiara",
    "Sara",
    "Laura",
    "Anna",
    "Elisa",
    "Martina",
    "Maria",
    "Paola",
];
const STREETS: &[&str] = &[
    "Via Roma",
    "Via Garibaldi",
    "Via Mazzini",
    "Viale della Repubblica",
    "Via Flaminia",
    "Via dei Mille",
    "Corso XI Settembre",
    "Via Raffaello",
    "Via Rossini",
    "Strada Panoramica",
];

/// A person being generated.
struct Person {
    cf: String,
    surname: String,
    name: String,
    sex: Sex,
    birth: Date,
    birth_place: String,
    citizenship: &'static str,
    comune: &'static str,
    address: String,
    family: String,
    start: Date,
    end: Option<(Date, &'static str)>,
}

#[derive(Serialize)]
struct Expect {
    resident: bool,
    legally_present: bool,
}

#[derive(Serialize)]
struct Sample {
    cf: String,
    comune: Option<String>,
    as_of: String,
    label: String,
    expect: Expect,
}

/// States that ceased, by the ISTAT citizenship codes of their successors in the data:
/// someone born there before the state ceased has its code in their codice fiscale.
const CEASED_BIRTH_STATES: &[(&str, &str)] = &[
    ("243", "Z135"), // Ukraine: the USSR
    ("254", "Z135"), // Moldova: the USSR
    ("253", "Z118"), // North Macedonia: Yugoslavia
];

/// The Belfiore code of the ceased state a citizen of `citizenship` born on `birth` was born
/// in, if any.
fn birth_state(citizenship: &str, birth: Date) -> Option<&'static str> {
    let (_, code) = CEASED_BIRTH_STATES
        .iter()
        .find(|(c, _)| *c == citizenship)?;
    let state = places::ceased_states().iter().find(|s| s.code == *code)?;
    (format_date(birth) < state.until).then_some(*code)
}

impl Sample {
    /// `p` as an example, with the answers expected about them on `as_of`.
    fn of(p: &Person, as_of: Date, label: &str, resident: bool, present: bool) -> Self {
        Sample {
            cf: p.cf.clone(),
            comune: Some(p.comune.to_owned()),
            as_of: format_date(as_of),
            label: label.to_owned(),
            expect: Expect {
                resident,
                legally_present: present,
            },
        }
    }
}

/// "ACQUALAGNA" → "Acqualagna", "SANT'ANGELO IN VADO" → "Sant'Angelo In Vado".
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut start = true;
    for c in name.chars() {
        out.extend(if start {
            c.to_uppercase().collect::<Vec<_>>()
        } else {
            c.to_lowercase().collect()
        });
        start = !c.is_alphanumeric();
    }
    out
}

fn date_minus_days(d: Date, days: i64) -> Date {
    d.checked_sub(Duration::days(days)).unwrap_or(d)
}

fn date_plus_days(d: Date, days: i64) -> Date {
    d.checked_add(Duration::days(days)).unwrap_or(d)
}

/// The person's codice fiscale, or None when another person already has it (the caller then
/// generates someone else). Omocodia variants spell the *same* person (DOMAIN.md), so they are
/// never used to tell two people apart; about 1% of people have theirs written as a variant.
fn unique_cf(rng: &mut Rng, taken: &mut HashSet<String>, p: &Person) -> Option<String> {
    let (yy, m, d) = (
        (p.birth.year() % 100) as u8,
        u8::from(p.birth.month()),
        p.birth.day(),
    );
    let plain = compose(
        &surname_letters(&p.surname),
        &name_letters(&p.name),
        yy,
        m,
        d,
        p.sex,
        &p.birth_place,
    );
    let cf = CodiceFiscale::parse(&plain).ok()?;
    if !taken.insert(cf.canonical().to_owned()) {
        return None;
    }
    if rng.chance(0.01) {
        Some(cf.omocodia_variant(1 + rng.below(3) as usize))
    } else {
        Some(plain)
    }
}

pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let as_of = match &args.as_of {
        Some(d) => parse_date(d).map_err(|e| anyhow::anyhow!("--as-of: {e}"))?,
        None => time::OffsetDateTime::now_utc().date(),
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut rng = Rng(args.seed ^ 0x5eed_a77e_57a0_2014);
    let comuni: Vec<(&'static places::Comune, u32)> = places::comuni_pu()
        .iter()
        .map(|c| (c, c.population_2011))
        .collect();
    let nationalities: Vec<(usize, u32)> = NATIONALITIES
        .iter()
        .enumerate()
        .filter(|(_, n)| n.1 > 0)
        .map(|(i, n)| (i, n.1))
        .collect();

    let mut taken = HashSet::new();
    let mut people: Vec<Person> = Vec::with_capacity(args.residents as usize);
    let mut permits: Vec<[String; 9]> = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    let mut labels_done: HashSet<&'static str> = HashSet::new();
    let mut family_no = 0u32;
    let mut permit_no = 10_000_000u32;

    while people.len() < args.residents as usize {
        family_no += 1;
        let comune = rng.weighted(&comuni);
        let foreign = rng.chance(0.085);
        let nat = if foreign {
            Some(&NATIONALITIES[*rng.weighted(&nationalities)])
        } else {
            None
        };
        let surname = match nat {
            Some(n) => rng.pick(n.2).to_string(),
            None => rng.pick(IT_SURNAMES).to_string(),
        };
        let address = format!("{} {}", rng.pick(STREETS), 1 + rng.below(150));
        let family = format!("{}-{family_no:07}", comune.istat);
        let citizenship = nat.map(|n| n.0).unwrap_or("100");
        let needs_permit = Citizenship::parse(citizenship)
            .map(|c| c.permit_required())
            .unwrap_or(false);
        let size = 1 + rng.below(4) as usize;
        let arrived = date_minus_days(as_of, 30 + rng.below(20 * 365) as i64);
        let mut members: Vec<usize> = Vec::new();
        for k in 0..size {
            let adult = k < 2;
            let sex = if k == 1 {
                Sex::F
            } else if rng.chance(0.5) {
                Sex::M
            } else {
                Sex::F
            };
            let age_days = if adult {
                (20 + rng.below(60)) * 365
            } else {
                rng.below(17 * 365)
            } as i64;
            let birth = date_minus_days(as_of, age_days + rng.below(365) as i64);
            let name = match (nat, sex) {
                (Some(n), Sex::M) => rng.pick(n.3).to_string(),
                (Some(n), Sex::F) => rng.pick(n.4).to_string(),
                (None, Sex::M) => rng.pick(IT_MALE).to_string(),
                (None, Sex::F) => rng.pick(IT_FEMALE).to_string(),
            };
            // Foreign adults were born abroad, in the state of the day (the USSR for a
            // Ukrainian born in 1980); children may be born here.
            let birth_place = match nat {
                Some(n) if adult || rng.chance(0.5) => birth_state(n.0, birth)
                    .map(str::to_owned)
                    .or_else(|| places::state_by_istat(n.0).map(|s| s.belfiore.clone()))
                    .unwrap_or_else(|| comune.belfiore.clone()),
                _ => comune.belfiore.clone(),
            };
            let start = if foreign {
                arrived.max(birth)
            } else {
                birth.max(date_minus_days(as_of, 40 * 365))
            };
            let mut p = Person {
                cf: String::new(),
                surname: surname.clone(),
                name,
                sex,
                birth,
                birth_place,
                citizenship,
                comune: comune.istat.as_str(),
                address: address.clone(),
                family: family.clone(),
                start,
                end: None,
            };
            if rng.chance(0.03) && start < date_minus_days(as_of, 60) {
                let end = date_minus_days(
                    as_of,
                    1 + rng.below(((as_of - start).whole_days() - 1).max(1) as u64) as i64,
                );
                p.end = Some((
                    end,
                    if rng.chance(0.6) {
                        "emigrated"
                    } else {
                        "deceased"
                    },
                ));
            }
            if people.len() >= args.residents as usize {
                break;
            }
            match unique_cf(&mut rng, &mut taken, &p) {
                Some(cf) => p.cf = cf,
                None => continue,
            }
            members.push(people.len());
            people.push(p);
        }

        if !needs_permit || members.is_empty() {
            continue;
        }
        // Permits: adults and children of 14 or more have their own; younger children are
        // listed on the first adult's permit.
        let mut parent_permit: Option<usize> = None;
        let mut minors: Vec<String> = Vec::new();
        for &i in &members {
            let p = &people[i];
            let age_years = (as_of - p.birth).whole_days() / 365;
            if age_years < 14 && parent_permit.is_some() {
                minors.push(p.cf.clone());
                continue;
            }
            let kind = *rng.weighted(&[
                ("work", 30),
                ("family", 25),
                ("eu_long_term", 25),
                ("study", 5),
                ("self_employment", 5),
                ("subsidiary_protection", 3),
                ("special_protection", 2),
                ("asylum", 2),
                ("seasonal_work", 3),
            ]);
            let months: i64 = match kind {
                "study" => 12,
                "seasonal_work" => 9,
                "subsidiary_protection" | "asylum" => 60,
                _ => 24,
            };
            let validity = months * 30;
            // Issued so that most are valid today, some expired, some in renewal.
            let issued =
                date_minus_days(as_of, rng.below((validity + 300) as u64) as i64).max(p.start);
            let expiry = (kind != "eu_long_term").then(|| date_plus_days(issued, validity));
            let renewal = matches!(expiry, Some(e) if e < as_of) && rng.chance(0.45);
            let (status, receipt) = if renewal {
                let e = expiry.unwrap_or(as_of);
                (
                    "renewal_pending",
                    Some(date_minus_days(e, 1 + rng.below(60) as i64)),
                )
            } else {
                ("valid", None)
            };
            permit_no += 1;
            permits.push([
                format!("I{permit_no:08}"),
                p.cf.clone(),
                kind.to_owned(),
                format_date(issued),
                expiry.map(format_date).unwrap_or_default(),
                status.to_owned(),
                receipt.map(format_date).unwrap_or_default(),
                p.comune.to_owned(),
                String::new(),
            ]);
            if parent_permit.is_none() {
                parent_permit = Some(permits.len() - 1);
            }
        }
        if let Some(pp) = parent_permit {
            permits[pp][8] = minors.join(";");
        }
    }

    // Samples: the first person of each kind in Pesaro or Urbino.
    let in_demo = |c: &str| c == "041044" || c == "041067";
    // Every permit naming a person, as holder or minor.
    let mut permits_of: std::collections::HashMap<&str, Vec<&[String; 9]>> =
        std::collections::HashMap::new();
    for row in &permits {
        permits_of.entry(row[1].as_str()).or_default().push(row);
        for m in row[8].split(';').filter(|m| !m.is_empty()) {
            permits_of.entry(m).or_default().push(row);
        }
    }
    let permit_state = |cf: &str| -> Option<(&'static str, bool)> {
        for row in permits_of.get(cf).into_iter().flatten() {
            let holder = row[1] == cf;
            let minor = row[8].split(';').any(|m| m == cf);
            if !(holder || minor) {
                continue;
            }
            let expiry = if row[4].is_empty() {
                None
            } else {
                parse_date(&row[4]).ok()
            };
            let label = match (minor, row[2].as_str(), row[5].as_str(), expiry) {
                (true, _, _, Some(e)) if e >= as_of => "minor on a parent's permit",
                (false, "eu_long_term", _, _) => "EU long-term permit holder",
                (false, _, "renewal_pending", Some(e)) if e < as_of => {
                    "resident with renewal pending"
                }
                (false, _, "valid", Some(e)) if e < as_of => "resident with expired permit",
                (false, _, "valid", Some(_)) => "resident with valid permit",
                _ => return None,
            };
            let present = label != "resident with expired permit";
            return Some((label, present));
        }
        None
    };
    // Someone born in a state that no longer exists, resident and legally present.
    if let Some((p, label)) = people.iter().find_map(|p| {
        let ceased = places::ceased_states()
            .iter()
            .any(|s| s.code == p.birth_place);
        let ok = ceased && p.end.is_none() && in_demo(p.comune);
        ok.then(|| permit_state(&p.cf))
            .flatten()
            .filter(|(_, present)| *present)
            .map(|_| (p, "born in a state that no longer exists"))
    }) {
        labels_done.insert(label);
        samples.push(Sample::of(p, as_of, label, true, true));
    }
    for p in &people {
        if labels_done.len() == 9 {
            break;
        }
        if !in_demo(p.comune) {
            continue;
        }
        let resident = p.end.is_none();
        let c = Citizenship::parse(p.citizenship)
            .map(|c| (c.is_italian(), c.permit_required()))
            .unwrap_or((false, true));
        let sample = match (resident, c) {
            (true, (true, _)) => Some(("Italian citizen", true)),
            (true, (false, false)) => Some(("EU citizen resident", true)),
            (true, (false, true)) => permit_state(&p.cf),
            (false, (false, _)) if p.end.map(|e| e.1) == Some("emigrated") => {
                // A foreigner who emigrated and holds no permit valid today: for EU citizens
                // legal presence followed registration, which has ended.
                match permit_state(&p.cf) {
                    Some((_, true)) => None,
                    _ => Some(("emigrated person", false)),
                }
            }
            _ => None,
        };
        if let Some((label, present)) = sample {
            if labels_done.insert(label) {
                samples.push(Sample::of(p, as_of, label, resident, present));
            }
        }
    }
    // A resident of every comune of the province that has no sample yet (most are hosted by
    // the service centre in the demo): an Italian citizen, resident and so legally present.
    for c in places::comuni_pu() {
        if samples
            .iter()
            .any(|s| s.comune.as_deref() == Some(c.istat.as_str()))
        {
            continue;
        }
        let citizen = people
            .iter()
            .find(|p| p.comune == c.istat.as_str() && p.end.is_none() && p.citizenship == "100");
        if let Some(p) = citizen {
            let label = format!("resident of {}", title_case(&c.name));
            samples.push(Sample::of(p, as_of, &label, true, true));
        }
    }
    // Someone nobody knows: a valid code that is not in the data.
    let mut n = 0u8;
    loop {
        let unknown = compose("XYZ", "QWK", 77 + n % 20, 6, 15, Sex::M, "G479");
        if !taken.contains(&unknown) {
            samples.push(Sample {
                cf: unknown,
                comune: None,
                as_of: format_date(as_of),
                label: "unknown person".into(),
                expect: Expect {
                    resident: false,
                    legally_present: false,
                },
            });
            break;
        }
        n += 1;
    }

    let write_csv = |name: &str,
                     header: &[&str],
                     rows: &mut dyn Iterator<Item = Vec<String>>|
     -> anyhow::Result<()> {
        let path = args.out.join(name);
        let mut w =
            csv::Writer::from_path(&path).with_context(|| format!("writing {}", path.display()))?;
        w.write_record(header)?;
        for r in rows {
            w.write_record(&r)?;
        }
        w.flush()
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    };
    write_csv(
        "residents.csv",
        &RESIDENT_COLUMNS,
        &mut people.iter().map(|p| {
            vec![
                p.cf.clone(),
                p.surname.clone(),
                p.name.clone(),
                match p.sex {
                    Sex::M => "M".into(),
                    Sex::F => "F".into(),
                },
                format_date(p.birth),
                p.birth_place.clone(),
                p.citizenship.to_owned(),
                p.comune.to_owned(),
                p.address.clone(),
                p.family.clone(),
                format_date(p.start),
                p.end.map(|e| format_date(e.0)).unwrap_or_default(),
                p.end.map(|e| e.1.to_owned()).unwrap_or_default(),
            ]
        }),
    )?;
    write_csv(
        "permits.csv",
        &PERMIT_COLUMNS,
        &mut permits.iter().map(|r| r.to_vec()),
    )?;
    let samples_path = args.out.join("samples.json");
    std::fs::write(&samples_path, serde_json::to_vec_pretty(&samples)?)
        .with_context(|| format!("writing {}", samples_path.display()))?;
    println!(
        "wrote {} residents, {} permits and {} samples to {} (as of {})",
        people.len(),
        permits.len(),
        samples.len(),
        args.out.display(),
        format_date(as_of)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(dir: &std::path::Path, seed: u64) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        run(&GenerateArgs {
            out: dir.to_owned(),
            residents: 3_000,
            seed,
            as_of: Some("2026-11-23".into()),
        })
        .unwrap();
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
        (
            read("residents.csv"),
            read("permits.csv"),
            read("samples.json"),
        )
    }

    #[test]
    fn output_is_the_same_for_a_seed_and_date_and_differs_across_seeds() {
        let dir = tempfile::tempdir().unwrap();
        let a = generate(&dir.path().join("a"), 7);
        let b = generate(&dir.path().join("b"), 7);
        let c = generate(&dir.path().join("c"), 8);
        assert_eq!(a, b);
        assert_ne!(a.0, c.0);
    }

    #[test]
    fn every_generated_row_is_importable() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), 3);
        let store = crate::store::Store::open(&dir.path().join("db")).unwrap();
        for (file, ds) in [
            ("residents.csv", crate::store::Dataset::Residents),
            ("permits.csv", crate::store::Dataset::Permits),
        ] {
            let s = crate::import::run(
                &store,
                &dir.path().join(file),
                ds,
                crate::import::Mode::Snapshot,
                None,
                false,
            )
            .unwrap_or_else(|e| panic!("{file}: {e:?}"));
            assert_eq!(s.rejected, 0, "{file}");
            assert!(s.applied > 0, "{file}");
        }
    }

    #[test]
    fn some_residents_were_born_in_states_that_no_longer_exist() {
        let dir = tempfile::tempdir().unwrap();
        let (residents, _, samples) = generate(dir.path(), 5);
        let mut rd = csv::Reader::from_reader(residents.as_slice());
        let headers = rd.headers().unwrap().clone();
        let place = headers.iter().position(|h| h == "birth_place").unwrap();
        let born = rd
            .records()
            .map(|r| r.unwrap()[place].to_owned())
            .filter(|p| ["Z135", "Z118"].contains(&p.as_str()))
            .count();
        assert!(born > 10, "{born} residents born in the USSR or Yugoslavia");
        let samples: Vec<serde_json::Value> = serde_json::from_slice(&samples).unwrap();
        let sample = samples
            .iter()
            .find(|s| s["label"] == "born in a state that no longer exists")
            .expect("a sample born in a ceased state");
        let cf = crate::domain::cf::CodiceFiscale::parse(sample["cf"].as_str().unwrap()).unwrap();
        assert!(["Z135", "Z118"].contains(&cf.birth_place()));
        assert_eq!(sample["expect"]["legally_present"], true);
    }
}
