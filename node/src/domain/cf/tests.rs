use proptest::prelude::*;

use super::*;

fn parse(s: &str) -> Result<CodiceFiscale, CfError> {
    CodiceFiscale::parse(s)
}

/// Vectors computed by hand from the DM 23/12/1976 tables (and cross-checked with an
/// independent implementation).
#[test]
fn known_valid_codes_parse_to_their_canonical_form() {
    let cases: &[(&str, &str)] = &[
        // The textbook example: Mario Rossi, 10 Dec 1985, Agrigento (A562).
        ("RSSMRA85T10A562S", "RSSMRA85T10A562S"),
        // Lower case and spaces are normalised.
        ("rssmra85t10a562s", "RSSMRA85T10A562S"),
        ("RSS MRA 85T10 A562S", "RSSMRA85T10A562S"),
        // A woman (day 01 + 40) born in Pesaro (G479).
        ("BNCLRA90A41G479C", "BNCLRA90A41G479C"),
        // Born in Romania (Z129).
        ("PPPGPP80M01Z129A", "PPPGPP80M01Z129A"),
        // Omocodia: the rightmost digit replaced (2 -> N), check letter recomputed.
        ("RSSMRA85T10A56NH", "RSSMRA85T10A562S"),
        // Omocodia at the day's second digit only (0 -> L): a valid variant too.
        ("RSSMRA85T1LA562V", "RSSMRA85T10A562S"),
        // Every digit replaced.
        ("RSSMRAURTMLARSNL", "RSSMRA85T10A562S"),
    ];
    for (input, canonical) in cases {
        let cf = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(cf.canonical(), *canonical, "{input}");
    }
}

#[test]
fn invalid_codes_are_refused_with_the_reason() {
    let cases: &[(&str, CfError)] = &[
        ("", CfError::Empty),
        ("RSSMRA85T10A562", CfError::Length(15)),
        ("RSSMRA85T10A562SX", CfError::Length(17)),
        ("RSSMRA85T10A562-", CfError::Character { pos: 16, ch: '-' }),
        ("RSSMRÀ85T10A562S", CfError::Character { pos: 6, ch: 'À' }),
        (
            "RSSMR185T10A562S",
            CfError::ExpectedLetter { pos: 6, ch: '1' },
        ),
        (
            "RSSMRA8AT10A562S",
            CfError::ExpectedDigit { pos: 8, ch: 'A' },
        ),
        (
            "RSSMRA85T10A562T",
            CfError::CheckLetter {
                expected: 'S',
                found: 'T',
            },
        ),
        // Valid check letters, impossible contents.
        ("RSSMRA85F10A562R", CfError::Month('F')),
        ("RSSMRA85T35A562G", CfError::Day(35)),
        ("RSSMRA85T00A562R", CfError::Day(0)),
        ("RSSMRA85T72A562C", CfError::Day(72)),
        (
            "RSSMRA85B30A562G",
            CfError::DayOfMonth { day: 30, month: 2 },
        ),
        ("RSSMRA85T10Z999S", CfError::UnknownState("Z999".into())),
        ("RSSMRA85T10N562F", CfError::Place("N562".into())),
    ];
    for (input, expected) in cases {
        assert_eq!(parse(input).as_ref().err(), Some(expected), "{input}");
    }
}

#[test]
fn sex_place_and_birth_date_are_read_from_the_code() {
    let man = parse("RSSMRA85T10A562S").unwrap();
    assert_eq!(man.sex(), Sex::M);
    assert_eq!(man.birth_place(), "A562");
    assert_eq!(man.birth_yy_mm_dd(), (85, 12, 10));
    let woman = parse("BNCLRA90A41G479C").unwrap();
    assert_eq!(woman.sex(), Sex::F);
    assert_eq!(woman.birth_yy_mm_dd(), (90, 1, 1));
}

#[test]
fn letters_for_names_follow_the_decree() {
    assert_eq!(surname_letters("Rossi"), "RSS");
    assert_eq!(surname_letters("Fo"), "FOX");
    assert_eq!(surname_letters("Bianchi"), "BNC");
    assert_eq!(name_letters("Mario"), "MRA");
    // Four or more consonants: 1st, 3rd and 4th.
    assert_eq!(name_letters("Gianfranco"), "GFR");
    assert_eq!(name_letters("Laura"), "LRA");
    assert_eq!(
        compose("RSS", "MRA", 85, 12, 10, Sex::M, "A562"),
        "RSSMRA85T10A562S"
    );
}

#[test]
fn debug_output_does_not_reveal_the_code() {
    let cf = parse("RSSMRA85T10A562S").unwrap();
    assert!(!format!("{cf:?}").contains("RSS"));
}

fn code_strategy() -> impl Strategy<Value = String> {
    let letters = "[A-Z]{3}";
    let places = prop_oneof![
        Just("G479".to_owned()),
        Just("L500".to_owned()),
        Just("A562".to_owned()),
        Just("Z129".to_owned()),
        Just("Z140".to_owned()),
        Just("Z330".to_owned()),
        Just("Z118".to_owned()), // Yugoslavia, no longer a state
        Just("C830".to_owned()), // Colbordolo, merged in 2014
    ];
    (
        letters,
        letters,
        0u8..100,
        1u8..=12,
        1u8..=28,
        any::<bool>(),
        places,
        0usize..=7,
    )
        .prop_map(|(s, n, yy, m, d, female, place, level)| {
            let sex = if female { Sex::F } else { Sex::M };
            let code = compose(&s, &n, yy, m, d, sex, &place);
            CodiceFiscale::parse(&code)
                .expect("composed codes are valid")
                .omocodia_variant(level)
        })
}

proptest! {
    /// Every generated code (any omocodia level) validates, and every single-character
    /// mutation of it is either refused or another spelling of the same person.
    #[test]
    fn generated_codes_validate_and_mutations_are_caught(code in code_strategy()) {
        let cf = CodiceFiscale::parse(&code).unwrap();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        for pos in 0..16 {
            for &c in alphabet {
                let mut bytes = code.clone().into_bytes();
                if bytes[pos] == c {
                    continue;
                }
                bytes[pos] = c;
                let mutated = String::from_utf8(bytes).unwrap();
                if let Ok(other) = CodiceFiscale::parse(&mutated) {
                    prop_assert_eq!(other.canonical(), cf.canonical(), "mutation {} accepted", mutated);
                }
            }
        }
    }

    /// All 128 omocodia variants find the same person.
    #[test]
    fn every_omocodia_variant_has_one_canonical_key(code in code_strategy()) {
        let cf = CodiceFiscale::parse(&code).unwrap();
        let digits: Vec<usize> = DIGIT_POSITIONS.to_vec();
        let canonical = cf.as_bytes();
        for mask in 0u32..128 {
            let mut v = *canonical;
            for (bit, &i) in digits.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    v[i] = OMOCODIA[usize::from(v[i] - b'0')];
                }
            }
            v[15] = check_letter(&v[..15]);
            let variant = std::str::from_utf8(&v).unwrap();
            let parsed = CodiceFiscale::parse(variant).unwrap();
            prop_assert_eq!(parsed.canonical(), cf.canonical());
        }
    }
}

#[test]
fn people_born_in_states_and_comuni_that_no_longer_exist_are_accepted() {
    // Yugoslavia, the USSR, Czechoslovakia, East Germany, Serbia and Montenegro, South Yemen;
    // Colbordolo and Sant'Angelo in Lizzola (merged into Vallefoglia in 2014).
    for (place, yy) in [
        ("Z118", 75),
        ("Z135", 80),
        ("Z105", 70),
        ("Z111", 65),
        ("Z157", 4),
        ("Z250", 85),
        ("C830", 60),
        ("I285", 90),
    ] {
        for sex in [Sex::M, Sex::F] {
            let code = compose("KVL", "LSN", yy, 3, 14, sex, place);
            let cf = parse(&code).unwrap_or_else(|e| panic!("{code}: {e}"));
            assert_eq!(cf.birth_place(), place);
            // Omocodia variants of them too.
            assert_eq!(parse(&cf.omocodia_variant(7)).unwrap(), cf);
        }
    }
    // Places that never existed are still refused, each with its reason.
    let never = compose("KVL", "LSN", 75, 3, 14, Sex::M, "Z998");
    assert_eq!(parse(&never), Err(CfError::UnknownState("Z998".into())));
    let never = compose("KVL", "LSN", 75, 3, 14, Sex::M, "M999");
    assert_eq!(parse(&never), Err(CfError::UnknownComune("M999".into())));
    assert_eq!(
        CfError::UnknownComune("M999".into()).to_string(),
        "place code M999 is not the code of any Italian comune since 1861"
    );
}
