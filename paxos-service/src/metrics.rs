//! The `paxos` service's Prometheus metrics and the HTTP endpoint that
//! exports them.
//!
//! [`Metrics`] holds every metric of a node, registered under the prefix
//! `paxos`; every sample carries the constant label `node="<id>"`.
//! [`Metrics::encode`] renders them in the OpenMetrics text format (as
//! `prometheus-client` encodes it, ending with `# EOF`), and [`serve`]
//! answers `GET /metrics` with that text.
//!
//! # Metrics
//!
//! | Name | Type | Labels | What it counts |
//! |------|------|--------|----------------|
//! | `paxos_requests_total` | counter | `op`, `result` (`ok` or `error`) | client requests finished, by operation and outcome ([`Metrics::request`]) |
//! | `paxos_request_duration_seconds` | histogram | `op` | latency of finished client requests, in seconds; 18 exponential buckets from 50 µs to 10 s ([`Metrics::request`]) |
//! | `paxos_client_connections` | gauge | | client connections open now ([`Metrics::connection_opened`], [`Metrics::connection_closed`]) |
//! | `paxos_is_leader` | gauge | | 1 while the node believes it is the leader, else 0 ([`NodeSample::is_leader`]) |
//! | `paxos_decided_slots` | gauge | | slots the node knows are decided ([`NodeSample::decided`]) |
//! | `paxos_applied_slots` | gauge | | slots the node has applied ([`NodeSample::applied`]) |
//! | `paxos_commits_total` | counter | | commands applied ([`NodeSample::commits`]) |
//! | `paxos_syncs_total` | counter | | `fdatasync` calls ([`NodeSample::syncs`]) |
//! | `paxos_leader_changes_total` | counter | | times the node saw the leader change ([`NodeSample::elections`]) |
//! | `paxos_dropped_messages_total` | counter | `reason` | messages dropped, by reason ([`NodeSample::drops`]) |
//!
//! `op` is the request's operation: `ask`, `put`, `get`, `delete`, `cas`,
//! `status` or `session`. The histogram is exported as the usual
//! `paxos_request_duration_seconds_bucket{le=...}`, `_sum` and `_count`
//! series.
//!
//! The node's own counters are totals since it started; [`Metrics::observe_node`]
//! mirrors them, so each exported counter equals the latest total reported
//! (the highest, should a total ever go backwards), never a sum of samples.
//!
//! # The endpoint
//!
//! [`serve`] speaks just enough HTTP/1.1 for a scraper: it reads the
//! request's head (up to the blank line ending the headers), answers
//! `GET /metrics` (a query string is ignored) with `200 OK` and the
//! exposition, any other well-formed request with `404 Not Found`, a
//! malformed request line with `400 Bad Request`, and then closes the
//! connection. A head longer than 8 KiB or not complete within 5 s closes
//! the connection without an answer. At most 64 connections are served at
//! once; further ones are closed as soon as they are accepted.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets_range, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Every metric a node exports. Cheap to clone (an [`Arc`] inside); all
/// methods take `&self` and are safe from any thread.
///
/// The metric names are listed in the [module docs](self).
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

/// The registry and handles on the metrics registered in it (each handle
/// shares its value with the registry's copy).
#[derive(Debug)]
struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OpLabels, Histogram>,
    connections: Gauge,
    is_leader: Gauge,
    decided: Gauge<u64, AtomicU64>,
    applied: Gauge<u64, AtomicU64>,
    commits: Counter,
    syncs: Counter,
    leader_changes: Counter,
    drops: Family<ReasonLabels, Counter>,
}

/// Labels of `paxos_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    op: &'static str,
    result: &'static str,
}

/// Labels of `paxos_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

/// Labels of `paxos_dropped_messages_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// What the node reports, sampled periodically by the service and given to
/// [`Metrics::observe_node`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeSample {
    /// Whether the node believes it is the leader: gauge `paxos_is_leader`
    /// (1 or 0).
    pub is_leader: bool,
    /// Slots the node knows are decided: gauge `paxos_decided_slots`.
    pub decided: u64,
    /// Slots the node has applied: gauge `paxos_applied_slots`.
    pub applied: u64,
    /// Total commands applied since the node started: counter
    /// `paxos_commits_total`.
    pub commits: u64,
    /// Total `fdatasync` calls since the node started: counter
    /// `paxos_syncs_total`.
    pub syncs: u64,
    /// Times the node saw the leader change since it started: counter
    /// `paxos_leader_changes_total`.
    pub elections: u64,
    /// Messages dropped since the node started, as `(reason, total)`:
    /// counter family `paxos_dropped_messages_total{reason="..."}`. A reason
    /// missing from a later sample keeps its last total.
    pub drops: Vec<(String, u64)>,
}

impl Metrics {
    /// Creates the metrics, registered under the prefix `paxos`, with a
    /// constant label `node="<id>"`.
    pub fn new(node: u8) -> Metrics {
        let mut registry =
            Registry::with_prefix_and_labels("paxos", std::iter::once(("node".into(), node.to_string().into())));
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Client requests finished, by operation (op) and outcome (result: ok or error)",
            requests.clone(),
        );
        let latency = Family::<OpLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "request_duration",
            "Latency of finished client requests, by operation (op)",
            Unit::Seconds,
            latency.clone(),
        );
        let connections = Gauge::default();
        registry.register("client_connections", "Client connections open now", connections.clone());
        let is_leader = Gauge::default();
        registry.register(
            "is_leader",
            "1 while this node believes it is the leader, else 0",
            is_leader.clone(),
        );
        let decided = Gauge::<u64, AtomicU64>::default();
        registry.register("decided_slots", "Slots this node knows are decided", decided.clone());
        let applied = Gauge::<u64, AtomicU64>::default();
        registry.register("applied_slots", "Slots this node has applied", applied.clone());
        let commits = Counter::default();
        registry.register("commits", "Commands applied", commits.clone());
        let syncs = Counter::default();
        registry.register("syncs", "fdatasync calls", syncs.clone());
        let leader_changes = Counter::default();
        registry.register(
            "leader_changes",
            "Times this node saw the leader change",
            leader_changes.clone(),
        );
        let drops = Family::<ReasonLabels, Counter>::default();
        registry.register("dropped_messages", "Messages dropped, by reason", drops.clone());
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                connections,
                is_leader,
                decided,
                applied,
                commits,
                syncs,
                leader_changes,
                drops,
            }),
        }
    }

    /// A client request finished: `op` is one of `"ask"`, `"put"`, `"get"`,
    /// `"delete"`, `"cas"`, `"status"`, `"session"` (the `op` label), `ok`
    /// whether it succeeded (the `result` label, `ok` or `error`), `seconds`
    /// its latency, observed in the `op`'s histogram (buckets from 50 µs to
    /// 10 s, exponential).
    ///
    /// A negative latency is observed as 0; a latency that is not finite is
    /// counted as a request but not observed, so it cannot spoil the
    /// histogram's sum.
    pub fn request(&self, op: &'static str, ok: bool, seconds: f64) {
        let result = if ok { "ok" } else { "error" };
        self.inner.requests.get_or_create(&RequestLabels { op, result }).inc();
        if seconds.is_finite() {
            self.inner
                .latency
                .get_or_create(&OpLabels { op })
                .observe(seconds.max(0.0));
        }
    }

    /// Sets the gauges and counters that mirror the node's own counters.
    ///
    /// The gauges take the sample's values. The node's monotonic counters
    /// come as totals since it started: each exported counter is raised to
    /// its total, so it equals the latest total and samples are never
    /// summed. A total lower than the exported counter (which a node
    /// restarted under the same [`Metrics`] could report) leaves the
    /// counter where it is, as a counter cannot go down.
    pub fn observe_node(&self, sample: &NodeSample) {
        let inner = &self.inner;
        inner.is_leader.set(i64::from(sample.is_leader));
        inner.decided.set(sample.decided);
        inner.applied.set(sample.applied);
        mirror(&inner.commits, sample.commits);
        mirror(&inner.syncs, sample.syncs);
        mirror(&inner.leader_changes, sample.elections);
        for (reason, total) in &sample.drops {
            mirror(
                &inner.drops.get_or_create(&ReasonLabels { reason: reason.clone() }),
                *total,
            );
        }
    }

    /// A client connection was opened: `paxos_client_connections` goes up by
    /// one.
    pub fn connection_opened(&self) {
        self.inner.connections.inc();
    }

    /// A client connection was closed: `paxos_client_connections` goes down
    /// by one.
    pub fn connection_closed(&self) {
        self.inner.connections.dec();
    }

    /// The text exposition of every metric (OpenMetrics text format as
    /// `prometheus-client` encodes it, ending with `# EOF`).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.inner.registry).is_err() {
            // Writing to a String does not fail; an encoder error would
            // mean a metric the text format cannot express.
            tracing::error!("metrics: the exposition could not be encoded");
        }
        text
    }
}

/// A latency histogram, with the [`latency_buckets`].
fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// The upper bounds of the latency buckets, in seconds: 18 exponential
/// bounds from 50 µs to 10 s (each about twice the last), rounded to two
/// significant digits so that the `le` labels read well.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets_range(50e-6, 10.0, 18).map(|bound| format!("{bound:.1e}").parse().unwrap_or(bound))
}

/// Raises `counter` to `total`, a total kept by the node: the counter then
/// equals the highest total reported, whatever the order or the number of
/// the calls, and is never a sum of totals.
fn mirror(counter: &Counter, total: u64) {
    counter.inner().fetch_max(total, Ordering::Relaxed);
}

/// Bounds on the metrics endpoint.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// Longest request head (request line and headers, with the blank line
    /// ending them), in bytes.
    head_bytes: usize,
    /// How long a client has to send its request head, and then to take
    /// the answer.
    timeout: Duration,
    /// Connections served at once.
    connections: usize,
}

/// The bounds [`serve`] applies.
const LIMITS: Limits = Limits {
    head_bytes: 8 * 1024,
    timeout: Duration::from_secs(5),
    connections: 64,
};

/// The content type of the exposition.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the error answers.
const TEXT: &str = "text/plain; charset=utf-8";

/// Serves `metrics` on `addr` as `GET /metrics` (anything else: 404; a
/// request line longer than 8 KiB or slower than 5 s: the connection is
/// closed) on the current tokio runtime. Returns the bound address (so
/// tests can bind port 0). One task per connection, connections bounded at
/// 64 concurrent (extra ones closed at once).
///
/// The listener is bound before this returns, so a scrape right after it
/// succeeds; the server runs until the runtime shuts down. See the
/// [module docs](self#the-endpoint) for the details.
///
/// # Errors
///
/// Binding `addr` failed.
pub async fn serve(addr: SocketAddr, metrics: Metrics) -> io::Result<SocketAddr> {
    serve_with(addr, metrics, LIMITS).await
}

/// [`serve`] with the given bounds.
async fn serve_with(addr: SocketAddr, metrics: Metrics, limits: Limits) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(accept(listener, metrics, limits));
    Ok(local)
}

/// Accepts connections for ever, one task each, closing those beyond
/// `limits.connections`.
async fn accept(listener: TcpListener, metrics: Metrics, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.connections));
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::debug!(%peer, "metrics: too many connections, closing one");
                    drop(stream);
                    continue;
                };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    handle(stream, &metrics, limits).await;
                    drop(slot);
                });
            }
            Err(error) => {
                tracing::warn!(%error, "metrics: accept failed");
                // Out of file descriptors, say: give connections time to
                // close rather than spin on the error.
                if !matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
                ) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Serves one connection: one request, one answer, then close.
async fn handle(mut stream: TcpStream, metrics: &Metrics, limits: Limits) {
    let head = match tokio::time::timeout(limits.timeout, read_head(&mut stream, limits.head_bytes)).await {
        Ok(Some(head)) => head,
        // Too slow, too long, closed early or failed: close.
        Ok(None) | Err(_) => return,
    };
    let answer = answer(&head, metrics);
    let write = async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(limits.timeout, write).await;
}

/// Reads the request head, up to and without the `\r\n\r\n` ending it.
/// `None` if the head is longer than `limit` bytes (ending included), or
/// the stream ends or fails first.
async fn read_head(stream: &mut TcpStream, limit: usize) -> Option<Vec<u8>> {
    const END: &[u8] = b"\r\n\r\n";
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        // The end may straddle the previous read and this one.
        let from = head.len().saturating_sub(END.len() - 1);
        head.extend_from_slice(chunk.get(..read)?);
        if let Some(at) = head.get(from..)?.windows(END.len()).position(|w| w == END) {
            let len = from + at;
            if len + END.len() > limit {
                return None;
            }
            head.truncate(len);
            return Some(head);
        }
        if head.len() >= limit {
            return None;
        }
    }
}

/// The whole answer to the request whose head is `head`.
fn answer(head: &[u8], metrics: &Metrics) -> Vec<u8> {
    match request_line(head) {
        None => response("400 Bad Request", TEXT, b"bad request\n"),
        Some(("GET", target)) if target.split('?').next() == Some("/metrics") => {
            response("200 OK", OPENMETRICS, metrics.encode().as_bytes())
        }
        Some(_) => response("404 Not Found", TEXT, b"not found\n"),
    }
}

/// The method and target of the request line opening `head`, if it is one:
/// `METHOD SP /target SP HTTP/1.x`.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line.strip_suffix(b"\r").unwrap_or(line)).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let well_formed = parts.next().is_none()
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && target.starts_with('/')
        && matches!(version, "HTTP/1.0" | "HTTP/1.1");
    well_formed.then_some((method, target))
}

/// An HTTP/1.1 answer closing the connection.
fn response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// The value of the one sample of `text` named `name` whose labels
    /// include `labels`.
    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if series_name != name {
                continue;
            }
            let pairs: Vec<String> = series_labels.split(',').map(str::to_owned).collect();
            if labels.iter().all(|(k, v)| pairs.contains(&format!("{k}=\"{v}\""))) {
                assert!(found.is_none(), "two samples of {name} match {labels:?}:\n{text}");
                found = Some(value.parse().expect("a sample's value"));
            }
        }
        found
    }

    #[test]
    fn requests_are_counted_by_op_and_result() {
        let metrics = Metrics::new(3);
        metrics.request("put", true, 0.001);
        metrics.request("put", true, 0.002);
        metrics.request("put", false, 0.5);
        metrics.request("get", true, 0.000_01);
        let text = metrics.encode();
        let count = |op, result| {
            sample(
                &text,
                "paxos_requests_total",
                &[("node", "3"), ("op", op), ("result", result)],
            )
        };
        assert_eq!(count("put", "ok"), Some(2.0), "{text}");
        assert_eq!(count("put", "error"), Some(1.0), "{text}");
        assert_eq!(count("get", "ok"), Some(1.0), "{text}");
        assert_eq!(count("get", "error"), None, "{text}");
        assert!(text.contains("# TYPE paxos_requests counter"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn latencies_go_to_the_op_histogram() {
        let metrics = Metrics::new(1);
        metrics.request("put", true, 0.001);
        metrics.request("put", false, 0.5);
        metrics.request("put", true, 20.0);
        metrics.request("get", true, 0.000_01);
        metrics.request("get", true, f64::NAN);
        metrics.request("get", true, -1.0);
        let text = metrics.encode();
        let name = "paxos_request_duration_seconds";
        assert!(text.contains(&format!("# TYPE {name} histogram")), "{text}");
        assert!(text.contains(&format!("# UNIT {name} seconds")), "{text}");
        let put = [("node", "1"), ("op", "put")];
        assert_eq!(sample(&text, &format!("{name}_count"), &put), Some(3.0), "{text}");
        assert_eq!(sample(&text, &format!("{name}_sum"), &put), Some(20.501), "{text}");
        let bucket = |op, le| sample(&text, &format!("{name}_bucket"), &[("op", op), ("le", le)]);
        // Buckets are cumulative: 1 ms is below 1.8 ms, 0.5 s below 0.57 s,
        // 20 s above the last bound, 10 s.
        assert_eq!(bucket("put", "0.0018"), Some(1.0), "{text}");
        assert_eq!(bucket("put", "0.57"), Some(2.0), "{text}");
        assert_eq!(bucket("put", "10.0"), Some(2.0), "{text}");
        assert_eq!(bucket("put", "+Inf"), Some(3.0), "{text}");
        // The NaN was counted as a request but not observed; -1 s as 0.
        assert_eq!(
            sample(&text, "paxos_requests_total", &[("op", "get")]),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, &format!("{name}_count"), &[("op", "get")]),
            Some(2.0),
            "{text}"
        );
        assert_eq!(bucket("get", "0.00005"), Some(2.0), "{text}");
    }

    #[test]
    fn latency_buckets_run_from_50_microseconds_to_10_seconds() {
        let bounds: Vec<f64> = latency_buckets().collect();
        assert_eq!(bounds.first(), Some(&50e-6));
        assert_eq!(bounds.last(), Some(&10.0));
        for pair in bounds.windows(2) {
            let ratio = pair[1] / pair[0];
            assert!((1.8..2.3).contains(&ratio), "{bounds:?}");
        }
    }

    #[test]
    fn node_totals_are_mirrored_not_summed() {
        let metrics = Metrics::new(2);
        let first = NodeSample {
            is_leader: true,
            decided: 10,
            applied: 9,
            commits: 5,
            syncs: 2,
            elections: 1,
            drops: vec![],
        };
        metrics.observe_node(&first);
        let second = NodeSample {
            is_leader: false,
            decided: 20,
            applied: 18,
            commits: 12,
            syncs: 3,
            elections: 1,
            drops: vec![],
        };
        metrics.observe_node(&second);
        let text = metrics.encode();
        let value = |name| sample(&text, name, &[("node", "2")]);
        assert_eq!(value("paxos_commits_total"), Some(12.0), "{text}");
        assert_eq!(value("paxos_syncs_total"), Some(3.0), "{text}");
        assert_eq!(value("paxos_leader_changes_total"), Some(1.0), "{text}");
        assert_eq!(value("paxos_decided_slots"), Some(20.0), "{text}");
        assert_eq!(value("paxos_applied_slots"), Some(18.0), "{text}");
        assert_eq!(value("paxos_is_leader"), Some(0.0), "{text}");
        assert!(text.contains("# TYPE paxos_commits counter"), "{text}");
        assert!(text.contains("# TYPE paxos_decided_slots gauge"), "{text}");

        // The same sample again changes nothing; a lower total does not
        // lower a counter.
        metrics.observe_node(&second);
        metrics.observe_node(&NodeSample {
            commits: 4,
            is_leader: true,
            ..second.clone()
        });
        let text = metrics.encode();
        assert_eq!(sample(&text, "paxos_commits_total", &[]), Some(12.0), "{text}");
        assert_eq!(sample(&text, "paxos_syncs_total", &[]), Some(3.0), "{text}");
        assert_eq!(sample(&text, "paxos_is_leader", &[]), Some(1.0), "{text}");
    }

    #[test]
    fn drops_are_exported_by_reason() {
        let metrics = Metrics::new(4);
        let drops = |pairs: &[(&str, u64)]| NodeSample {
            drops: pairs
                .iter()
                .map(|&(reason, total)| (reason.to_owned(), total))
                .collect(),
            ..NodeSample::default()
        };
        metrics.observe_node(&drops(&[("stale_ballot", 3), ("queue_full", 1)]));
        metrics.observe_node(&drops(&[("stale_ballot", 7), ("bad \"peer\"", 2)]));
        let text = metrics.encode();
        let dropped = |reason| {
            sample(
                &text,
                "paxos_dropped_messages_total",
                &[("node", "4"), ("reason", reason)],
            )
        };
        assert_eq!(dropped("stale_ballot"), Some(7.0), "{text}");
        // Missing from the second sample: keeps its total.
        assert_eq!(dropped("queue_full"), Some(1.0), "{text}");
        // Quotes in a reason are escaped.
        assert_eq!(dropped("bad \\\"peer\\\""), Some(2.0), "{text}");
    }

    #[test]
    fn connections_and_clones_share_the_metrics() {
        let metrics = Metrics::new(5);
        let clone = metrics.clone();
        let thread = std::thread::spawn(move || {
            clone.connection_opened();
            clone.connection_opened();
            clone.connection_opened();
        });
        thread.join().expect("the thread");
        metrics.connection_closed();
        let text = metrics.encode();
        assert_eq!(
            sample(&text, "paxos_client_connections", &[("node", "5")]),
            Some(2.0),
            "{text}"
        );
    }

    /// Sends `request` on a new connection to `addr`, closes the sending
    /// side and returns all it reads until the server closes (what was read
    /// so far if the connection fails: a server closing with unread data
    /// resets it).
    async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let _ = stream.write_all(request).await;
        let _ = stream.shutdown().await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), read_all(&mut stream, &mut answer)).await;
        assert!(read.is_ok(), "the server did not close the connection");
        answer
    }

    /// Reads until the end of the stream or an error.
    async fn read_all(stream: &mut TcpStream, into: &mut Vec<u8>) {
        let mut chunk = [0u8; 4096];
        while let Ok(read @ 1..) = stream.read(&mut chunk).await {
            into.extend_from_slice(&chunk[..read]);
        }
    }

    /// The status line, the headers (lower-case names) and the body of an
    /// HTTP answer.
    fn parse(answer: &[u8]) -> (String, Vec<(String, String)>, String) {
        let text = String::from_utf8(answer.to_vec()).expect("an UTF-8 answer");
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
        let mut lines = head.split("\r\n");
        let status = lines.next().expect("a status line").to_owned();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(": ").expect("a header");
                (name.to_ascii_lowercase(), value.to_owned())
            })
            .collect();
        (status, headers, body.to_owned())
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    const GOOD: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";

    #[tokio::test]
    async fn endpoint_serves_the_exposition() {
        let metrics = Metrics::new(6);
        metrics.request("cas", true, 0.01);
        let addr = serve("127.0.0.1:0".parse().unwrap(), metrics.clone())
            .await
            .expect("serve");

        let (status, headers, body) = parse(&exchange(addr, GOOD).await);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(header(&headers, "content-type"), Some(OPENMETRICS));
        assert_eq!(header(&headers, "connection"), Some("close"));
        assert_eq!(
            header(&headers, "content-length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(
            sample(
                &body,
                "paxos_requests_total",
                &[("node", "6"), ("op", "cas"), ("result", "ok")]
            ),
            Some(1.0)
        );
        assert!(body.ends_with("# EOF\n"), "{body}");

        // The answer is the exposition of the moment.
        metrics.request("cas", true, 0.01);
        let (status, _, body) = parse(&exchange(addr, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").await);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(sample(&body, "paxos_requests_total", &[("op", "cas")]), Some(2.0));
    }

    #[tokio::test]
    async fn endpoint_answers_404_to_anything_else() {
        let addr = serve("127.0.0.1:0".parse().unwrap(), Metrics::new(0))
            .await
            .expect("serve");
        for request in [
            &b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET /metricsx HTTP/1.1\r\n\r\n",
            b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        ] {
            let (status, headers, body) = parse(&exchange(addr, request).await);
            assert_eq!(status, "HTTP/1.1 404 Not Found", "{}", String::from_utf8_lossy(request));
            assert_eq!(
                header(&headers, "content-length"),
                Some(body.len().to_string().as_str())
            );
        }
    }

    #[tokio::test]
    async fn endpoint_closes_on_garbage_and_keeps_serving() {
        let addr = serve("127.0.0.1:0".parse().unwrap(), Metrics::new(0))
            .await
            .expect("serve");

        // Malformed request lines: 400, then closed.
        for garbage in [
            &b"\r\n\r\n"[..],
            b"hello\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2.0\r\n\r\n",
            b"\xff\xfe\x00GET /metrics HTTP/1.1\r\n\r\n",
            b"GET /m\xc3\x28 HTTP/1.1\r\n\r\n",
        ] {
            let (status, _, _) = parse(&exchange(addr, garbage).await);
            assert_eq!(
                status,
                "HTTP/1.1 400 Bad Request",
                "{:?}",
                String::from_utf8_lossy(garbage)
            );
        }

        // Over-long request line, with and without an end: closed unanswered.
        let mut long = b"GET /".to_vec();
        long.resize(9 * 1024, b'a');
        assert!(exchange(addr, &long).await.is_empty());
        long.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert!(exchange(addr, &long).await.is_empty());
        let binary: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(7919) % 251) as u8).collect();
        assert!(exchange(addr, &binary).await.is_empty());
        // Closed before the end of the head: nothing to answer.
        assert!(exchange(addr, b"GET /metrics HTTP/1.1\r\n").await.is_empty());

        // The server still serves.
        let (status, _, body) = parse(&exchange(addr, GOOD).await);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(body.ends_with("# EOF\n"));
    }

    #[tokio::test]
    async fn endpoint_closes_slow_clients() {
        let limits = Limits {
            timeout: Duration::from_millis(200),
            ..LIMITS
        };
        let addr = serve_with("127.0.0.1:0".parse().unwrap(), Metrics::new(0), limits)
            .await
            .expect("serve");
        let started = Instant::now();
        let mut slow = TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET /metrics HTTP/1.1\r\n").await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), read_all(&mut slow, &mut answer))
            .await
            .expect("closed");
        assert!(answer.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(200));

        let (status, _, _) = parse(&exchange(addr, GOOD).await);
        assert_eq!(status, "HTTP/1.1 200 OK");
    }

    #[tokio::test]
    async fn endpoint_closes_connections_beyond_the_bound() {
        let limits = Limits {
            connections: 1,
            timeout: Duration::from_secs(30),
            ..LIMITS
        };
        let addr = serve_with("127.0.0.1:0".parse().unwrap(), Metrics::new(0), limits)
            .await
            .expect("serve");
        // Holds the one slot (accepted first: the backlog is in order).
        let idle = TcpStream::connect(addr).await.expect("connect");
        let started = Instant::now();
        assert!(exchange(addr, GOOD).await.is_empty());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "closed at once, not timed out"
        );

        // The slot is free again once the idle connection is gone.
        drop(idle);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let answer = exchange(addr, GOOD).await;
            if !answer.is_empty() {
                assert_eq!(parse(&answer).0, "HTTP/1.1 200 OK");
                break;
            }
            assert!(Instant::now() < deadline, "the slot was never released");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn request_lines_are_parsed_without_panicking() {
        assert_eq!(request_line(b"GET /metrics HTTP/1.1"), Some(("GET", "/metrics")));
        assert_eq!(
            request_line(b"GET /metrics HTTP/1.1\r\nHost: x"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(request_line(b"HEAD /x HTTP/1.0\nHost: x"), Some(("HEAD", "/x")));
        for bad in [
            &b""[..],
            b"\r",
            b"\n",
            b" ",
            b"GET",
            b"GET /",
            b"GET / HTTP/1.1 ",
            b"\xff / HTTP/1.1",
        ] {
            assert_eq!(request_line(bad), None, "{bad:?}");
        }
    }
}
