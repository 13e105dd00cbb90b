//! Places and citizenships: ISTAT comune codes, the comuni of the Province of Pesaro e Urbino,
//! the ANPR table of foreign states, the foreign states that no longer exist, and every
//! Belfiore code an Italian comune ever had (embedded from `node/data/`; see `node/data/README.md`).
//!
//! Birth places are checked against everything that *ever* existed: a codice fiscale keeps
//! its birth place's code for life, so a person born in Yugoslavia (`Z118`) or in a comune
//! since merged keeps a code that no current table lists.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

/// ISTAT code of Italian citizenship.
pub const ITALY_CITIZENSHIP: &str = "100";

/// An ISTAT comune code: six digits, e.g. `041044` (Pesaro).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComuneCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("comune code {0:?} is not six digits (ISTAT)")]
    ComuneSyntax(String),
    #[error("citizenship code {0:?} is not a known ISTAT state code")]
    Citizenship(String),
}

impl ComuneCode {
    pub fn parse(s: &str) -> Result<Self, PlaceError> {
        let s = s.trim();
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(PlaceError::ComuneSyntax(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ComuneCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A comune of the province, from `node/data/comuni_pu.csv`.
#[derive(Debug, Clone)]
pub struct Comune {
    pub istat: ComuneCode,
    pub belfiore: String,
    pub name: String,
    pub population_2011: u32,
    pub cap: String,
}

/// A foreign state, from `node/data/stati_esteri.csv` (ANPR table 02).
#[derive(Debug, Clone)]
pub struct ForeignState {
    pub name: String,
    /// ISTAT citizenship code, e.g. `235` (Romania).
    pub istat: String,
    /// Belfiore birth-place code, e.g. `Z129`.
    pub belfiore: String,
    pub iso3: String,
}

/// A birth-place code and the days it was in use (ISO dates; `9999-12-31`: still in use).
#[derive(Debug, Clone)]
pub struct BirthPlace {
    /// Belfiore code: `Z###` for a foreign state, a letter and three digits for a comune.
    pub code: String,
    pub name: String,
    pub from: String,
    pub until: String,
}

static COMUNI_CSV: &str = include_str!("../../data/comuni_pu.csv");
static STATES_CSV: &str = include_str!("../../data/stati_esteri.csv");
static CEASED_STATES_CSV: &str = include_str!("../../data/stati_esteri_cessati.csv");
static BELFIORE_CSV: &str = include_str!("../../data/comuni_belfiore.csv");

static COMUNI: LazyLock<Vec<Comune>> = LazyLock::new(|| {
    let mut rd = csv::Reader::from_reader(COMUNI_CSV.as_bytes());
    rd.records()
        .filter_map(Result::ok)
        .filter_map(|r| {
            Some(Comune {
                istat: ComuneCode::parse(r.get(0)?).ok()?,
                belfiore: r.get(1)?.to_owned(),
                name: r.get(2)?.to_owned(),
                population_2011: r.get(5)?.parse().ok()?,
                cap: r.get(6)?.to_owned(),
            })
        })
        .collect()
});

static STATES: LazyLock<Vec<ForeignState>> = LazyLock::new(|| {
    let mut rd = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(STATES_CSV.as_bytes());
    rd.records()
        .filter_map(Result::ok)
        .filter_map(|r| {
            let belfiore = r.get(4)?;
            let istat = r.get(3)?;
            // Rows without a Belfiore code (stateless, "not attributable") are not states.
            if !belfiore.starts_with('Z') || istat.is_empty() {
                return None;
            }
            Some(ForeignState {
                name: r.get(2).filter(|s| !s.is_empty()).or(r.get(1))?.to_owned(),
                istat: istat.to_owned(),
                belfiore: belfiore.to_owned(),
                iso3: r.get(5)?.to_owned(),
            })
        })
        .collect()
});

static STATE_BY_BELFIORE: LazyLock<HashMap<&'static str, &'static ForeignState>> =
    LazyLock::new(|| STATES.iter().map(|s| (s.belfiore.as_str(), s)).collect());

/// Reads a `code,name,from,until` table; `cols` gives the four columns' indexes.
fn birth_places(csv_text: &str, cols: [usize; 4]) -> Vec<BirthPlace> {
    let mut rd = csv::Reader::from_reader(csv_text.as_bytes());
    rd.records()
        .filter_map(Result::ok)
        .filter_map(|r| {
            Some(BirthPlace {
                code: r.get(cols[0])?.to_owned(),
                name: r.get(cols[1])?.to_owned(),
                from: r.get(cols[2])?.to_owned(),
                until: r.get(cols[3])?.to_owned(),
            })
        })
        .collect()
}

/// Foreign states that no longer exist (`node/data/stati_esteri_cessati.csv`).
static CEASED_STATES: LazyLock<Vec<BirthPlace>> =
    LazyLock::new(|| birth_places(CEASED_STATES_CSV, [0, 1, 2, 3]));

/// Every Belfiore code of an Italian comune since 1861 (`node/data/comuni_belfiore.csv`).
static COMUNE_CODES: LazyLock<HashMap<&'static str, BirthPlace>> = LazyLock::new(|| {
    static ROWS: LazyLock<Vec<BirthPlace>> =
        LazyLock::new(|| birth_places(BELFIORE_CSV, [0, 3, 1, 2]));
    ROWS.iter().map(|p| (p.code.as_str(), p.clone())).collect()
});
static STATE_BY_ISTAT: LazyLock<HashMap<&'static str, &'static ForeignState>> =
    LazyLock::new(|| STATES.iter().map(|s| (s.istat.as_str(), s)).collect());

/// The 50 comuni of the Province of Pesaro e Urbino.
pub fn comuni_pu() -> &'static [Comune] {
    &COMUNI
}

pub fn comune(code: &ComuneCode) -> Option<&'static Comune> {
    COMUNI.iter().find(|c| &c.istat == code)
}

/// "PESARO (041044)" for a comune of the province; the code alone for any other.
pub fn comune_label(code: &str) -> String {
    ComuneCode::parse(code)
        .ok()
        .and_then(|c| comune(&c))
        .map(|c| format!("{} ({code})", c.name))
        .unwrap_or_else(|| code.to_owned())
}

pub fn foreign_states() -> &'static [ForeignState] {
    &STATES
}

/// Whether `code` (e.g. `Z129`) is the Belfiore code of a foreign state that exists today.
pub fn is_foreign_state(code: &str) -> bool {
    STATE_BY_BELFIORE.contains_key(code)
}

/// Foreign states that no longer exist, with the days their codes were in use.
pub fn ceased_states() -> &'static [BirthPlace] {
    &CEASED_STATES
}

/// Whether `code` is the Belfiore code of a foreign state that exists or ever existed.
pub fn is_birth_state(code: &str) -> bool {
    is_foreign_state(code) || CEASED_STATES.iter().any(|s| s.code == code)
}

/// The comune that had Belfiore code `code`, at any time since 1861.
pub fn comune_by_belfiore(code: &str) -> Option<&'static BirthPlace> {
    COMUNE_CODES.get(code)
}

pub fn state_by_istat(code: &str) -> Option<&'static ForeignState> {
    STATE_BY_ISTAT.get(code).copied()
}

/// ISO 3166 alpha-3 codes of the EU member states, the other EEA states (Iceland,
/// Liechtenstein, Norway) and Switzerland: citizens who need no residence permit.
const FREE_MOVEMENT_ISO3: &[&str] = &[
    "AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA", "DEU", "GRC", "HUN",
    "IRL", "ITA", "LVA", "LTU", "LUX", "MLT", "NLD", "POL", "PRT", "ROU", "SVK", "SVN", "ESP",
    "SWE", // EU 27
    "ISL", "LIE", "NOR", // EEA
    "CHE", // Switzerland
];

/// A citizenship, by ISTAT code: Italian, free movement (EU/EEA/Swiss), or needing a permit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citizenship(String);

impl Citizenship {
    pub fn parse(code: &str) -> Result<Self, PlaceError> {
        let code = code.trim();
        if code == ITALY_CITIZENSHIP || STATE_BY_ISTAT.contains_key(code) {
            Ok(Self(code.to_owned()))
        } else {
            Err(PlaceError::Citizenship(code.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_italian(&self) -> bool {
        self.0 == ITALY_CITIZENSHIP
    }

    /// True when the citizen needs a residence permit: not Italian, EU, EEA or Swiss.
    pub fn permit_required(&self) -> bool {
        if self.is_italian() {
            return false;
        }
        match state_by_istat(&self.0) {
            Some(s) => !FREE_MOVEMENT_ISO3.contains(&s.iso3.as_str()),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_province_has_its_fifty_comuni() {
        assert_eq!(comuni_pu().len(), 50);
        let pesaro = comune(&ComuneCode::parse("041044").unwrap()).unwrap();
        assert_eq!(pesaro.belfiore, "G479");
        assert_eq!(pesaro.name, "PESARO");
        let urbino = comune(&ComuneCode::parse("041067").unwrap()).unwrap();
        assert_eq!(urbino.belfiore, "L500");
    }

    #[test]
    fn foreign_states_are_read_including_quoted_names() {
        assert!(is_foreign_state("Z129")); // Romania
        assert!(is_foreign_state("Z210")); // China, a quoted name in the table
        assert!(!is_foreign_state("Z999"));
        assert!(!is_foreign_state("G479"));
        assert_eq!(state_by_istat("314").unwrap().iso3, "CHN");
    }

    #[test]
    fn birth_places_include_states_and_comuni_that_no_longer_exist() {
        for (code, name) in [
            ("Z105", "Cecoslovacchia"),
            ("Z111", "Repubblica Democratica Tedesca"),
            ("Z118", "Jugoslavia"),
            ("Z135", "Unione Repubbliche Socialiste Sovietiche"),
            ("Z157", "Serbia e Montenegro"),
            ("Z250", "Yemen del Sud"),
        ] {
            assert!(is_birth_state(code), "{code}");
            assert!(!is_foreign_state(code), "{code} is not a state today");
            let s = ceased_states().iter().find(|s| s.code == code).unwrap();
            assert_eq!(s.name, name);
            assert!(s.until.as_str() < "9999", "{code} ceased");
        }
        assert_eq!(ceased_states().len(), 8);
        assert!(is_birth_state("Z129"), "Romania, today");
        assert!(!is_birth_state("Z998"));

        // Comuni in use today, and comuni since merged into others.
        assert_eq!(comune_by_belfiore("G479").unwrap().name, "PESARO");
        assert_eq!(comune_by_belfiore("G479").unwrap().until, "9999-12-31");
        for pu in comuni_pu() {
            assert!(comune_by_belfiore(&pu.belfiore).is_some(), "{}", pu.name);
        }
        // Colbordolo and Sant'Angelo in Lizzola merged into Vallefoglia (2014).
        for code in ["C830", "I285"] {
            let c = comune_by_belfiore(code).unwrap();
            assert!(c.until.as_str() < "9999-12-31", "{code} {c:?}");
        }
        assert!(comune_by_belfiore("M999").is_none());
        assert!(comune_by_belfiore("ND").is_none());
    }

    #[test]
    fn permits_are_required_of_everyone_but_italian_eu_eea_and_swiss_citizens() {
        for (code, required, who) in [
            ("100", false, "Italy"),
            ("235", false, "Romania (EU)"),
            ("215", false, "France (EU)"),
            ("231", false, "Norway (EEA)"),
            ("225", false, "Liechtenstein (EEA)"),
            ("223", false, "Iceland (EEA)"),
            ("241", false, "Switzerland"),
            ("254", true, "Moldova"),
            ("243", true, "Ukraine"),
            ("201", true, "Albania"),
            ("436", true, "Morocco"),
            ("314", true, "China"),
            ("344", true, "Pakistan"),
            ("219", true, "United Kingdom"),
        ] {
            let c = Citizenship::parse(code).unwrap_or_else(|e| panic!("{who}: {e}"));
            assert_eq!(c.permit_required(), required, "{who}");
        }
        assert!(Citizenship::parse("000").is_err());
        assert!(ComuneCode::parse("41044").is_err());
        assert!(ComuneCode::parse("04104A").is_err());
    }
}
