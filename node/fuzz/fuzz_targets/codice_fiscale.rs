#![no_main]
//! The codice fiscale parser: never panics; what it accepts is canonical, and every omocodia
//! variant of it is the same person.

use attesta::domain::cf::CodiceFiscale;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cf) = CodiceFiscale::parse(text) {
        let again = CodiceFiscale::parse(cf.canonical()).expect("the canonical form parses");
        assert_eq!(again, cf);
        for level in 0..=7 {
            let variant = cf.omocodia_variant(level);
            assert_eq!(CodiceFiscale::parse(&variant).expect("variants parse"), cf);
        }
        let _ = (cf.sex(), cf.birth_place(), cf.birth_yy_mm_dd());
    }
});
