//! attesta's access policy: the casbin model and default policy, the Prefettura's signed
//! manifest, and the enforcement wrapper every route goes through.
//!
//! This is the only crate that names `casbin`. The foundation release has no policy yet: nodes
//! authenticate every caller (mTLS) but expose only identity, health and metrics routes, which
//! need no authorization decision. The policy engine lands here with the access-policy work.
