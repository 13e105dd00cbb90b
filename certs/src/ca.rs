//! The federation CA: one per federation, run by the Provincia.
//!
//! A CA directory holds:
//!
//! | file         | what                                                             |
//! |--------------|------------------------------------------------------------------|
//! | `ca.crt`     | the CA certificate (ECDSA P-256), the federation's trust anchor  |
//! | `ca.key`     | its private key, mode 0600                                       |
//! | `crl.pem`    | the current CRL                                                  |
//! | `index.json` | trust domain, CRL number, every certificate issued and revoked   |
//!
//! Every file is written atomically, so a crash leaves either the old or the new version.
//! The CA never writes an agency's keys anywhere but the output directory it is given.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, CrlNumber, ExtendedKeyUsage, KeyUsage,
    SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{
    X509Builder, X509Crl, X509CrlBuilder, X509NameBuilder, X509RevokedBuilder, X509,
};
use serde::{Deserialize, Serialize};

use crate::fsutil::{self, PRIVATE_MODE, PUBLIC_MODE};
use crate::id::{AgencyId, OperatorId, OperatorName, SpiffeId, TrustDomain};

/// How long a CA certificate is valid.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Default validity of agency certificates.
pub const DEFAULT_LEAF_DAYS: u32 = 365;
/// How far ahead a CRL's nextUpdate is set. Nodes keep using a CRL past its nextUpdate (an
/// expired CRL must not lock the whole federation out), but `attesta ca crl` should refresh it
/// well before.
const CRL_VALIDITY: Duration = Duration::from_secs(30 * 86_400);

/// Errors of the CA.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("a CA already exists in {0}")]
    AlreadyExists(PathBuf),
    #[error("no CA in {dir}: {path} is missing")]
    Missing { dir: PathBuf, path: PathBuf },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} already exists; refusing to overwrite an agency's keys")]
    WouldOverwrite { path: PathBuf },
    #[error("no unrevoked certificate was issued to agency {0}")]
    NothingToRevoke(AgencyId),
    #[error("no unrevoked certificate was issued to operator {1} of agency {0}")]
    NothingToRevokeOperator(AgencyId, OperatorName),
    #[error("invalid certificate request: {0}")]
    Request(String),
    #[error("openssl")]
    Openssl(#[from] openssl::error::ErrorStack),
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeafKind {
    /// TLS client and server: ECDSA P-256, EKU serverAuth + clientAuth.
    Auth,
    /// Signatures on attestations, checkpoints and manifests: Ed25519, digitalSignature +
    /// nonRepudiation, no TLS EKU.
    Sign,
    /// A person of an agency's staff signing in to its console: ECDSA P-256, EKU clientAuth
    /// only, the operator's SPIFFE id. Opens no node's API port.
    Operator,
}

/// Everything that goes into one leaf certificate. [`LeafSpec::auth`] and [`LeafSpec::sign`]
/// give the standard profiles; tests change fields to make the certificates a node must refuse.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    pub kind: LeafKind,
    /// The agency the certificate is recorded under in the CA index (and revoked with).
    pub agency: AgencyId,
    /// For an operator certificate, the person (recorded in the index, revoked by name).
    pub operator: Option<OperatorName>,
    /// URI SANs. Standard profiles carry exactly one: the agency's SPIFFE id.
    pub uris: Vec<String>,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl LeafSpec {
    fn standard(kind: LeafKind, td: &TrustDomain, agency: &AgencyId, days: u32) -> Self {
        let now = SystemTime::now();
        Self {
            kind,
            agency: agency.clone(),
            operator: None,
            uris: vec![SpiffeId::new(td.clone(), agency.clone()).to_string()],
            dns: Vec::new(),
            ips: Vec::new(),
            // A little slack for clocks that run behind.
            not_before: now - Duration::from_secs(300),
            not_after: now + Duration::from_secs(u64::from(days) * 86_400),
        }
    }

    /// The TLS certificate profile, valid for `days`, with the node's DNS names and addresses.
    pub fn auth(
        td: &TrustDomain,
        agency: &AgencyId,
        dns: Vec<String>,
        ips: Vec<IpAddr>,
        days: u32,
    ) -> Self {
        Self {
            dns,
            ips,
            ..Self::standard(LeafKind::Auth, td, agency, days)
        }
    }

    /// The signing certificate profile, valid for `days`.
    pub fn sign(td: &TrustDomain, agency: &AgencyId, days: u32) -> Self {
        Self::standard(LeafKind::Sign, td, agency, days)
    }

    /// The operator certificate profile: `operator` of `agency`, valid for `days`.
    pub fn operator(
        td: &TrustDomain,
        agency: &AgencyId,
        operator: &OperatorName,
        days: u32,
    ) -> Self {
        let id = OperatorId {
            trust_domain: td.clone(),
            agency: agency.clone(),
            operator: operator.clone(),
        };
        Self {
            operator: Some(operator.clone()),
            uris: vec![id.to_string()],
            ..Self::standard(LeafKind::Operator, td, agency, days)
        }
    }
}

/// A freshly issued certificate and its private key, both PEM.
#[derive(Clone)]
pub struct IssuedLeaf {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// Serial number, lower-case hex.
    pub serial: String,
}

impl std::fmt::Debug for IssuedLeaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedLeaf")
            .field("serial", &self.serial)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// One line of the CA's record of what it issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedRecord {
    pub serial: String,
    pub agency: String,
    pub kind: LeafKind,
    /// The person, for an operator certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Seconds since the Unix epoch.
    pub not_after: i64,
    /// Seconds since the Unix epoch; absent while the certificate is good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    trust_domain: String,
    crl_number: u64,
    certificates: Vec<IssuedRecord>,
}

/// A CA directory, opened.
pub struct Ca {
    dir: PathBuf,
    trust_domain: TrustDomain,
    cert: X509,
    key: PKey<Private>,
    index: Index,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

/// File names inside a CA directory.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const CRL: &str = "crl.pem";
const INDEX: &str = "index.json";

impl Ca {
    /// Creates a new CA in `dir` (created if absent). Fails if `dir` already holds one.
    pub fn init(dir: &Path, trust_domain: TrustDomain) -> Result<Self, CaError> {
        if dir.join(CA_CERT).exists() || dir.join(CA_KEY).exists() {
            return Err(CaError::AlreadyExists(dir.to_owned()));
        }
        fsutil::ensure_dir(dir).map_err(|source| CaError::Write {
            path: dir.to_owned(),
            source,
        })?;

        // P-256, like the agency keys: every handshake verifies a CA signature, P-256 is several
        // times cheaper to verify than P-384, and a CA stronger than its leaves buys nothing.
        let key = ec_key(Nid::X9_62_PRIME256V1)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, trust_domain.as_str())?;
        name.append_entry_by_nid(Nid::COMMONNAME, "attesta federation CA")?;
        let name = name.build();

        let now = SystemTime::now();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        b.set_serial_number(&*random_serial()?)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        b.set_not_before(&*asn1_time(now - Duration::from_secs(300))?)?;
        b.set_not_after(&*asn1_time(now + CA_VALIDITY)?)?;
        b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        b.sign(&key, MessageDigest::sha256())?;
        let cert = b.build();

        let ca = Self {
            dir: dir.to_owned(),
            trust_domain: trust_domain.clone(),
            cert,
            key,
            index: Index {
                trust_domain: trust_domain.to_string(),
                crl_number: 0,
                certificates: Vec::new(),
            },
        };
        // Key first: a CA certificate without its key would be useless.
        ca.write(CA_KEY, &ca.key.private_key_to_pem_pkcs8()?, PRIVATE_MODE)?;
        ca.write(CA_CERT, &ca.cert.to_pem()?, PUBLIC_MODE)?;
        let mut ca = ca;
        ca.write_crl()?;
        Ok(ca)
    }

    /// Opens an existing CA directory.
    pub fn open(dir: &Path) -> Result<Self, CaError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    CaError::Missing {
                        dir: dir.to_owned(),
                        path: path.clone(),
                    }
                } else {
                    CaError::Read { path, source }
                }
            })
        };
        let corrupt = |name: &str, reason: String| CaError::Corrupt {
            path: dir.join(name),
            reason,
        };
        let cert = X509::from_pem(&read(CA_CERT)?)
            .map_err(|e| corrupt(CA_CERT, format!("not a PEM certificate ({e})")))?;
        let key = PKey::private_key_from_pem(&read(CA_KEY)?)
            .map_err(|e| corrupt(CA_KEY, format!("not a PEM private key ({e})")))?;
        if !cert.public_key()?.public_eq(&key) {
            return Err(corrupt(CA_KEY, "key does not match ca.crt".into()));
        }
        let index: Index =
            serde_json::from_slice(&read(INDEX)?).map_err(|e| corrupt(INDEX, e.to_string()))?;
        let trust_domain =
            TrustDomain::new(&index.trust_domain).map_err(|e| corrupt(INDEX, e.to_string()))?;
        Ok(Self {
            dir: dir.to_owned(),
            trust_domain,
            cert,
            key,
            index,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    pub fn cert_pem(&self) -> Result<Vec<u8>, CaError> {
        Ok(self.cert.to_pem()?)
    }

    /// Everything the CA has issued, in order.
    pub fn issued(&self) -> &[IssuedRecord] {
        &self.index.certificates
    }

    /// Issues one leaf certificate as described by `spec` and records it in the index.
    pub fn issue_leaf(&mut self, spec: &LeafSpec) -> Result<IssuedLeaf, CaError> {
        if spec.not_after <= spec.not_before {
            return Err(CaError::Request(
                "not_after must be later than not_before".into(),
            ));
        }
        let key = match spec.kind {
            LeafKind::Auth | LeafKind::Operator => ec_key(Nid::X9_62_PRIME256V1)?,
            LeafKind::Sign => PKey::generate_ed25519()?,
        };
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, self.trust_domain.as_str())?;
        if let Some(op) = &spec.operator {
            // What a browser's certificate picker shows: the person, then the agency.
            name.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, spec.agency.as_str())?;
            name.append_entry_by_nid(Nid::COMMONNAME, op.as_str())?;
        } else {
            name.append_entry_by_nid(Nid::COMMONNAME, spec.agency.as_str())?;
        }
        let name = name.build();

        let serial = random_serial()?;
        let serial_hex = serial.to_bn()?.to_hex_str()?.to_ascii_lowercase();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_pubkey(&key)?;
        b.set_not_before(&*asn1_time(spec.not_before)?)?;
        b.set_not_after(&*asn1_time(spec.not_after)?)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        match spec.kind {
            LeafKind::Auth => {
                b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
                b.append_extension(
                    ExtendedKeyUsage::new()
                        .server_auth()
                        .client_auth()
                        .build()?,
                )?;
            }
            LeafKind::Sign => {
                b.append_extension(
                    KeyUsage::new()
                        .critical()
                        .digital_signature()
                        .non_repudiation()
                        .build()?,
                )?;
            }
            LeafKind::Operator => {
                b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
                b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
            }
        }
        if !(spec.uris.is_empty() && spec.dns.is_empty() && spec.ips.is_empty()) {
            let mut san = SubjectAlternativeName::new();
            for uri in &spec.uris {
                san.uri(uri);
            }
            for dns in &spec.dns {
                san.dns(dns);
            }
            for ip in &spec.ips {
                san.ip(&ip.to_string());
            }
            let ctx = b.x509v3_context(Some(&self.cert), None);
            let ext = san.build(&ctx)?;
            b.append_extension(ext)?;
        }
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(aki)?;
        b.sign(&self.key, MessageDigest::sha256())?;
        let cert = b.build();

        self.index.certificates.push(IssuedRecord {
            serial: serial_hex.clone(),
            agency: spec.agency.to_string(),
            kind: spec.kind,
            operator: spec.operator.as_ref().map(|o| o.to_string()),
            not_after: unix(spec.not_after),
            revoked_at: None,
        });
        self.write_index()?;
        Ok(IssuedLeaf {
            cert_pem: cert.to_pem()?,
            key_pem: key.private_key_to_pem_pkcs8()?,
            serial: serial_hex,
        })
    }

    /// Issues an agency's auth and sign certificates into `out` as `auth.crt`, `auth.key`,
    /// `sign.crt` and `sign.key` (keys 0600). Refuses to overwrite existing files.
    pub fn issue_agency(
        &mut self,
        agency: &AgencyId,
        dns: Vec<String>,
        ips: Vec<IpAddr>,
        days: u32,
        out: &Path,
    ) -> Result<AgencyFiles, CaError> {
        let files = AgencyFiles::in_dir(out);
        for path in files.all() {
            if path.exists() {
                return Err(CaError::WouldOverwrite {
                    path: path.to_owned(),
                });
            }
        }
        fsutil::ensure_dir(out).map_err(|source| CaError::Write {
            path: out.to_owned(),
            source,
        })?;
        let td = self.trust_domain.clone();
        let auth = self.issue_leaf(&LeafSpec::auth(&td, agency, dns, ips, days))?;
        let sign = self.issue_leaf(&LeafSpec::sign(&td, agency, days))?;
        write_file(&files.auth_key, &auth.key_pem, PRIVATE_MODE)?;
        write_file(&files.auth_cert, &auth.cert_pem, PUBLIC_MODE)?;
        write_file(&files.sign_key, &sign.key_pem, PRIVATE_MODE)?;
        write_file(&files.sign_cert, &sign.cert_pem, PUBLIC_MODE)?;
        Ok(files)
    }

    /// Issues operator `operator` of `agency` a certificate into `out` as `<operator>.crt`,
    /// `<operator>.key` (0600) and `<operator>.p12` (0600: certificate, key and the CA
    /// certificate, for a browser, encrypted with `password`). Refuses to overwrite.
    pub fn issue_operator(
        &mut self,
        agency: &AgencyId,
        operator: &OperatorName,
        days: u32,
        password: &str,
        out: &Path,
    ) -> Result<OperatorFiles, CaError> {
        let files = OperatorFiles::in_dir(out, operator);
        for path in [&files.cert, &files.key, &files.p12] {
            if path.exists() {
                return Err(CaError::WouldOverwrite { path: path.clone() });
            }
        }
        fsutil::ensure_dir(out).map_err(|source| CaError::Write {
            path: out.to_owned(),
            source,
        })?;
        let td = self.trust_domain.clone();
        let leaf = self.issue_leaf(&LeafSpec::operator(&td, agency, operator, days))?;
        let cert = X509::from_pem(&leaf.cert_pem)?;
        let key = PKey::private_key_from_pem(&leaf.key_pem)?;
        let mut chain = openssl::stack::Stack::new()?;
        chain.push(self.cert.clone())?;
        // OpenSSL 3's defaults: AES-256-CBC with PBKDF2, an HMAC-SHA256 MAC.
        let p12 = openssl::pkcs12::Pkcs12::builder()
            .name(&format!("{operator} ({agency})"))
            .pkey(&key)
            .cert(&cert)
            .ca(chain)
            .build2(password)?;
        write_file(&files.key, &leaf.key_pem, PRIVATE_MODE)?;
        write_file(&files.cert, &leaf.cert_pem, PUBLIC_MODE)?;
        write_file(&files.p12, &p12.to_der()?, PRIVATE_MODE)?;
        Ok(files)
    }

    /// Revokes every unrevoked certificate of operator `operator` of `agency` and writes a
    /// fresh CRL. Returns the serials revoked.
    pub fn revoke_operator(
        &mut self,
        agency: &AgencyId,
        operator: &OperatorName,
    ) -> Result<Vec<String>, CaError> {
        self.revoke_where(|r| {
            r.agency == agency.as_str() && r.operator.as_deref() == Some(operator.as_str())
        })?
        .ok_or_else(|| CaError::NothingToRevokeOperator(agency.clone(), operator.clone()))
    }

    /// Revokes every unrevoked certificate of `agency` (its operators' too) and writes a fresh
    /// CRL. Returns the serials revoked.
    pub fn revoke_agency(&mut self, agency: &AgencyId) -> Result<Vec<String>, CaError> {
        self.revoke_where(|r| r.agency == agency.as_str())?
            .ok_or_else(|| CaError::NothingToRevoke(agency.clone()))
    }

    /// Revokes the unrevoked certificates `which` picks and writes a fresh CRL; `None` when
    /// there were none.
    fn revoke_where(
        &mut self,
        which: impl Fn(&IssuedRecord) -> bool,
    ) -> Result<Option<Vec<String>>, CaError> {
        let now = unix(SystemTime::now());
        let mut revoked = Vec::new();
        for rec in &mut self.index.certificates {
            if which(rec) && rec.revoked_at.is_none() {
                rec.revoked_at = Some(now);
                revoked.push(rec.serial.clone());
            }
        }
        if revoked.is_empty() {
            return Ok(None);
        }
        self.write_index()?;
        self.write_crl()?;
        Ok(Some(revoked))
    }

    /// Signs and writes a new CRL (next CRL number) listing every revoked certificate, expired
    /// ones included: a signed thing is checked at the time it claims, so a revoked key whose
    /// certificate has expired must still be known as revoked (RFC 5280 §3.3 lets a CRL drop
    /// expired certificates; attesta does not).
    pub fn write_crl(&mut self) -> Result<X509Crl, CaError> {
        let now = SystemTime::now();
        self.index.crl_number += 1;
        let mut b = X509CrlBuilder::new()?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_last_update(&*asn1_time(now)?)?;
        b.set_next_update(&*asn1_time(now + CRL_VALIDITY)?)?;
        let ctx_holder = X509Builder::new()?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&ctx_holder.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(aki)?;
        b.append_extension(
            CrlNumber::new(BigNum::from_dec_str(&self.index.crl_number.to_string())?)?.build()?,
        )?;
        for rec in &self.index.certificates {
            let Some(at) = rec.revoked_at else { continue };
            let mut r = X509RevokedBuilder::new()?;
            r.set_serial_number(&*BigNum::from_hex_str(&rec.serial)?.to_asn1_integer()?)?;
            r.set_revocation_date(&*Asn1Time::from_unix(at)?)?;
            b.add_revoked(r.build())?;
        }
        b.sign(&self.key, MessageDigest::sha256())?;
        let crl = b.build()?;
        // Index first: if we crash between the two writes, the next CRL still gets a fresh number.
        self.write_index()?;
        self.write(CRL, &crl.to_pem()?, PUBLIC_MODE)?;
        Ok(crl)
    }

    fn write_index(&self) -> Result<(), CaError> {
        let json = serde_json::to_vec_pretty(&self.index).map_err(|e| CaError::Corrupt {
            path: self.dir.join(INDEX),
            reason: e.to_string(),
        })?;
        self.write(INDEX, &json, PUBLIC_MODE)
    }

    fn write(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), CaError> {
        write_file(&self.dir.join(name), bytes, mode)
    }
}

/// The files of an operator's identity: `<name>.crt`, `<name>.key`, `<name>.p12`.
#[derive(Debug, Clone)]
pub struct OperatorFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub p12: PathBuf,
}

impl OperatorFiles {
    pub fn in_dir(dir: &Path, operator: &OperatorName) -> Self {
        Self {
            cert: dir.join(format!("{operator}.crt")),
            key: dir.join(format!("{operator}.key")),
            p12: dir.join(format!("{operator}.p12")),
        }
    }
}

/// The four files of an agency's identity.
#[derive(Debug, Clone)]
pub struct AgencyFiles {
    pub auth_cert: PathBuf,
    pub auth_key: PathBuf,
    pub sign_cert: PathBuf,
    pub sign_key: PathBuf,
}

impl AgencyFiles {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            auth_cert: dir.join("auth.crt"),
            auth_key: dir.join("auth.key"),
            sign_cert: dir.join("sign.crt"),
            sign_key: dir.join("sign.key"),
        }
    }

    pub fn all(&self) -> [&Path; 4] {
        [
            &self.auth_cert,
            &self.auth_key,
            &self.sign_cert,
            &self.sign_key,
        ]
    }
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    fsutil::write_atomic(path, bytes, mode).map_err(|source| CaError::Write {
        path: path.to_owned(),
        source,
    })
}

/// A positive random serial of 127 bits (RFC 5280 allows 20 octets; CA/B asks for ≥ 64 random
/// bits).
fn random_serial() -> Result<Asn1Integer, openssl::error::ErrorStack> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::ONE, false)?;
    bn.to_asn1_integer()
}

fn ec_key(curve: Nid) -> Result<PKey<Private>, openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(curve)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn asn1_time(t: SystemTime) -> Result<Asn1Time, openssl::error::ErrorStack> {
    Asn1Time::from_unix(unix(t))
}

#[cfg(test)]
mod tests;
