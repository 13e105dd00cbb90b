//! Repeated warnings, at most once a minute per key: a lasting condition (a checkpoint the node
//! refuses to sign, a witness that keeps refusing) is reported when it starts and then once a
//! minute with how many times it recurred, instead of every second. Metrics still count every
//! occurrence.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) struct Throttle {
    every: Duration,
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Throttle {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether to log this occurrence of `key`; if so, how many were left out since the last
    /// one logged.
    pub(crate) fn allow(&self, key: &str) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match seen.get_mut(key) {
            Some((last, skipped)) if now.duration_since(*last) < self.every => {
                *skipped += 1;
                None
            }
            Some((last, skipped)) => {
                let n = std::mem::take(skipped);
                *last = now;
                Some(n)
            }
            None => {
                seen.insert(key.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_occurrence_is_logged_and_repeats_are_counted_until_the_next() {
        let hourly = Throttle::new(Duration::from_secs(3600));
        assert_eq!(hourly.allow("questura-pu"), Some(0));
        assert_eq!(hourly.allow("questura-pu"), None);
        assert_eq!(hourly.allow("questura-pu"), None);
        // Keys are independent.
        assert_eq!(hourly.allow("comune-urbino"), Some(0));

        let always = Throttle::new(Duration::ZERO);
        assert_eq!(always.allow("k"), Some(0));
        assert_eq!(always.allow("k"), Some(0));
        // The count left out is reported with the next one logged, then starts over.
        let t = Throttle::new(Duration::from_secs(3600));
        t.allow("k");
        t.allow("k");
        t.allow("k");
        t.seen.lock().unwrap().get_mut("k").unwrap().0 -= Duration::from_secs(3601);
        assert_eq!(t.allow("k"), Some(2));
        assert_eq!(t.allow("k"), None);
    }
}
