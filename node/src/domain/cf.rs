//! The codice fiscale (DM Finanze 23/12/1976), parsed, never re-validated downstream.
//!
//! Layout, 16 characters: surname (3 letters) · name (3 letters) · year (2 digits) · month
//! (1 letter) · day (2 digits, +40 for women) · place of birth (letter + 3 digits; `Z###`
//! abroad) · check letter.
//!
//! Checks applied, in order (each failure has its own [`CfError`]):
//! 1. spaces removed and lower case raised; any other character than A–Z and 0–9 is refused;
//! 2. exactly 16 characters;
//! 3. letters where letters belong; at the 7 digit positions a digit or an omocodia letter
//!    (`L M N P Q R S T U V` for 0–9);
//! 4. the check letter matches the first 15 characters;
//! 5. month letter is one of `A B C D E H L M P R S T`;
//! 6. day is 1–31 (men) or 41–71 (women), and fits the month (29 February is accepted: the
//!    century is not in the code);
//! 7. place: a Belfiore code that ever existed: `Z###` for a foreign state, today's or one
//!    that no longer exists (Yugoslavia `Z118`, the USSR `Z135`, …); a letter A–M and three
//!    digits for a comune of ANPR's archive since 1861, merged and renamed ones included.
//!
//! The birth date is **not** checked against the dates a place code was in use. The year has
//! two digits, so the century is a guess; and the Agenzia delle Entrate issues the code, so a
//! code it issued is the person's code even where the place and the date look inconsistent
//! (codes of successor states given to people born before the split, say). Refusing a real
//! person at a counter costs more than accepting an implausible but well-formed code, which
//! only finds a record if a registry holds one.
//!
//! **Omocodia**: when two people would share a code, digits are replaced by letters from the
//! right. All 128 variants are valid and name the same person; [`CodiceFiscale::canonical`]
//! is the all-digits form, used as the storage key, so any variant finds the person.

use std::fmt;

/// Why a string is not a codice fiscale. Messages name the position (1-based) where useful.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CfError {
    #[error("codice fiscale is empty")]
    Empty,
    #[error("codice fiscale has {0} characters, expected 16")]
    Length(usize),
    #[error("character {ch:?} at position {pos} is not allowed (only letters and digits)")]
    Character { pos: usize, ch: char },
    #[error("position {pos} must be a letter, found {ch:?}")]
    ExpectedLetter { pos: usize, ch: char },
    #[error("position {pos} must be a digit (or omocodia letter), found {ch:?}")]
    ExpectedDigit { pos: usize, ch: char },
    #[error("check letter is {found}, expected {expected}")]
    CheckLetter { expected: char, found: char },
    #[error("month letter {0:?} is not one of A B C D E H L M P R S T")]
    Month(char),
    #[error("day {0} is not a valid birth day (1-31, or 41-71 for women)")]
    Day(u8),
    #[error("day {day} does not exist in month {month}")]
    DayOfMonth { day: u8, month: u8 },
    #[error("place code {0} is not a Belfiore code")]
    Place(String),
    #[error("place code {0} is not a foreign state that exists or ever existed")]
    UnknownState(String),
    #[error("place code {0} is not the code of any Italian comune since 1861")]
    UnknownComune(String),
}

/// Month letters, January to December.
const MONTHS: [u8; 12] = *b"ABCDEHLMPRST";
/// Omocodia letters standing for 0–9.
const OMOCODIA: [u8; 10] = *b"LMNPQRSTUV";
/// 0-based positions of the seven digits omocodia may replace.
pub const DIGIT_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];
/// Values of characters at odd positions (1st, 3rd, …; 1-based), indexed by digit or letter.
const ODD: [u8; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];

/// Sex as encoded in the day field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    M,
    F,
}

/// A valid codice fiscale in canonical form (omocodia letters replaced by digits).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodiceFiscale([u8; 16]);

// A codice fiscale is personal data: Debug shows only that there is one.
impl fmt::Debug for CodiceFiscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodiceFiscale(…)")
    }
}

/// The value of a code character (digits 0–9, letters A–Z as 0–25).
fn index(c: u8) -> usize {
    if c.is_ascii_digit() {
        usize::from(c - b'0')
    } else {
        usize::from(c - b'A')
    }
}

/// The check letter of the first 15 characters (all upper-case letters or digits).
pub fn check_letter(first15: &[u8]) -> u8 {
    let sum: u32 = first15
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            // Position i is 0-based: 1-based odd positions are even i.
            if i % 2 == 0 {
                u32::from(ODD[index(c)])
            } else {
                index(c) as u32
            }
        })
        .sum();
    b'A' + (sum % 26) as u8
}

fn omocodia_digit(c: u8) -> Option<u8> {
    if c.is_ascii_digit() {
        Some(c)
    } else {
        OMOCODIA
            .iter()
            .position(|&o| o == c)
            .map(|d| b'0' + d as u8)
    }
}

fn days_in_month(month: u8) -> u8 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl CodiceFiscale {
    /// Parses a code, accepting spaces and lower case, and any omocodia variant.
    pub fn parse(input: &str) -> Result<Self, CfError> {
        Self::parse_with(input, |place| {
            if place.starts_with('Z') {
                super::places::is_birth_state(place)
            } else {
                super::places::comune_by_belfiore(place).is_some()
            }
        })
    }

    /// Parses with a given test for birth-place codes (`Z###` states, `A###`–`M###` comuni).
    pub fn parse_with(input: &str, known_place: impl Fn(&str) -> bool) -> Result<Self, CfError> {
        let mut raw = [0u8; 16];
        let mut len = 0usize;
        for (i, ch) in input.chars().enumerate() {
            if ch == ' ' {
                continue;
            }
            let up = ch.to_ascii_uppercase();
            if !(up.is_ascii_uppercase() || up.is_ascii_digit()) {
                return Err(CfError::Character { pos: i + 1, ch });
            }
            if len < 16 {
                raw[len] = up as u8;
            }
            len += 1;
        }
        match len {
            0 => return Err(CfError::Empty),
            16 => {}
            n => return Err(CfError::Length(n)),
        }

        let mut canonical = raw;
        for (i, &c) in raw.iter().enumerate() {
            let pos = i + 1;
            if DIGIT_POSITIONS.contains(&i) {
                canonical[i] =
                    omocodia_digit(c).ok_or(CfError::ExpectedDigit { pos, ch: c as char })?;
            } else if !c.is_ascii_uppercase() {
                return Err(CfError::ExpectedLetter { pos, ch: c as char });
            }
        }
        let expected = check_letter(&raw[..15]);
        if raw[15] != expected {
            return Err(CfError::CheckLetter {
                expected: expected as char,
                found: raw[15] as char,
            });
        }

        let month = MONTHS
            .iter()
            .position(|&m| m == raw[8])
            .ok_or(CfError::Month(raw[8] as char))? as u8
            + 1;
        let day = (canonical[9] - b'0') * 10 + (canonical[10] - b'0');
        let day_of_month = match day {
            1..=31 => day,
            41..=71 => day - 40,
            _ => return Err(CfError::Day(day)),
        };
        if day_of_month > days_in_month(month) {
            return Err(CfError::DayOfMonth {
                day: day_of_month,
                month,
            });
        }
        let place = std::str::from_utf8(&canonical[11..15]).unwrap_or_default();
        match canonical[11] {
            b'Z' if !known_place(place) => return Err(CfError::UnknownState(place.to_owned())),
            b'A'..=b'M' if !known_place(place) => {
                return Err(CfError::UnknownComune(place.to_owned()))
            }
            b'Z' | b'A'..=b'M' => {}
            _ => return Err(CfError::Place(place.to_owned())),
        }

        canonical[15] = check_letter(&canonical[..15]);
        Ok(Self(canonical))
    }

    /// The canonical (all-digits) code, 16 ASCII characters.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters and digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The canonical form, for storage keys.
    pub fn canonical(&self) -> &str {
        self.as_str()
    }

    pub fn sex(&self) -> Sex {
        if self.0[9] >= b'4' {
            Sex::F
        } else {
            Sex::M
        }
    }

    /// Belfiore code of the place of birth (`Z###` abroad).
    pub fn birth_place(&self) -> &str {
        std::str::from_utf8(&self.0[11..15]).unwrap_or_default()
    }

    /// Two-digit year, month (1–12) and day of month of birth.
    pub fn birth_yy_mm_dd(&self) -> (u8, u8, u8) {
        let d = |i: usize| self.0[i] - b'0';
        let month = MONTHS.iter().position(|&m| m == self.0[8]).unwrap_or(0) as u8 + 1;
        let day = (d(9) * 10 + d(10)) % 40;
        (d(6) * 10 + d(7), month, day)
    }

    /// The omocodia variant with the `level` rightmost digit positions replaced by letters
    /// (0 = canonical, 7 = every digit replaced), with its check letter.
    pub fn omocodia_variant(&self, level: usize) -> String {
        let mut v = self.0;
        for &i in DIGIT_POSITIONS.iter().rev().take(level) {
            v[i] = OMOCODIA[usize::from(v[i] - b'0')];
        }
        v[15] = check_letter(&v[..15]);
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// Builds a code from its parts (for synthetic data). `surname3` and `name3` are the three
/// consonant/vowel letters the rules derive; `place` a Belfiore code.
pub fn compose(
    surname3: &str,
    name3: &str,
    yy: u8,
    month: u8,
    day: u8,
    sex: Sex,
    place: &str,
) -> String {
    let day = match sex {
        Sex::M => day,
        Sex::F => day + 40,
    };
    let mut s = format!(
        "{surname3}{name3}{yy:02}{}{day:02}{place}",
        MONTHS[usize::from(month.clamp(1, 12) - 1)] as char
    );
    let check = check_letter(s.as_bytes());
    s.push(check as char);
    s
}

/// The three letters for a surname: consonants, then vowels, then `X` (DM 23/12/1976).
pub fn surname_letters(surname: &str) -> String {
    let (cons, vows) = split_letters(surname);
    cons.chain(vows)
        .chain(std::iter::repeat('X'))
        .take(3)
        .collect()
}

/// The three letters for a given name: with four or more consonants, the 1st, 3rd and 4th;
/// otherwise as for surnames.
pub fn name_letters(name: &str) -> String {
    let (cons, vows) = split_letters(name);
    let cons: Vec<char> = cons.collect();
    if cons.len() >= 4 {
        [cons[0], cons[2], cons[3]].iter().collect()
    } else {
        cons.into_iter()
            .chain(vows)
            .chain(std::iter::repeat('X'))
            .take(3)
            .collect()
    }
}

fn split_letters(
    s: &str,
) -> (
    impl Iterator<Item = char> + '_,
    impl Iterator<Item = char> + '_,
) {
    let letters = move || {
        s.chars()
            .map(|c| c.to_ascii_uppercase())
            .filter(char::is_ascii_uppercase)
    };
    let vowel = |c: &char| "AEIOU".contains(*c);
    (
        letters().filter(move |c| !vowel(c)),
        letters().filter(vowel),
    )
}

#[cfg(test)]
mod tests;
