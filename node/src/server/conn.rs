//! Connection admission and the life of one connection: what keeps one member from holding
//! the port.
//!
//! - [`Table`] counts connections by client address (from accept) and by agency (from the
//!   verified certificate). A connection is admitted only while its address, its agency and
//!   the node have room; the node's own agency and the Prefettura have `reserved_connections`
//!   that nobody else can take, so an operator and a policy push always get in.
//! - [`Activity`] follows the requests of one connection. A connection with nothing in flight
//!   is idle: it is closed `idle_timeout` after its last answer, or `header_read_timeout` after
//!   the handshake if it never asked anything (HTTP/2 PINGs do not count as activity). An
//!   answer the client does not take within `send_timeout` (a zero flow-control window, a
//!   full TCP window) closes the connection: a stalled peer cannot keep a slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use attesta_certs::AgencyId;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};

use crate::config::Limits;

/// Why a connection was not admitted (a metric label, and the problem's detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many TLS handshakes under way on the node.
    Handshakes,
    /// Too many connections from the client's address.
    Address,
    /// Too many connections from the client's agency.
    Agency,
    /// The node's connections are all taken (or only the reserved ones are left).
    Full,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Self::Handshakes => "handshakes",
            Self::Address => "address_limit",
            Self::Agency => "agency_limit",
            Self::Full => "node_full",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    handshaking: usize,
    /// Established connections, all agencies.
    established: usize,
    by_address: HashMap<IpAddr, usize>,
    by_agency: HashMap<AgencyId, usize>,
}

/// The node's connection counts, shared by every connection.
#[derive(Debug)]
pub struct Table {
    limits: Limits,
    counts: Mutex<Counts>,
    /// Woken when the last connection closes (for draining on shutdown).
    empty: tokio::sync::Notify,
}

impl Table {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::new(Counts::default()),
            empty: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counts stay consistent even if a holder panicked: every update is one statement.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a just-accepted TCP connection from `addr` to its TLS handshake.
    pub fn accept(self: &Arc<Self>, addr: IpAddr) -> Result<Handshaking, Refusal> {
        let mut c = self.lock();
        if c.handshaking >= self.limits.max_handshakes {
            return Err(Refusal::Handshakes);
        }
        let n = c.by_address.get(&addr).copied().unwrap_or(0);
        if n >= self.limits.max_connections_per_address {
            return Err(Refusal::Address);
        }
        c.handshaking += 1;
        *c.by_address.entry(addr).or_insert(0) += 1;
        Ok(Handshaking {
            table: self.clone(),
            addr,
            done: false,
        })
    }

    /// Connections open now (handshaking or established).
    pub fn open(&self) -> usize {
        let c = self.lock();
        c.handshaking + c.established
    }

    /// Waits until no connection is open.
    pub async fn drained(&self) {
        loop {
            let notified = self.empty.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }

    fn release_address(&self, c: &mut Counts, addr: IpAddr) {
        if let Some(n) = c.by_address.get_mut(&addr) {
            *n -= 1;
            if *n == 0 {
                c.by_address.remove(&addr);
            }
        }
        if c.handshaking + c.established == 0 {
            self.empty.notify_waiters();
        }
    }
}

/// A connection in its TLS handshake. Dropping it releases its place.
#[derive(Debug)]
pub struct Handshaking {
    table: Arc<Table>,
    addr: IpAddr,
    done: bool,
}

impl Handshaking {
    /// The handshake succeeded for `agency`: admits the connection, or says why not.
    /// `privileged` agencies (the node's own, the Prefettura) may use the reserved places and
    /// have no per-agency cap.
    pub fn establish(
        mut self,
        agency: &AgencyId,
        privileged: bool,
    ) -> Result<Established, Refusal> {
        let limits = &self.table.limits;
        let mut c = self.table.lock();
        let ceiling = if privileged {
            limits.max_connections
        } else {
            limits
                .max_connections
                .saturating_sub(limits.reserved_connections)
        };
        if c.established >= ceiling {
            return Err(Refusal::Full);
        }
        let n = c.by_agency.get(agency).copied().unwrap_or(0);
        if !privileged && n >= limits.max_connections_per_agency {
            return Err(Refusal::Agency);
        }
        c.handshaking -= 1;
        c.established += 1;
        *c.by_agency.entry(agency.clone()).or_insert(0) += 1;
        drop(c);
        self.done = true;
        Ok(Established {
            table: self.table.clone(),
            addr: self.addr,
            agency: agency.clone(),
        })
    }
}

impl Drop for Handshaking {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut c = self.table.lock();
        c.handshaking -= 1;
        self.table.release_address(&mut c, self.addr);
    }
}

/// An admitted connection. Dropping it releases its place.
#[derive(Debug)]
pub struct Established {
    table: Arc<Table>,
    addr: IpAddr,
    agency: AgencyId,
}

impl Drop for Established {
    fn drop(&mut self) {
        let mut c = self.table.lock();
        c.established -= 1;
        if let Some(n) = c.by_agency.get_mut(&self.agency) {
            *n -= 1;
            if *n == 0 {
                c.by_agency.remove(&self.agency);
            }
        }
        self.table.release_address(&mut c, self.addr);
    }
}

/// What the watchdog of a connection decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Carry on.
    Serve,
    /// No request for too long: close gracefully (HTTP/2 GOAWAY).
    Idle,
    /// No request since the handshake within `header_read_timeout`.
    NoRequest,
    /// An answer was not taken by the client within `send_timeout`: close now.
    Stalled,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Self::Serve => "serve",
            Self::Idle => "idle",
            Self::NoRequest => "no_request",
            Self::Stalled => "stalled",
        }
    }
}

#[derive(Debug)]
struct ActivityState {
    /// Requests in their handler.
    handling: usize,
    /// Answers being sent, by id, with the time the handler finished.
    sending: HashMap<u64, Instant>,
    next_id: u64,
    /// Requests whose answer was sent (or abandoned).
    served: u64,
    /// Since when nothing is in flight.
    idle_since: Instant,
}

/// The requests of one connection, for its watchdog.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<ActivityState>,
    /// After its first answer the connection closes (a refused connection's explanation).
    close_after_first: bool,
}

impl Activity {
    pub fn new(close_after_first: bool) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(ActivityState {
                handling: 0,
                sending: HashMap::new(),
                next_id: 0,
                served: 0,
                idle_since: Instant::now(),
            }),
            close_after_first,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request arrived; the guard marks it in its handler until [`Handling::answer`].
    pub fn begin(self: &Arc<Self>) -> Handling {
        self.lock().handling += 1;
        Handling {
            activity: self.clone(),
            answered: false,
        }
    }

    /// What to do with the connection at `now`.
    pub fn check(&self, now: Instant, limits: &Limits) -> Verdict {
        let s = self.lock();
        if s.sending
            .values()
            .any(|since| now.saturating_duration_since(*since) >= limits.send_timeout)
        {
            return Verdict::Stalled;
        }
        if s.handling > 0 || !s.sending.is_empty() {
            return Verdict::Serve;
        }
        let idle = now.saturating_duration_since(s.idle_since);
        if s.served == 0 {
            if idle >= limits.header_read_timeout {
                return Verdict::NoRequest;
            }
        } else if self.close_after_first || idle >= limits.idle_timeout {
            return Verdict::Idle;
        }
        Verdict::Serve
    }

    /// How often the watchdog should look.
    pub fn tick(limits: &Limits) -> Duration {
        let shortest = limits
            .idle_timeout
            .min(limits.send_timeout)
            .min(limits.header_read_timeout);
        (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    fn finish(&self, s: &mut ActivityState) {
        s.served += 1;
        if s.handling == 0 && s.sending.is_empty() {
            s.idle_since = Instant::now();
        }
    }
}

/// A request in its handler.
#[derive(Debug)]
pub struct Handling {
    activity: Arc<Activity>,
    answered: bool,
}

impl Handling {
    /// The handler answered: the answer's body is followed until the client has taken it.
    pub fn answer(mut self, body: Full<Bytes>) -> Tracked {
        self.answered = true;
        let mut s = self.activity.lock();
        s.handling -= 1;
        let id = s.next_id;
        s.next_id += 1;
        s.sending.insert(id, Instant::now());
        drop(s);
        Tracked {
            inner: body,
            activity: self.activity.clone(),
            id,
        }
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        // The request was abandoned (client reset the stream, connection closed).
        let mut s = self.activity.lock();
        s.handling -= 1;
        self.activity.finish(&mut s);
    }
}

/// An answer's body, followed until hyper has sent it (or dropped it).
#[derive(Debug)]
pub struct Tracked {
    inner: Full<Bytes>,
    activity: Arc<Activity>,
    id: u64,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut s = self.activity.lock();
        s.sending.remove(&self.id);
        self.activity.finish(&mut s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 4,
            reserved_connections: 1,
            max_connections_per_agency: 2,
            max_connections_per_address: 5,
            max_handshakes: 3,
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(10),
            ..Limits::default()
        }
    }

    fn id(s: &str) -> AgencyId {
        AgencyId::new(s).unwrap()
    }

    #[test]
    fn agencies_addresses_and_handshakes_are_capped_and_the_reserve_is_kept() {
        let t = Table::new(limits());
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();

        // Handshakes: three at once, the fourth refused; a failed one gives its place back.
        let h: Vec<_> = (0..3).map(|_| t.accept(a).unwrap()).collect();
        assert_eq!(t.accept(b).unwrap_err(), Refusal::Handshakes);
        drop(h);
        assert_eq!(t.open(), 0);

        // Per agency: two for inps, the third refused even from another address.
        let inps1 = t.accept(a).unwrap().establish(&id("inps"), false).unwrap();
        let inps2 = t.accept(a).unwrap().establish(&id("inps"), false).unwrap();
        assert_eq!(
            t.accept(b)
                .unwrap()
                .establish(&id("inps"), false)
                .unwrap_err(),
            Refusal::Agency
        );
        // Another agency gets the last unreserved place; then only the reserve is left.
        let asl = t.accept(b).unwrap().establish(&id("asl"), false).unwrap();
        assert_eq!(
            t.accept(b)
                .unwrap()
                .establish(&id("ausl"), false)
                .unwrap_err(),
            Refusal::Full
        );
        let own = t
            .accept(b)
            .unwrap()
            .establish(&id("questura"), true)
            .unwrap();
        assert_eq!(
            t.accept(b)
                .unwrap()
                .establish(&id("questura"), true)
                .unwrap_err(),
            Refusal::Full
        );
        assert_eq!(t.open(), 4);
        drop((inps1, inps2, asl, own));
        assert_eq!(t.open(), 0);

        // Per address: five at most, handshaking or established.
        let t = Table::new(limits());
        let est: Vec<_> = (0..3)
            .map(|i| {
                t.accept(a)
                    .unwrap()
                    .establish(&id(&format!("agency-{i}")), false)
                    .unwrap()
            })
            .collect();
        let hs: Vec<_> = (0..2).map(|_| t.accept(a).unwrap()).collect();
        assert_eq!(t.accept(a).unwrap_err(), Refusal::Address);
        assert!(t.accept(b).is_ok(), "another address is not affected");
        drop((est, hs));
        assert_eq!(t.open(), 0);
    }

    #[test]
    fn idle_silent_and_stalled_connections_are_told_apart() {
        let l = limits();
        let a = Activity::new(false);
        let t0 = a.lock().idle_since;
        assert_eq!(a.check(t0, &l), Verdict::Serve);
        assert_eq!(a.check(t0 + l.header_read_timeout, &l), Verdict::NoRequest);

        // A request in its handler keeps the connection, however long it takes.
        let h = a.begin();
        assert_eq!(a.check(t0 + Duration::from_secs(3600), &l), Verdict::Serve);
        let body = h.answer(Full::new(Bytes::from_static(b"{}")));
        let sent_at = a.lock().sending.values().copied().next().unwrap();
        assert_eq!(
            a.check(sent_at + Duration::from_secs(9), &l),
            Verdict::Serve
        );
        assert_eq!(a.check(sent_at + l.send_timeout, &l), Verdict::Stalled);
        drop(body);

        // Answered: idle from now on, closed after idle_timeout.
        let idle = a.lock().idle_since;
        assert_eq!(a.check(idle + Duration::from_secs(59), &l), Verdict::Serve);
        assert_eq!(a.check(idle + l.idle_timeout, &l), Verdict::Idle);

        // An abandoned request counts as served.
        let a = Activity::new(false);
        drop(a.begin());
        assert_eq!(a.lock().served, 1);
        assert_eq!(a.lock().handling, 0);

        // A refused connection closes after its one answer.
        let a = Activity::new(true);
        drop(a.begin().answer(Full::new(Bytes::new())));
        assert_eq!(a.check(Instant::now(), &l), Verdict::Idle);
    }
}
