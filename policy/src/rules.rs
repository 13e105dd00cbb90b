//! Policy text: checking its lines, editing grants, comparing versions, listing what an agency
//! may ask. Pure functions over the CSV text, so the Prefettura's tooling can work on a draft
//! file without a node.

use std::collections::{BTreeMap, BTreeSet};

use crate::PolicyError;

/// A policy line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `p, sub, res, act, purpose, territory, eft`
    Rule(Rule),
    /// `g, agency, role`
    Role { agency: String, role: String },
    /// `g2, agency, territory`
    Territory { agency: String, territory: String },
}

/// A `p` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub subject: String,
    pub resource: String,
    pub action: String,
    pub purpose: String,
    pub territory: String,
    pub allow: bool,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p, {}, {}, {}, {}, {}, {}",
            self.subject,
            self.resource,
            self.action,
            self.purpose,
            self.territory,
            if self.allow { "allow" } else { "deny" }
        )
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Line::Rule(r) => r.fmt(f),
            Line::Role { agency, role } => write!(f, "g, {agency}, {role}"),
            Line::Territory { agency, territory } => write!(f, "g2, {agency}, {territory}"),
        }
    }
}

/// Whether a field is a plain token: letters, digits, `-`, `_`, `.`, or `*`.
fn token_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && (s == "*"
            || s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
}

impl Line {
    /// Parses one non-comment line.
    pub fn parse(line: &str) -> Result<Self, String> {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if let Some(bad) = fields.iter().skip(1).find(|f| !token_ok(f)) {
            return Err(format!(
                "{bad:?} is not a name (letters, digits, '-', '_', '.', or '*')"
            ));
        }
        match fields.as_slice() {
            ["p", sub, res, act, purpose, territory, eft] => {
                let allow = match *eft {
                    "allow" => true,
                    "deny" => false,
                    other => return Err(format!("effect {other:?} is not allow or deny")),
                };
                if allow && *purpose == "*" {
                    return Err(
                        "an allow rule must name its purpose ('*' only in deny rules)".into(),
                    );
                }
                if *sub == "*" || *res == "*" || *act == "*" {
                    return Err("subject, resource and action cannot be '*'".into());
                }
                Ok(Line::Rule(Rule {
                    subject: sub.to_string(),
                    resource: res.to_string(),
                    action: act.to_string(),
                    purpose: purpose.to_string(),
                    territory: territory.to_string(),
                    allow,
                }))
            }
            ["g", agency, role] => Ok(Line::Role {
                agency: agency.to_string(),
                role: role.to_string(),
            }),
            ["g2", agency, territory] => Ok(Line::Territory {
                agency: agency.to_string(),
                territory: territory.to_string(),
            }),
            ["p", ..] => {
                Err("a p line has 6 fields: sub, res, act, purpose, territory, eft".into())
            }
            ["g" | "g2", ..] => Err("a g or g2 line has 2 fields".into()),
            [kind, ..] => Err(format!("{kind:?} is not p, g or g2")),
            [] => Err("empty line".into()),
        }
    }
}

/// Parses every line of a policy (comments and blank lines skipped). Errors give the line
/// number.
pub fn parse(text: &str) -> Result<Vec<Line>, PolicyError> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(n, l)| Line::parse(l).map_err(|e| PolicyError::Load(format!("line {n}: {e}"))))
        .collect()
}

/// The policy's lines in normal form (`p, a, b, ...`), in order, without comments.
pub fn normalise(text: &str) -> Result<Vec<String>, PolicyError> {
    Ok(parse(text)?.iter().map(ToString::to_string).collect())
}

/// Adds an allow rule. Refuses a rule that is already there.
pub fn grant(text: &str, rule: &Rule) -> Result<String, PolicyError> {
    let line = Line::parse(&rule.to_string()).map_err(PolicyError::Edit)?;
    if normalise(text)?.contains(&line.to_string()) {
        return Err(PolicyError::Edit(format!("already in the policy: {line}")));
    }
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&line.to_string());
    out.push('\n');
    Ok(out)
}

/// Removes a rule (every line equal to it once normalised). Refuses a rule that is not there.
pub fn revoke(text: &str, rule: &Rule) -> Result<String, PolicyError> {
    let target = rule.to_string();
    let mut found = false;
    let mut out = String::with_capacity(text.len());
    for l in text.lines() {
        let t = l.trim();
        let is_target = !t.is_empty()
            && !t.starts_with('#')
            && Line::parse(t).is_ok_and(|p| p.to_string() == target);
        if is_target {
            found = true;
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    if !found {
        return Err(PolicyError::Edit(format!("not in the policy: {target}")));
    }
    Ok(out)
}

/// What changes from `published` to `draft`, line by line (normal form).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

pub fn diff(published: &str, draft: &str) -> Result<Diff, PolicyError> {
    let old = normalise(published)?;
    let new = normalise(draft)?;
    let old_set: BTreeSet<&String> = old.iter().collect();
    let new_set: BTreeSet<&String> = new.iter().collect();
    Ok(Diff {
        removed: old
            .iter()
            .filter(|l| !new_set.contains(l))
            .cloned()
            .collect(),
        added: new
            .iter()
            .filter(|l| !old_set.contains(l))
            .cloned()
            .collect(),
    })
}

/// For `agency`: resource → the purposes its allow rules (its own or its roles') name, minus
/// those a deny rule for the agency or its roles takes away. What a clerk of that agency can
/// declare.
pub fn purposes(
    text: &str,
    agency: &str,
) -> Result<BTreeMap<String, BTreeSet<String>>, PolicyError> {
    let lines = parse(text)?;
    // The agency and every role it holds, transitively.
    let mut subjects: BTreeSet<String> = BTreeSet::from([agency.to_owned()]);
    loop {
        let before = subjects.len();
        for l in &lines {
            if let Line::Role { agency: a, role } = l {
                if subjects.contains(a) {
                    subjects.insert(role.clone());
                }
            }
        }
        if subjects.len() == before {
            break;
        }
    }
    let rules = lines.iter().filter_map(|l| match l {
        Line::Rule(r) if subjects.contains(&r.subject) && r.action == "read" => Some(r),
        _ => None,
    });
    let (allows, denies): (Vec<&Rule>, Vec<&Rule>) = rules.partition(|r| r.allow);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in allows {
        let denied = denies.iter().any(|d| {
            d.resource == r.resource
                && (d.purpose == "*" || d.purpose == r.purpose)
                && d.territory == "*"
        });
        if !denied {
            out.entry(r.resource.clone())
                .or_default()
                .insert(r.purpose.clone());
        }
    }
    Ok(out)
}
