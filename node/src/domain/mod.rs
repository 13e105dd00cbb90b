//! Domain types: what the node knows about people, places and permits. Each constructor is the
//! only validation; nothing downstream re-checks.
//!
//! - [`cf`]: the codice fiscale.
//! - [`places`]: comuni (ISTAT), foreign states and citizenships (ANPR tables in `node/data/`).
//! - [`records`]: residents and permits.
//! - [`presence`]: residence and legal presence as of a date (pure rules).
//! - [`purpose`]: the purpose a request declares.
//! - [`rows`]: one CSV row of an import into a record.

pub mod cf;
pub mod places;
pub mod presence;
pub mod purpose;
pub mod records;
pub mod rows;
