//! The node's database: RocksDB, and the only module that names it.
//!
//! Column families, one concern each:
//!
//! | CF                 | key                                        | value            |
//! |--------------------|--------------------------------------------|------------------|
//! | `meta`             | `<dataset>/info`                            | generation, rows, as_of, imported_at |
//! | `residents`        | gen · cf                                   | resident         |
//! | `res_by_comune`    | gen · comune · cf                          | –                |
//! | `res_by_family`    | gen · family id · 0x00 · cf                | –                |
//! | `permits`          | gen · permit number                        | permit           |
//! | `permit_by_person` | gen · cf (holder or minor) · permit number | –                |
//! | `permit_by_expiry` | gen · comune · expiry (YYYYMMDD) · number  | –                |
//! | `audit_*`, `witness` | the audit log and the witness state: see [`audit`](self::audit) |  |
//!
//! **Scopes** keep the agencies of one node apart in one database (a service centre hosting
//! its tenants, DESIGN §7): every key of a tenant starts with `0xff · agency · 0x00`
//! ([`Store::scoped`]); the node's own keys have no prefix and never start with `0xff`
//! (generations, indexes and levels start with a small number, meta keys with a letter; a
//! blinded subject may, but is 32 random bytes that no tenant's prefix and subject can
//! reproduce). A tenant adds keys, not column families, so memory does not grow with tenants.
//!
//! **Generations** make snapshot imports atomic: a snapshot is written under a new generation
//! number, invisible to readers, then one synced write to `meta` makes it current, and the old
//! generation is deleted. Readers read `meta` and the data through one RocksDB snapshot, so
//! they see the old dataset or the new one, never a mix. An import killed midway leaves only
//! an unreferenced generation, which [`Store::open`] deletes.

mod audit;
mod codec;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode,
    Options, ReadOptions, WriteBatch, WriteBufferManager, WriteOptions, DB,
};
use time::Date;

use crate::domain::cf::CodiceFiscale;
use crate::domain::places::ComuneCode;
use crate::domain::records::{Permit, PermitNumber, Resident};

pub use audit::NewEntry;
pub use codec::Corrupt;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("opening database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    #[error("database")]
    Db(#[from] rocksdb::Error),
    #[error("database {0} is corrupt")]
    Corrupt(String),
}

impl From<Corrupt> for StoreError {
    fn from(c: Corrupt) -> Self {
        StoreError::Corrupt(c.0)
    }
}

/// The two datasets a node may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Residents,
    Permits,
}

impl Dataset {
    pub fn name(self) -> &'static str {
        match self {
            Self::Residents => "residents",
            Self::Permits => "permits",
        }
    }

    fn cfs(self) -> &'static [&'static str] {
        match self {
            Self::Residents => &[RESIDENTS, RES_BY_COMUNE, RES_BY_FAMILY],
            Self::Permits => &[PERMITS, PERMIT_BY_PERSON, PERMIT_BY_EXPIRY],
        }
    }
}

const META: &str = "meta";
const RESIDENTS: &str = "residents";
const RES_BY_COMUNE: &str = "res_by_comune";
const RES_BY_FAMILY: &str = "res_by_family";
const PERMITS: &str = "permits";
const PERMIT_BY_PERSON: &str = "permit_by_person";
const PERMIT_BY_EXPIRY: &str = "permit_by_expiry";
const ALL_CFS: [&str; 11] = [
    META,
    RESIDENTS,
    RES_BY_COMUNE,
    RES_BY_FAMILY,
    PERMITS,
    PERMIT_BY_PERSON,
    PERMIT_BY_EXPIRY,
    audit::AUDIT_ENTRIES,
    audit::AUDIT_NODES,
    audit::AUDIT_SUBJECTS,
    audit::WITNESS,
];

/// Rows written per batch during a snapshot import.
const BATCH_ROWS: usize = 20_000;

/// What the node knows about a dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetInfo {
    /// 0 until the first import.
    pub generation: u64,
    /// The date the data describes, as declared by the import.
    pub as_of: Option<Date>,
    pub rows: u64,
    /// Seconds since the Unix epoch.
    pub imported_at: Option<i64>,
}

/// The node's database, or one agency's part of it ([`Store::scoped`]).
pub struct Store {
    db: Arc<DB>,
    path: PathBuf,
    /// The block cache every column family shares, memtables charged to it.
    cache: Cache,
    /// The prefix of every key of this view: empty for the node's own agency.
    scope: Vec<u8>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("scope", &String::from_utf8_lossy(&self.scope))
            .finish()
    }
}

fn sync_writes() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

/// The first byte of every tenant's keys; the node's own keys never start with it.
const TENANT_MARK: u8 = 0xff;

fn ymd(d: Date) -> [u8; 8] {
    let s = format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day());
    let mut out = [b'0'; 8];
    out.copy_from_slice(&s.as_bytes()[..8]);
    out
}

fn meta_key(ds: Dataset) -> String {
    format!("{}/info", ds.name())
}

fn last_import_key(ds: Dataset) -> String {
    format!("{}/last-import", ds.name())
}

/// The memory budget of [`Store::open`]: 256 MiB.
pub const DEFAULT_MEMORY: usize = 256 << 20;

/// Marks an absent field in dataset metadata.
const ABSENT: u64 = u64::MAX;

impl Store {
    /// Opens (or creates) the database in `path` with the default memory budget (256 MiB),
    /// and deletes what killed imports left.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_memory(path, DEFAULT_MEMORY)
    }

    /// [`Store::open`] with `memory` bytes for the whole database: one LRU block cache that
    /// also holds index and filter blocks, and to which the memtables of every column family
    /// are charged (a write-buffer manager of half the budget), so memory does not grow with
    /// the number of column families.
    pub fn open_with_memory(path: &Path, memory: usize) -> Result<Self, StoreError> {
        let cache = Cache::new_lru_cache(memory);
        let buffers = WriteBufferManager::new_write_buffer_manager_with_cache(
            memory / 2,
            false,
            cache.clone(),
        );
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(5);
        opts.set_write_buffer_manager(&buffers);

        // A memtable per column family at most this size: a full one is flushed early.
        let memtable = (memory / 8).clamp(1 << 20, 64 << 20);
        let cfs = ALL_CFS.iter().map(|name| {
            let mut block = BlockBasedOptions::default();
            block.set_block_cache(&cache);
            block.set_cache_index_and_filter_blocks(true);
            block.set_pin_l0_filter_and_index_blocks_in_cache(true);
            // Point lookups dominate: a bloom filter skips files that cannot hold the key.
            block.set_bloom_filter(10.0, false);
            let mut o = Options::default();
            o.set_compression_type(DBCompressionType::Lz4);
            o.set_block_based_table_factory(&block);
            o.set_write_buffer_size(memtable);
            o.set_max_write_buffer_number(2);
            ColumnFamilyDescriptor::new(*name, o)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let store = Self {
            db: Arc::new(db),
            path: path.to_owned(),
            cache,
            scope: Vec::new(),
        };
        for ds in [Dataset::Residents, Dataset::Permits] {
            store.drop_other_generations(ds)?;
        }
        Ok(store)
    }

    /// The part of the database that belongs to tenant `agency` (an agency id: letters,
    /// digits, `-`, `_`, `.`, never a 0x00 byte), sharing the database, its cache and its
    /// memory budget; deletes what killed imports of that tenant left.
    pub fn scoped(&self, agency: &str) -> Result<Store, StoreError> {
        let mut scope = Vec::with_capacity(agency.len() + 2);
        scope.push(TENANT_MARK);
        scope.extend_from_slice(agency.as_bytes());
        scope.push(0);
        let store = Store {
            db: self.db.clone(),
            path: self.path.clone(),
            cache: self.cache.clone(),
            scope,
        };
        for ds in [Dataset::Residents, Dataset::Permits] {
            store.drop_other_generations(ds)?;
        }
        Ok(store)
    }

    /// Deletes every key of this scope, in every column family (a tenant removed), in one
    /// synced write. Refused on the node's own scope.
    pub fn delete_scope(&self) -> Result<(), StoreError> {
        if self.scope.is_empty() {
            return Err(StoreError::Corrupt(
                "the node's own data cannot be deleted as a scope".into(),
            ));
        }
        let mut batch = WriteBatch::default();
        for name in ALL_CFS {
            batch.delete_range_cf(self.cf(name), self.scope.clone(), self.end());
        }
        self.db.write_opt(batch, &sync_writes())?;
        Ok(())
    }

    /// `parts`, concatenated after this view's prefix.
    fn k(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut k =
            Vec::with_capacity(self.scope.len() + parts.iter().map(|p| p.len()).sum::<usize>());
        k.extend_from_slice(&self.scope);
        for p in parts {
            k.extend_from_slice(p);
        }
        k
    }

    /// A data key: generation, then `parts`.
    fn key(&self, generation: u64, parts: &[&[u8]]) -> Vec<u8> {
        let mut k = self.k(&[&generation.to_be_bytes()]);
        for p in parts {
            k.extend_from_slice(p);
        }
        k
    }

    /// The start of a generation's keys.
    fn gen_prefix(&self, generation: u64) -> Vec<u8> {
        self.k(&[&generation.to_be_bytes()])
    }

    /// Above every key of this view: the tenants' space for the node's own view, the
    /// prefix's separator plus one for a tenant's.
    fn end(&self) -> Vec<u8> {
        match self.scope.split_last() {
            None => vec![TENANT_MARK],
            Some((_, rest)) => {
                let mut e = rest.to_vec();
                e.push(1);
                e
            }
        }
    }

    /// Bytes of the node's RocksDB budget in use: the block cache, with the memtables charged
    /// to it. Bounded by `[store] memory_mb` (RocksDB may overshoot it briefly while a
    /// memtable is flushed).
    pub fn memory_in_use(&self) -> usize {
        self.cache.get_usage()
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // Every name in ALL_CFS is created at open.
        self.db
            .cf_handle(name)
            .expect("column family created at open")
    }

    /// Deletes every generation of `ds` but the current one.
    fn drop_other_generations(&self, ds: Dataset) -> Result<(), StoreError> {
        let current = self.info(ds)?.generation;
        let mut batch = WriteBatch::default();
        for name in ds.cfs() {
            let cf = self.cf(name);
            batch.delete_range_cf(cf, self.gen_prefix(0), self.gen_prefix(current));
            batch.delete_range_cf(cf, self.gen_prefix(current + 1), self.end());
        }
        self.db.write(batch)?;
        Ok(())
    }

    /// A dataset's metadata: one value, so that a question reads it with one get.
    fn info_at(
        &self,
        snap: Option<&rocksdb::Snapshot<'_>>,
        ds: Dataset,
    ) -> Result<DatasetInfo, StoreError> {
        let meta = self.cf(META);
        let key = self.k(&[meta_key(ds).as_bytes()]);
        let v = match snap {
            Some(s) => s.get_cf(meta, &key)?,
            None => self.db.get_cf(meta, &key)?,
        };
        let Some(v) = v else {
            return Ok(DatasetInfo::default());
        };
        let field = |i: usize| -> Result<u64, StoreError> {
            v.get(i * 8..i * 8 + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt(format!("{} metadata", ds.name())))
        };
        let as_of = match field(2)? {
            ABSENT => None,
            j => Some(
                i32::try_from(j)
                    .ok()
                    .and_then(|j| Date::from_julian_day(j).ok())
                    .ok_or_else(|| StoreError::Corrupt(format!("{} as_of", ds.name())))?,
            ),
        };
        Ok(DatasetInfo {
            generation: field(0)?,
            rows: field(1)?,
            as_of,
            imported_at: match field(3)? {
                ABSENT => None,
                t => Some(t as i64),
            },
        })
    }

    /// The current state of a dataset.
    pub fn info(&self, ds: Dataset) -> Result<DatasetInfo, StoreError> {
        self.info_at(None, ds)
    }

    /// What the last import of `ds` reported (an encoded summary, as [`Store::put_last_import`]
    /// was given it), if any.
    pub fn last_import(&self, ds: Dataset) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.k(&[last_import_key(ds).as_bytes()]);
        Ok(self.db.get_cf(self.cf(META), key)?)
    }

    /// Keeps the report of an import of `ds` just applied, for the registry office to see.
    pub fn put_last_import(&self, ds: Dataset, summary: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(META),
            self.k(&[last_import_key(ds).as_bytes()]),
            summary,
        );
        self.db.write_opt(batch, &sync_writes())?;
        Ok(())
    }

    /// A resident by codice fiscale, with the dataset it was read from (one consistent view).
    pub fn resident(
        &self,
        cf: &CodiceFiscale,
    ) -> Result<(Option<Resident>, DatasetInfo), StoreError> {
        let snap = self.db.snapshot();
        let info = self.info_at(Some(&snap), Dataset::Residents)?;
        let v = snap.get_cf(
            self.cf(RESIDENTS),
            self.key(info.generation, &[cf.as_bytes()]),
        )?;
        let resident = match v {
            Some(v) => Some(codec::decode_resident(cf.clone(), &v)?),
            None => None,
        };
        Ok((resident, info))
    }

    /// Every permit naming `cf` as holder or minor, with the dataset it was read from.
    pub fn permits_of(&self, cf: &CodiceFiscale) -> Result<(Vec<Permit>, DatasetInfo), StoreError> {
        let snap = self.db.snapshot();
        let info = self.info_at(Some(&snap), Dataset::Permits)?;
        let prefix = self.key(info.generation, &[cf.as_bytes()]);
        let numbers = self.keys_with_prefix(&snap, PERMIT_BY_PERSON, &prefix)?;
        let mut permits = Vec::with_capacity(numbers.len());
        for k in numbers {
            let number =
                PermitNumber::parse(std::str::from_utf8(&k[prefix.len()..]).unwrap_or_default())
                    .map_err(StoreError::Corrupt)?;
            let v = snap
                .get_cf(
                    self.cf(PERMITS),
                    self.key(info.generation, &[number.as_bytes()]),
                )?
                .ok_or_else(|| StoreError::Corrupt("permit index points to nothing".into()))?;
            permits.push(codec::decode_permit(number, &v)?);
        }
        Ok((permits, info))
    }

    /// Residents of a family, with the dataset they were read from.
    pub fn family(&self, family_id: &str) -> Result<(Vec<Resident>, DatasetInfo), StoreError> {
        let snap = self.db.snapshot();
        let info = self.info_at(Some(&snap), Dataset::Residents)?;
        let prefix = self.key(info.generation, &[family_id.as_bytes(), &[0]]);
        let mut out = Vec::new();
        for k in self.keys_with_prefix(&snap, RES_BY_FAMILY, &prefix)? {
            let cf = codec::cf_from_key(&k[prefix.len()..])?;
            if let Some(v) = snap.get_cf(
                self.cf(RESIDENTS),
                self.key(info.generation, &[cf.as_bytes()]),
            )? {
                out.push(codec::decode_resident(cf, &v)?);
            }
        }
        Ok((out, info))
    }

    /// Permits with domicile in `comune` expiring in `[from, to]`, soonest first.
    pub fn expiring(
        &self,
        comune: &ComuneCode,
        from: Date,
        to: Date,
    ) -> Result<(Vec<Permit>, DatasetInfo), StoreError> {
        let snap = self.db.snapshot();
        let info = self.info_at(Some(&snap), Dataset::Permits)?;
        let start = self.key(info.generation, &[comune.as_str().as_bytes(), &ymd(from)]);
        let prefix = self.key(info.generation, &[comune.as_str().as_bytes()]);
        let last = ymd(to);
        let mut out = Vec::new();
        let cf = self.cf(PERMIT_BY_EXPIRY);
        let iter = snap.iterator_cf(cf, IteratorMode::From(&start, Direction::Forward));
        for item in iter {
            let (k, _) = item?;
            if !k.starts_with(&prefix) || k.len() != prefix.len() + 8 + 9 {
                break;
            }
            if k[prefix.len()..prefix.len() + 8] > last[..] {
                break;
            }
            let number = PermitNumber::parse(
                std::str::from_utf8(&k[prefix.len() + 8..]).unwrap_or_default(),
            )
            .map_err(StoreError::Corrupt)?;
            if let Some(v) = snap.get_cf(
                self.cf(PERMITS),
                self.key(info.generation, &[number.as_bytes()]),
            )? {
                out.push(codec::decode_permit(number, &v)?);
            }
        }
        Ok((out, info))
    }

    fn keys_with_prefix(
        &self,
        snap: &rocksdb::Snapshot<'_>,
        cf: &str,
        prefix: &[u8],
    ) -> Result<Vec<Box<[u8]>>, StoreError> {
        let mut opts = ReadOptions::default();
        let mut upper = prefix.to_vec();
        // The prefix never ends in 0xff (it ends in ASCII or 0x00), so +1 is its upper bound.
        if let Some(last) = upper.last_mut() {
            *last += 1;
        }
        opts.set_iterate_upper_bound(upper);
        let mut out = Vec::new();
        for item in snap.iterator_cf_opt(
            self.cf(cf),
            opts,
            IteratorMode::From(prefix, Direction::Forward),
        ) {
            let (k, _) = item?;
            out.push(k);
        }
        Ok(out)
    }

    /// Starts a snapshot import of `ds`: rows go to a new generation, invisible until
    /// [`SnapshotWriter::commit`].
    pub fn snapshot_writer(&self, ds: Dataset) -> Result<SnapshotWriter<'_>, StoreError> {
        let generation = self.info(ds)?.generation + 1;
        // A previous killed import may have left rows under this generation.
        self.drop_other_generations(ds)?;
        Ok(SnapshotWriter {
            store: self,
            ds,
            generation,
            batch: WriteBatch::default(),
            pending: 0,
            rows: 0,
        })
    }

    fn put_resident(&self, batch: &mut WriteBatch, generation: u64, r: &Resident) {
        let cf = r.cf.as_bytes();
        batch.put_cf(
            self.cf(RESIDENTS),
            self.key(generation, &[cf]),
            codec::encode_resident(r),
        );
        batch.put_cf(
            self.cf(RES_BY_COMUNE),
            self.key(generation, &[r.comune.as_str().as_bytes(), cf]),
            [],
        );
        batch.put_cf(
            self.cf(RES_BY_FAMILY),
            self.key(generation, &[r.family_id.as_bytes(), &[0], cf]),
            [],
        );
    }

    fn delete_resident(&self, batch: &mut WriteBatch, generation: u64, r: &Resident) {
        let cf = r.cf.as_bytes();
        batch.delete_cf(self.cf(RESIDENTS), self.key(generation, &[cf]));
        batch.delete_cf(
            self.cf(RES_BY_COMUNE),
            self.key(generation, &[r.comune.as_str().as_bytes(), cf]),
        );
        batch.delete_cf(
            self.cf(RES_BY_FAMILY),
            self.key(generation, &[r.family_id.as_bytes(), &[0], cf]),
        );
    }

    fn permit_index_keys(&self, generation: u64, p: &Permit) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
        let n = p.number.as_bytes();
        let people = std::iter::once(&p.holder)
            .chain(p.minors.iter())
            .map(|cf| self.key(generation, &[cf.as_bytes(), n]))
            .collect();
        let expiry = p
            .expires
            .map(|d| self.key(generation, &[p.comune.as_str().as_bytes(), &ymd(d), n]));
        (people, expiry)
    }

    fn put_permit(&self, batch: &mut WriteBatch, generation: u64, p: &Permit) {
        batch.put_cf(
            self.cf(PERMITS),
            self.key(generation, &[p.number.as_bytes()]),
            codec::encode_permit(p),
        );
        let (people, expiry) = self.permit_index_keys(generation, p);
        for k in people {
            batch.put_cf(self.cf(PERMIT_BY_PERSON), k, []);
        }
        if let Some(k) = expiry {
            batch.put_cf(self.cf(PERMIT_BY_EXPIRY), k, []);
        }
    }

    fn delete_permit(&self, batch: &mut WriteBatch, generation: u64, p: &Permit) {
        batch.delete_cf(
            self.cf(PERMITS),
            self.key(generation, &[p.number.as_bytes()]),
        );
        let (people, expiry) = self.permit_index_keys(generation, p);
        for k in people {
            batch.delete_cf(self.cf(PERMIT_BY_PERSON), k);
        }
        if let Some(k) = expiry {
            batch.delete_cf(self.cf(PERMIT_BY_EXPIRY), k);
        }
    }

    fn stored_permit(
        &self,
        generation: u64,
        number: &PermitNumber,
    ) -> Result<Option<Permit>, StoreError> {
        match self
            .db
            .get_cf(self.cf(PERMITS), self.key(generation, &[number.as_bytes()]))?
        {
            Some(v) => Ok(Some(codec::decode_permit(number.clone(), &v)?)),
            None => Ok(None),
        }
    }

    fn stored_resident(
        &self,
        generation: u64,
        cf: &CodiceFiscale,
    ) -> Result<Option<Resident>, StoreError> {
        match self
            .db
            .get_cf(self.cf(RESIDENTS), self.key(generation, &[cf.as_bytes()]))?
        {
            Some(v) => Ok(Some(codec::decode_resident(cf.clone(), &v)?)),
            None => Ok(None),
        }
    }

    fn put_meta(&self, batch: &mut WriteBatch, ds: Dataset, info: &DatasetInfo) {
        let mut v = Vec::with_capacity(32);
        v.extend_from_slice(&info.generation.to_be_bytes());
        v.extend_from_slice(&info.rows.to_be_bytes());
        let as_of = info.as_of.map_or(ABSENT, |d| d.to_julian_day() as u64);
        v.extend_from_slice(&as_of.to_be_bytes());
        let imported_at = info.imported_at.map_or(ABSENT, |t| t as u64);
        v.extend_from_slice(&imported_at.to_be_bytes());
        batch.put_cf(self.cf(META), self.k(&[meta_key(ds).as_bytes()]), v);
    }

    /// Applies a delta to the current generation of `ds` in one synced, atomic write.
    pub fn apply_delta(
        &self,
        delta: Delta,
        as_of: Option<Date>,
    ) -> Result<DatasetInfo, StoreError> {
        let ds = delta.dataset();
        let mut info = self.info(ds)?;
        let g = info.generation;
        let mut batch = WriteBatch::default();
        let mut rows = info.rows as i64;
        match delta {
            Delta::Residents(ops) => {
                for op in ops {
                    let cf = match &op {
                        DeltaOp::Upsert(r) => r.cf.clone(),
                        DeltaOp::Delete(cf) => cf.clone(),
                    };
                    if let Some(old) = self.stored_resident(g, &cf)? {
                        self.delete_resident(&mut batch, g, &old);
                        rows -= 1;
                    }
                    if let DeltaOp::Upsert(r) = op {
                        self.put_resident(&mut batch, g, &r);
                        rows += 1;
                    }
                }
            }
            Delta::Permits(ops) => {
                for op in ops {
                    let number = match &op {
                        DeltaOp::Upsert(p) => p.number.clone(),
                        DeltaOp::Delete(n) => n.clone(),
                    };
                    if let Some(old) = self.stored_permit(g, &number)? {
                        self.delete_permit(&mut batch, g, &old);
                        rows -= 1;
                    }
                    if let DeltaOp::Upsert(p) = op {
                        self.put_permit(&mut batch, g, &p);
                        rows += 1;
                    }
                }
            }
        }
        info.rows = rows.max(0) as u64;
        info.as_of = as_of.or(info.as_of);
        info.imported_at = Some(now_unix());
        self.put_meta(&mut batch, ds, &info);
        self.db.write_opt(batch, &sync_writes())?;
        Ok(info)
    }
}

/// An upsert or a delete, by key.
#[derive(Debug)]
pub enum DeltaOp<T, K> {
    Upsert(T),
    Delete(K),
}

/// The operations of a delta import.
#[derive(Debug)]
pub enum Delta {
    Residents(Vec<DeltaOp<Resident, CodiceFiscale>>),
    Permits(Vec<DeltaOp<Permit, PermitNumber>>),
}

impl Delta {
    fn dataset(&self) -> Dataset {
        match self {
            Delta::Residents(_) => Dataset::Residents,
            Delta::Permits(_) => Dataset::Permits,
        }
    }
}

/// A snapshot import in progress. Dropping it without `commit` leaves the dataset unchanged
/// (the rows written so far are deleted at the next import or restart).
pub struct SnapshotWriter<'a> {
    store: &'a Store,
    ds: Dataset,
    generation: u64,
    batch: WriteBatch,
    pending: usize,
    rows: u64,
}

impl std::fmt::Debug for SnapshotWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("dataset", &self.ds.name())
            .field("generation", &self.generation)
            .field("rows", &self.rows)
            .finish()
    }
}

impl SnapshotWriter<'_> {
    pub fn put_resident(&mut self, r: &Resident) -> Result<(), StoreError> {
        debug_assert_eq!(self.ds, Dataset::Residents);
        self.store.put_resident(&mut self.batch, self.generation, r);
        self.row_added()
    }

    pub fn put_permit(&mut self, p: &Permit) -> Result<(), StoreError> {
        debug_assert_eq!(self.ds, Dataset::Permits);
        self.store.put_permit(&mut self.batch, self.generation, p);
        self.row_added()
    }

    fn row_added(&mut self) -> Result<(), StoreError> {
        self.rows += 1;
        self.pending += 1;
        if self.pending >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut self.batch);
        self.pending = 0;
        // Not synced: nothing refers to this generation until the synced commit, whose WAL
        // sync makes everything written before it durable too.
        self.store.db.write(batch)?;
        Ok(())
    }

    /// Makes the new generation current (one synced write), then deletes the old one.
    pub fn commit(mut self, as_of: Option<Date>) -> Result<DatasetInfo, StoreError> {
        self.flush()?;
        let old = self.store.info(self.ds)?;
        let info = DatasetInfo {
            generation: self.generation,
            as_of,
            rows: self.rows,
            imported_at: Some(now_unix()),
        };
        let mut batch = WriteBatch::default();
        self.store.put_meta(&mut batch, self.ds, &info);
        self.store.db.write_opt(batch, &sync_writes())?;
        // Readers holding a RocksDB snapshot keep seeing the old generation until they finish.
        let mut drop_old = WriteBatch::default();
        for name in self.ds.cfs() {
            drop_old.delete_range_cf(
                self.store.cf(name),
                self.store.gen_prefix(old.generation),
                self.store.gen_prefix(old.generation + 1),
            );
        }
        self.store.db.write(drop_old)?;
        Ok(info)
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
