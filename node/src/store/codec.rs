//! Compact binary encoding of stored records. Internal to the store: nothing here crosses the
//! network. Decoding re-parses every field through the domain types, so a damaged value is
//! reported as corruption, never trusted.

use time::Date;

use crate::domain::cf::{CodiceFiscale, Sex};
use crate::domain::places::{Citizenship, ComuneCode};
use crate::domain::records::{EndReason, Permit, PermitKind, PermitNumber, PermitStatus, Resident};

/// A value that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("stored value does not decode: {0}")]
pub struct Corrupt(pub String);

#[derive(Default)]
pub struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn str(&mut self, s: &str) {
        let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
    }
    fn date(&mut self, d: Date) {
        self.0.extend_from_slice(&d.to_julian_day().to_be_bytes());
    }
    fn opt_date(&mut self, d: Option<Date>) {
        match d {
            Some(d) => {
                self.u8(1);
                self.date(d);
            }
            None => self.u8(0),
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        if self.0.len() < n {
            return Err(Corrupt("truncated".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Corrupt> {
        Ok(self.take(1)?[0])
    }
    fn str(&mut self) -> Result<&'a str, Corrupt> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        std::str::from_utf8(self.take(len)?).map_err(|_| Corrupt("invalid UTF-8".into()))
    }
    fn date(&mut self) -> Result<Date, Corrupt> {
        let b = self.take(4)?;
        Date::from_julian_day(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .map_err(|_| Corrupt("date out of range".into()))
    }
    fn opt_date(&mut self) -> Result<Option<Date>, Corrupt> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.date().map(Some),
            t => Err(Corrupt(format!("bad option tag {t}"))),
        }
    }
    fn cf(&mut self) -> Result<CodiceFiscale, Corrupt> {
        let b = self.take(16)?;
        cf_from_key(b)
    }
    fn end(&self) -> Result<(), Corrupt> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Corrupt("trailing bytes".into()))
        }
    }
}

pub fn cf_from_key(b: &[u8]) -> Result<CodiceFiscale, Corrupt> {
    let s = std::str::from_utf8(b).map_err(|_| Corrupt("codice fiscale not ASCII".into()))?;
    CodiceFiscale::parse(s).map_err(|e| Corrupt(e.to_string()))
}

fn comune(s: &str) -> Result<ComuneCode, Corrupt> {
    ComuneCode::parse(s).map_err(|e| Corrupt(e.to_string()))
}

const END_REASONS: [EndReason; 4] = [
    EndReason::Emigrated,
    EndReason::Deceased,
    EndReason::Untraceable,
    EndReason::NotRenewed,
];
const STATUSES: [PermitStatus; 3] = [
    PermitStatus::Valid,
    PermitStatus::RenewalPending,
    PermitStatus::Revoked,
];

fn index_of<T: PartialEq>(all: &[T], v: &T) -> u8 {
    all.iter().position(|x| x == v).unwrap_or(0) as u8
}

fn from_index<T: Copy>(all: &[T], i: u8, what: &str) -> Result<T, Corrupt> {
    all.get(usize::from(i))
        .copied()
        .ok_or_else(|| Corrupt(format!("bad {what} {i}")))
}

/// Encodes a resident (the codice fiscale is in the key).
pub fn encode_resident(r: &Resident) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(&r.surname);
    w.str(&r.name);
    w.u8(match r.sex {
        Sex::M => 0,
        Sex::F => 1,
    });
    w.date(r.birth_date);
    w.str(&r.birth_place);
    w.str(r.citizenship.as_str());
    w.str(r.comune.as_str());
    w.str(&r.address);
    w.str(&r.family_id);
    w.date(r.residence_start);
    w.opt_date(r.residence_end);
    match r.end_reason {
        Some(reason) => {
            w.u8(1);
            w.u8(index_of(&END_REASONS, &reason));
        }
        None => w.u8(0),
    }
    w.finish()
}

pub fn decode_resident(cf: CodiceFiscale, value: &[u8]) -> Result<Resident, Corrupt> {
    let mut r = Reader(value);
    let resident = Resident {
        cf,
        surname: r.str()?.to_owned(),
        name: r.str()?.to_owned(),
        sex: match r.u8()? {
            0 => Sex::M,
            1 => Sex::F,
            t => return Err(Corrupt(format!("bad sex {t}"))),
        },
        birth_date: r.date()?,
        birth_place: r.str()?.to_owned(),
        citizenship: Citizenship::parse(r.str()?).map_err(|e| Corrupt(e.to_string()))?,
        comune: comune(r.str()?)?,
        address: r.str()?.to_owned(),
        family_id: r.str()?.to_owned(),
        residence_start: r.date()?,
        residence_end: r.opt_date()?,
        end_reason: match r.u8()? {
            0 => None,
            1 => Some(from_index(&END_REASONS, r.u8()?, "end reason")?),
            t => return Err(Corrupt(format!("bad option tag {t}"))),
        },
    };
    r.end()?;
    Ok(resident)
}

/// Encodes a permit (the number is in the key).
pub fn encode_permit(p: &Permit) -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes(p.holder.as_bytes());
    w.u8(index_of(&PermitKind::ALL, &p.kind));
    w.date(p.issued);
    w.opt_date(p.expires);
    w.u8(index_of(&STATUSES, &p.status));
    w.opt_date(p.renewal_receipt);
    w.str(p.comune.as_str());
    w.u8(u8::try_from(p.minors.len()).unwrap_or(u8::MAX));
    for m in p.minors.iter().take(usize::from(u8::MAX)) {
        w.bytes(m.as_bytes());
    }
    w.finish()
}

pub fn decode_permit(number: PermitNumber, value: &[u8]) -> Result<Permit, Corrupt> {
    let mut r = Reader(value);
    let holder = r.cf()?;
    let kind = from_index(&PermitKind::ALL, r.u8()?, "permit type")?;
    let issued = r.date()?;
    let expires = r.opt_date()?;
    let status = from_index(&STATUSES, r.u8()?, "status")?;
    let renewal_receipt = r.opt_date()?;
    let comune = comune(r.str()?)?;
    let n = r.u8()?;
    let minors = (0..n).map(|_| r.cf()).collect::<Result<Vec<_>, _>>()?;
    r.end()?;
    Ok(Permit {
        number,
        holder,
        kind,
        issued,
        expires,
        status,
        renewal_receipt,
        comune,
        minors,
    })
}
