//! The replicated store as a service, through real `paxos node` processes:
//! the Rust client's exactly-once writes through a SIGKILLed leader; a
//! session write retried by hand through every node; a pipelined binary
//! connection; hostile clients; and the operator's commands (keygen, TOML
//! configuration, put/get/cas/del, the status table, metrics, a node with
//! the wrong key).

mod process;

use paxos_service::cluster::{CallError, Client, ClientOptions};
use paxos_service::protocol::{self, ErrorKind, Frame, Reply, Request, SizeLimits, MAGIC};
use paxos_service::server::{FRAME_TIMEOUT, MAX_IN_FLIGHT, MAX_LINE};
use paxos_service::store::{Command, Output};
use paxos_service::BlockingClient;
use paxos_std::runtime::SessionTag;
use process::cluster::Cluster;
use process::{free_tcp, run_paxos, status_binary, wait_for};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, ErrorKind as IoKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The frame limit of nodes with the default sizes (as the cluster's are).
const MAX_FRAME: usize = SizeLimits::DEFAULT.max_frame();

// ---------------------------------------------------------------------------
// Speaking the binary protocol by hand
// ---------------------------------------------------------------------------

/// A binary-protocol connection, spoken by hand.
struct Wire {
    stream: TcpStream,
    node: SocketAddr,
}

impl Wire {
    /// Connects to `node` and sends the magic.
    fn open(node: SocketAddr) -> Wire {
        let mut stream = TcpStream::connect_timeout(&node, Duration::from_secs(3))
            .unwrap_or_else(|e| panic!("connect to {node}: {e}"));
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write_all(&MAGIC).expect("send the magic");
        Wire { stream, node }
    }

    fn frame(id: u64, body: Request) -> Vec<u8> {
        protocol::encode(&Frame { id, body }, MAX_FRAME).expect("a request encodes")
    }

    fn send(&mut self, id: u64, body: Request) {
        let bytes = Self::frame(id, body);
        self.stream.write_all(&bytes).expect("send a frame");
    }

    /// The next reply frame (within the read timeout).
    fn recv(&mut self) -> std::io::Result<Frame<Reply>> {
        let mut prefix = [0u8; 4];
        self.stream.read_exact(&mut prefix)?;
        let len = protocol::frame_len(prefix, MAX_FRAME).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body)?;
        protocol::decode::<Reply>(&body).map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// Sends `body` as request `id` and waits for the reply with that id.
    fn call(&mut self, id: u64, body: Request) -> Reply {
        self.send(id, body);
        let frame = self
            .recv()
            .unwrap_or_else(|e| panic!("no reply to request {id} from {}: {e}", self.node));
        assert_eq!(
            frame.id, id,
            "a reply for id {} while only {id} is in flight: {:?}",
            frame.id, frame.body
        );
        frame.body
    }

    /// [`Wire::call`], repeated (bounded) while the node answers with an
    /// error a client may retry as it is (an election in progress).
    fn call_retrying(&mut self, id: u64, body: Request) -> Reply {
        let deadline = Instant::now() + Duration::from_secs(15);
        for _ in 0..100 {
            match self.call(id, body.clone()) {
                Reply::Error(e) if e.kind.retryable() && Instant::now() < deadline => {
                    eprintln!("{}: retrying request {id} after {e}", self.node);
                    std::thread::sleep(Duration::from_millis(100));
                }
                reply => return reply,
            }
        }
        panic!("request {id} to {} kept failing", self.node);
    }
}

/// How a connection ended while draining it.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum End {
    /// The node closed it (FIN).
    Eof,
    /// The node reset it (closed with our bytes unread).
    Reset,
    /// Still open when the time was up.
    Open,
}

/// Reads everything the node sends on `stream` until it closes the
/// connection or `limit` passes.
fn drain(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, End) {
    let start = Instant::now();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    for _ in 0..100_000 {
        let left = match limit.checked_sub(start.elapsed()) {
            Some(left) if !left.is_zero() => left,
            _ => return (bytes, End::Open),
        };
        stream
            .set_read_timeout(Some(left.min(Duration::from_millis(500))))
            .unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return (bytes, End::Eof),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), IoKind::WouldBlock | IoKind::TimedOut | IoKind::Interrupted) => {}
            Err(e) if matches!(e.kind(), IoKind::ConnectionReset | IoKind::ConnectionAborted) => {
                return (bytes, End::Reset)
            }
            Err(e) => panic!("reading a connection: {e}"),
        }
    }
    (bytes, End::Open)
}

/// The reply frames in `bytes` (all of them whole).
fn frames(bytes: &[u8]) -> Vec<Frame<Reply>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        assert!(rest.len() >= 4, "a partial length prefix from the node: {rest:?}");
        let len = protocol::frame_len(rest[..4].try_into().unwrap(), MAX_FRAME).expect("a node frame within MAX_FRAME");
        assert!(rest.len() >= 4 + len, "a partial frame from the node");
        out.push(protocol::decode::<Reply>(&rest[4..4 + len]).expect("a node frame decodes"));
        rest = &rest[4 + len..];
    }
    out
}

fn put(key: &str, value: &str) -> Command {
    Command::Put {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    }
}

fn bytes(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

/// One JSON line-protocol exchange on an open connection.
fn json_line(stream: &mut BufReader<TcpStream>, line: &str) -> serde_json::Value {
    stream.get_mut().write_all(line.as_bytes()).expect("send a JSON line");
    stream.get_mut().write_all(b"\n").expect("send a JSON line");
    let mut reply = String::new();
    stream.read_line(&mut reply).expect("a JSON reply line");
    serde_json::from_str(reply.trim_end()).unwrap_or_else(|e| panic!("reply {reply:?} is not JSON: {e}"))
}

fn json_connect(node: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect_timeout(&node, Duration::from_secs(3)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(stream)
}

/// A client of `nodes` only.
fn blocking_client(nodes: &[SocketAddr]) -> BlockingClient {
    let mut options = ClientOptions::new(nodes.to_vec());
    options.request_timeout = Duration::from_secs(15);
    BlockingClient::connect(options).expect("a client connects")
}

// ---------------------------------------------------------------------------
// 1. The Rust client through SIGKILL of the leader, under load
// ---------------------------------------------------------------------------

const COUNTER: &[u8] = b"counter";

/// What one load task did.
#[derive(Default, Debug)]
struct TaskLog {
    /// Puts acknowledged: key and value.
    puts: Vec<(String, String)>,
    /// Compare-and-sets that returned ok = true.
    increments: u64,
    /// Compare-and-sets that returned ok = false (lost a race).
    conflicts: u64,
    /// Calls that returned an error, or an output that is wrong.
    errors: Vec<String>,
    /// The longest a call took (retries through the failover included).
    slowest: Duration,
}

/// One task: puts of its own keys and increments of the shared counter,
/// alternately, until `stop`.
async fn load_task(task: usize, client: Client, stop: Arc<AtomicBool>, acked: Arc<AtomicU64>) -> TaskLog {
    let mut log = TaskLog::default();
    let hard_deadline = Instant::now() + Duration::from_secs(25);
    // The counter's value as this task last saw it.
    let mut seen: Option<Vec<u8>> = None;
    for i in 0..1_000_000u64 {
        if stop.load(Ordering::Relaxed) || Instant::now() >= hard_deadline || log.errors.len() > 10 {
            break;
        }
        let key = format!("t{task}-{i}");
        let value = format!("v{task}-{i}-{}", i * 7919 % 1000);
        let started = Instant::now();
        let result = client.put(key.as_bytes(), value.as_bytes()).await;
        log.slowest = log.slowest.max(started.elapsed());
        match result {
            Ok(None) => {
                log.puts.push((key, value));
                acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Some(previous)) => log.errors.push(format!(
                "put {key}: previous {:?} for a fresh key (applied twice?)",
                String::from_utf8_lossy(&previous)
            )),
            Err(e) => log.errors.push(format!("put {key}: {e}")),
        }
        // Increment: compare-and-set from the value last seen, retried
        // with the current value on a lost race (bounded).
        for _ in 0..10_000 {
            let n = match &seen {
                None => 0u64,
                Some(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(u64::MAX),
            };
            if n == u64::MAX {
                log.errors.push(format!("counter holds {:?}", seen));
                break;
            }
            let new = (n + 1).to_string();
            let started = Instant::now();
            let result = client.cas(COUNTER, seen.as_deref(), Some(new.as_bytes())).await;
            log.slowest = log.slowest.max(started.elapsed());
            match result {
                Ok(o) if o.ok => {
                    acked.fetch_add(1, Ordering::Relaxed);
                    if o.current.as_deref() != Some(new.as_bytes()) {
                        log.errors.push(format!("cas ok but current {:?}", o.current));
                    }
                    log.increments += 1;
                    seen = o.current;
                    break;
                }
                Ok(o) => {
                    log.conflicts += 1;
                    seen = o.current;
                }
                Err(e) => {
                    log.errors.push(format!("cas {n}->{new}: {e}"));
                    break;
                }
            }
        }
    }
    log
}

/// Reads every key of `keys` from the node at `node` alone (linearizable
/// gets through a client of that node only, 16 at a time); returns the
/// values in order.
async fn read_all(node: SocketAddr, keys: Arc<Vec<String>>) -> Vec<Result<Option<Vec<u8>>, CallError>> {
    let mut options = ClientOptions::new(vec![node]);
    options.request_timeout = Duration::from_secs(10);
    let client = Client::connect(options).await.expect("a client of one node");
    const READERS: usize = 16;
    let mut handles = Vec::new();
    for r in 0..READERS {
        let (client, keys) = (client.clone(), Arc::clone(&keys));
        handles.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for (n, key) in keys.iter().enumerate().filter(|(n, _)| n % READERS == r) {
                out.push((n, client.get(key.as_bytes()).await));
            }
            out
        }));
    }
    let mut values: Vec<Option<Result<Option<Vec<u8>>, CallError>>> = keys.iter().map(|_| None).collect();
    for h in handles {
        for (n, v) in h.await.expect("a reader panicked") {
            values[n] = Some(v);
        }
    }
    values.into_iter().map(|v| v.expect("every key read")).collect()
}

#[test]
fn client_writes_survive_sigkill_of_the_leader_under_load() {
    let t0 = Instant::now();
    let mut cluster = Cluster::started(3);
    let leader = cluster.wait_leader(None, Duration::from_secs(10));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let client = rt
        .block_on(Client::connect(ClientOptions::new(cluster.clients.clone())))
        .expect("the client connects");
    eprintln!(
        "{:5.1}s leader node {}; load starts",
        t0.elapsed().as_secs_f64(),
        leader + 1
    );

    const TASKS: usize = 8;
    let stop = Arc::new(AtomicBool::new(false));
    // Stops the tasks even when an assertion below fails.
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let _stop_guard = Stop(Arc::clone(&stop));
    // Puts and increments acknowledged so far, over all tasks.
    let acked = Arc::new(AtomicU64::new(0));
    let load_start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| rt.spawn(load_task(t, client.clone(), Arc::clone(&stop), Arc::clone(&acked))))
        .collect();
    // Waits (bounded) until 50 more writes are acknowledged.
    let progress = |what: &str| {
        let from = acked.load(Ordering::Relaxed);
        let moved = wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
            (acked.load(Ordering::Relaxed) >= from + 50).then_some(())
        });
        assert!(
            moved.is_some(),
            "{what}: fewer than 50 writes acknowledged in 10 s (from {from})"
        );
    };
    let sleep_until = |at: Duration| {
        if let Some(left) = at.checked_sub(load_start.elapsed()) {
            std::thread::sleep(left);
        }
    };

    sleep_until(Duration::from_secs(2));
    progress("before the kill");
    let before_kill = acked.load(Ordering::Relaxed);
    cluster.kill(leader);
    eprintln!(
        "{:5.1}s SIGKILLed the leader, node {}",
        t0.elapsed().as_secs_f64(),
        leader + 1
    );
    let second = cluster.wait_leader(Some(leader), Duration::from_secs(10));
    eprintln!("{:5.1}s new leader: node {}", t0.elapsed().as_secs_f64(), second + 1);
    progress("with the leader dead");

    sleep_until(Duration::from_secs(5));
    cluster.start(leader);
    eprintln!(
        "{:5.1}s restarted node {} ({} writes acknowledged while it was down)",
        t0.elapsed().as_secs_f64(),
        leader + 1,
        acked.load(Ordering::Relaxed) - before_kill
    );
    progress("after the restart");

    sleep_until(Duration::from_secs(8));
    stop.store(true, Ordering::Relaxed);
    let logs: Vec<TaskLog> = rt.block_on(async {
        let mut logs = Vec::new();
        for t in tasks {
            let log = tokio::time::timeout(Duration::from_secs(25), t)
                .await
                .expect("a load task did not finish within 25 s of stop")
                .expect("a load task panicked");
            logs.push(log);
        }
        logs
    });
    let puts: Vec<(String, String)> = logs.iter().flat_map(|l| l.puts.iter().cloned()).collect();
    let increments: u64 = logs.iter().map(|l| l.increments).sum();
    let conflicts: u64 = logs.iter().map(|l| l.conflicts).sum();
    let errors: Vec<&String> = logs.iter().flat_map(|l| &l.errors).collect();
    let slowest = logs.iter().map(|l| l.slowest).max().unwrap_or_default();
    eprintln!(
        "{:5.1}s load stopped: {} puts, {increments} increments ({conflicts} lost races), {} errors, \
         slowest call {slowest:?}",
        t0.elapsed().as_secs_f64(),
        puts.len(),
        errors.len()
    );
    assert!(
        errors.is_empty(),
        "client calls failed although a quorum lived throughout:\n{errors:#?}"
    );
    for (t, log) in logs.iter().enumerate() {
        assert!(
            log.puts.len() >= 20 && log.increments >= 5,
            "task {t} made too little progress: {} puts, {} increments",
            log.puts.len(),
            log.increments
        );
    }
    cluster.assert_alive();

    // Every node caught up; each holds every put and the counter.
    let statuses = cluster.wait_converged(Duration::from_secs(15));
    for s in &statuses {
        assert_eq!(
            s.keys as usize,
            puts.len() + 1,
            "node {} holds {} map keys; the clients were acknowledged {} puts and the counter",
            s.id,
            s.keys,
            puts.len()
        );
    }
    let mut keys: Vec<String> = puts.iter().map(|(k, _)| k.clone()).collect();
    keys.push(String::from_utf8(COUNTER.to_vec()).unwrap());
    let keys = Arc::new(keys);
    let reads: Vec<Vec<Result<Option<Vec<u8>>, CallError>>> = rt.block_on(async {
        let mut per_node = Vec::new();
        for &node in &cluster.clients {
            per_node.push(read_all(node, Arc::clone(&keys)).await);
        }
        per_node
    });
    for (i, node_reads) in reads.iter().enumerate() {
        for ((key, value), got) in puts.iter().zip(node_reads) {
            let got = got
                .as_ref()
                .unwrap_or_else(|e| panic!("node {} did not answer a get of {key}: {e}", i + 1));
            assert_eq!(
                got.as_deref(),
                Some(value.as_bytes()),
                "node {} reads {key} as {:?}, the client was acknowledged {value:?}",
                i + 1,
                got.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())
            );
        }
        let counter = node_reads.last().unwrap().as_ref().expect("the counter read");
        let counter: u64 = counter
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("node {} holds counter {counter:?}", i + 1));
        assert_eq!(
            counter,
            increments,
            "node {}: the counter is {counter} after {increments} acknowledged increments \
             (more: a retried compare-and-set applied twice; fewer: one acknowledged but lost)",
            i + 1
        );
    }
    drop(client);
    rt.shutdown_timeout(Duration::from_secs(2));
    cluster.assert_alive();
    let bad = cluster.bad_log_lines();
    assert!(bad.is_empty(), "errors in the node logs:\n{}", bad.join("\n"));
    eprintln!(
        "{:5.1}s done: {} keys and counter {increments} read alike on 3 nodes",
        t0.elapsed().as_secs_f64(),
        puts.len()
    );
}

// ---------------------------------------------------------------------------
// 2. A session write retried through every node applies once
// ---------------------------------------------------------------------------

#[test]
fn a_retried_session_write_applies_once_across_nodes() {
    let cluster = Cluster::started(3);
    cluster.wait_leader(None, Duration::from_secs(10));
    let mut wires: Vec<Wire> = cluster.clients.iter().map(|&n| Wire::open(n)).collect();

    let client = match wires[0].call_retrying(1, Request::OpenSession) {
        Reply::Session { client } => client,
        other => panic!("OpenSession answered {other:?}"),
    };
    let tag = |seq: u64, acked: u64| Some(SessionTag { client, seq, acked });
    let write = |command: Command, seq: u64| Request::Write {
        command,
        session: tag(seq, 0),
    };

    // Put k = "1" as request 0 through A, then the same request (same tag)
    // through B and through C: each gets the first output.
    let first = wires[0].call_retrying(2, write(put("k", "1"), 0));
    assert_eq!(first, Reply::Output(Output::Put { previous: None }), "the first put");
    for (i, wire) in wires.iter_mut().enumerate().skip(1) {
        let again = wire.call_retrying(3, write(put("k", "1"), 0));
        assert_eq!(
            again,
            first,
            "request 0 retried through node {} must get the first output",
            i + 1
        );
    }
    // The session's next put sees "1": the map holds one put of it.
    let next = wires[1].call_retrying(4, write(put("k", "2"), 1));
    assert_eq!(next, Reply::Output(Output::Put { previous: bytes("1") }));

    // A compare-and-set is not idempotent: applied twice, the second would
    // answer ok = false. Retried through the other nodes, it must answer as
    // the first did.
    let cas = Command::Cas {
        key: b"c".to_vec(),
        expected: None,
        new: bytes("x"),
    };
    let first = wires[0].call_retrying(5, write(cas.clone(), 2));
    let applied = Reply::Output(Output::Cas {
        ok: true,
        current: bytes("x"),
    });
    assert_eq!(first, applied, "the first compare-and-set");
    for (i, wire) in wires.iter_mut().enumerate().skip(1) {
        let again = wire.call_retrying(6, write(cas.clone(), 2));
        assert_eq!(again, applied, "the compare-and-set retried through node {}", i + 1);
    }
    // The same command as a new request (new number) does apply again, and
    // fails: that is what a double application would have looked like.
    let fresh = wires[2].call_retrying(7, write(cas.clone(), 3));
    assert_eq!(
        fresh,
        Reply::Output(Output::Cas {
            ok: false,
            current: bytes("x")
        }),
        "a new compare-and-set of an absent key that now exists"
    );

    // The same request sent through all three nodes at once: one output.
    let raced = Command::Cas {
        key: b"raced".to_vec(),
        expected: None,
        new: bytes("y"),
    };
    for wire in wires.iter_mut() {
        wire.send(8, write(raced.clone(), 4));
    }
    let answers: Vec<Reply> = wires
        .iter_mut()
        .map(|w| {
            let f = w.recv().expect("a reply to the raced request");
            assert_eq!(f.id, 8);
            f.body
        })
        .collect();
    let won = Reply::Output(Output::Cas {
        ok: true,
        current: bytes("y"),
    });
    for (i, a) in answers.iter().enumerate() {
        // An election could make one attempt time out; none may say ok = false.
        match a {
            Reply::Error(e) if e.kind.retryable() => eprintln!("node {}: raced request: {e}", i + 1),
            a => assert_eq!(a, &won, "node {} answered the raced request", i + 1),
        }
    }

    // Acknowledging requests below 5 drops their outputs: a late retry of
    // request 0 is refused as expired, not applied again.
    let ack = wires[0].call_retrying(
        9,
        Request::Write {
            command: put("after", "z"),
            session: tag(5, 5),
        },
    );
    assert_eq!(ack, Reply::Output(Output::Put { previous: None }));
    match wires[1].call_retrying(10, write(put("k", "1"), 0)) {
        Reply::Error(e) => assert_eq!(e.kind, ErrorKind::SessionExpired, "{e}"),
        other => panic!("an acknowledged request retried answered {other:?}"),
    }
    // An unknown session is refused the same way.
    match wires[2].call_retrying(
        11,
        Request::Write {
            command: put("k", "3"),
            session: Some(SessionTag {
                client: client + 1_000_000,
                seq: 0,
                acked: 0,
            }),
        },
    ) {
        Reply::Error(e) => assert_eq!(e.kind, ErrorKind::SessionExpired, "{e}"),
        other => panic!("a write in an unknown session answered {other:?}"),
    }
    // Neither refused write changed k.
    for (i, wire) in wires.iter_mut().enumerate() {
        let got = wire.call_retrying(
            12,
            Request::Get {
                key: b"k".to_vec(),
                lease: false,
            },
        );
        assert_eq!(got, Reply::Value { value: bytes("2") }, "node {} reads k", i + 1);
    }
    // Every node applied the same commands once: retries answered from the
    // session's cache are not counted as commits anywhere.
    let statuses = cluster.wait_converged(Duration::from_secs(10));
    assert!(
        statuses.iter().all(|s| s.commits == statuses[0].commits),
        "nodes count different commits for the same log: {:?}",
        statuses.iter().map(|s| s.commits).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------
// 3. Many requests in flight on one connection
// ---------------------------------------------------------------------------

#[test]
fn pipelined_requests_are_answered_by_id() {
    let cluster = Cluster::started(3);
    let leader = cluster.wait_leader(None, Duration::from_secs(10));
    let node = cluster.clients[leader];
    // The keys the gets read, written first.
    let client = blocking_client(&cluster.clients);
    for i in (2..=200u64).step_by(2) {
        client
            .put(format!("pipe-g{i}").as_bytes(), format!("gv{i}").as_bytes())
            .expect("a put");
    }

    // 200 requests written at once, without reading; then 200 replies.
    let mut wire = Wire::open(node);
    let request = |i: u64| {
        if i % 2 == 1 {
            Request::Write {
                command: put(&format!("pipe-p{i}"), &format!("pv{i}")),
                session: None,
            }
        } else {
            Request::Get {
                key: format!("pipe-g{i}").into_bytes(),
                lease: false,
            }
        }
    };
    let all: Vec<u8> = (1..=200u64).flat_map(|i| Wire::frame(i, request(i))).collect();
    wire.stream.write_all(&all).expect("send 200 frames");
    let mut order = Vec::new();
    let mut answered: BTreeMap<u64, Reply> = BTreeMap::new();
    for _ in 0..200 {
        let frame = wire.recv().unwrap_or_else(|e| {
            panic!(
                "after {} replies: {e}; answered so far: {:?}",
                order.len(),
                answered.keys()
            )
        });
        order.push(frame.id);
        assert!(
            answered.insert(frame.id, frame.body).is_none(),
            "id {} answered twice",
            frame.id
        );
    }
    assert_eq!(
        answered.keys().copied().collect::<Vec<_>>(),
        (1..=200).collect::<Vec<_>>(),
        "every id answered once"
    );
    for (&i, reply) in &answered {
        let want = if i % 2 == 1 {
            Reply::Output(Output::Put { previous: None })
        } else {
            Reply::Value {
                value: bytes(&format!("gv{i}")),
            }
        };
        assert_eq!(reply, &want, "reply to request {i}");
    }
    let out_of_order = order.windows(2).filter(|w| w[0] > w[1]).count();
    eprintln!(
        "200 pipelined requests: {} answered out of order (an id after a higher one){}",
        out_of_order,
        if out_of_order == 0 { " — all in order" } else { "" }
    );
    // The puts took effect.
    for i in (1..=200u64).step_by(2) {
        assert_eq!(
            client.get(format!("pipe-p{i}").as_bytes()).expect("a get"),
            bytes(&format!("pv{i}")),
            "pipe-p{i}"
        );
    }

    // More than MAX_IN_FLIGHT at once, written while the replies are read:
    // the node stops reading at its bound and catches up.
    const MORE: u64 = 3 * MAX_IN_FLIGHT as u64;
    let mut writer = wire.stream.try_clone().expect("clone the stream");
    let sender = std::thread::spawn(move || {
        for i in 0..MORE {
            let id = 1000 + i;
            let g = 2 * (i % 100 + 1);
            let frame = Wire::frame(
                id,
                Request::Get {
                    key: format!("pipe-g{g}").into_bytes(),
                    lease: false,
                },
            );
            if writer.write_all(&frame).is_err() {
                return false;
            }
        }
        true
    });
    let mut seen = BTreeSet::new();
    for _ in 0..MORE {
        let frame = wire
            .recv()
            .unwrap_or_else(|e| panic!("after {} of {MORE} replies: {e}", seen.len()));
        let g = 2 * ((frame.id - 1000) % 100 + 1);
        assert_eq!(
            frame.body,
            Reply::Value {
                value: bytes(&format!("gv{g}"))
            },
            "reply {}",
            frame.id
        );
        assert!(seen.insert(frame.id), "id {} answered twice", frame.id);
    }
    assert!(sender.join().expect("the sender panicked"), "sending failed");
    assert_eq!(seen.len() as u64, MORE);
}

// ---------------------------------------------------------------------------
// 4. Hostile clients
// ---------------------------------------------------------------------------

/// The peak resident memory of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A sample's value in a Prometheus exposition (the first line of
/// `metric`, any labels).
fn metric_value(text: &str, metric: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(metric) && matches!(l.as_bytes().get(metric.len()), Some(b' ' | b'{')))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

/// `GET /metrics` over a raw connection: the status line and the body.
fn scrape(addr: SocketAddr) -> Option<(String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    stream.take(16 << 20).read_to_end(&mut answer).ok()?;
    let text = String::from_utf8(answer).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

/// A started frame (or line) that never completes: the node closes the
/// connection about FRAME_TIMEOUT after its first byte. Returns a
/// description of a failure.
fn slowloris(node: SocketAddr, what: &'static str, first: &[u8], trickle: bool) -> Result<Duration, String> {
    let mut stream = TcpStream::connect_timeout(&node, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    stream.write_all(first).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let limit = FRAME_TIMEOUT + Duration::from_secs(4);
    if trickle {
        // One more byte every 500 ms: the deadline is for the whole frame.
        stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut buf = [0u8; 64];
        for _ in 0..40 {
            if started.elapsed() > limit {
                return Err(format!("{what}: still open after {limit:?}"));
            }
            match stream.read(&mut buf) {
                Ok(0) => return Ok(started.elapsed()),
                Ok(n) => return Err(format!("{what}: the node sent {:?}", &buf[..n])),
                Err(e) if matches!(e.kind(), IoKind::ConnectionReset) => return Ok(started.elapsed()),
                Err(_) => {}
            }
            if stream.write_all(b"\x01").is_err() {
                return Ok(started.elapsed());
            }
        }
        return Err(format!("{what}: still open"));
    }
    let (got, end) = drain(&mut stream, limit);
    let elapsed = started.elapsed();
    if end == End::Open {
        return Err(format!("{what}: still open after {elapsed:?}"));
    }
    if !got.is_empty() {
        return Err(format!("{what}: the node sent {got:?}"));
    }
    Ok(elapsed)
}

#[test]
fn hostile_clients_get_errors_or_closed_connections_and_the_node_keeps_serving() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(3);
    let metrics = free_tcp(1)[0];
    cluster.start_with(0, &["--metrics-listen", &metrics.to_string()]);
    cluster.start(1);
    cluster.start(2);
    cluster.wait_leader(None, Duration::from_secs(10));
    let node = cluster.clients[0];
    let pid = cluster.children[0].as_ref().unwrap().id();
    let rss_before = peak_rss_kib(pid);

    // (c) Slow frames, in the background while the rest runs.
    let mut len_100 = MAGIC.to_vec();
    len_100.extend_from_slice(&100u32.to_le_bytes());
    let mut body_started = len_100.clone();
    body_started.extend_from_slice(&[0u8; 10]);
    let mut prefix_started = MAGIC.to_vec();
    prefix_started.extend_from_slice(&[5, 0]);
    let slow: Vec<(&'static str, Vec<u8>, bool)> = vec![
        ("a frame body started", body_started, false),
        ("a length prefix started", prefix_started, false),
        ("a frame trickled a byte every 500 ms", len_100, true),
        ("a JSON line started", b"{\"op\":\"status\"".to_vec(), false),
    ];
    let slow: Vec<_> = slow
        .into_iter()
        .map(|(what, first, trickle)| (what, std::thread::spawn(move || slowloris(node, what, &first, trickle))))
        .collect();
    // An idle binary connection is not a slow frame: it stays open.
    let mut idle = Wire::open(node);

    // (a) Garbage after the magic. A frame that does not decode, after a
    // good request: the good one is answered, the garbage gets a
    // BadRequest error with id 0, then the node closes.
    {
        let mut wire = Wire::open(node);
        let mut bytes = Wire::frame(7, Request::Status);
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&[0xff; 16]);
        wire.stream.write_all(&bytes).unwrap();
        let (got, end) = drain(&mut wire.stream, Duration::from_secs(5));
        assert_ne!(end, End::Open, "the node kept a connection open after garbage");
        let replies = frames(&got);
        assert!(
            replies.iter().any(|f| f.id == 7 && matches!(f.body, Reply::Status(_))),
            "the good request before the garbage was not answered: {replies:?}"
        );
        assert!(
            replies
                .iter()
                .any(|f| f.id == 0 && matches!(&f.body, Reply::Error(e) if e.kind == ErrorKind::BadRequest)),
            "no BadRequest error with id 0: {replies:?}"
        );
        assert_eq!(replies.len(), 2, "{replies:?}");
    }
    // A frame with bytes after a valid request.
    {
        let mut wire = Wire::open(node);
        let mut body = postcard::to_allocvec(&Frame {
            id: 9,
            body: Request::Status,
        })
        .unwrap();
        body.extend_from_slice(b"trailing");
        let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        wire.stream.write_all(&bytes).unwrap();
        let (got, end) = drain(&mut wire.stream, Duration::from_secs(5));
        assert_eq!(end, End::Eof);
        let replies = frames(&got);
        assert!(
            matches!(&replies[..], [Frame { id: 0, body: Reply::Error(e) }] if e.kind == ErrorKind::BadRequest),
            "{replies:?}"
        );
    }
    // Seeded random frames and random bytes.
    let mut rng = paxos_tests::rng::TestRng::new(0x5e41ce);
    let (mut refused, mut decoded) = (0, 0);
    for round in 0..20 {
        let mut wire = Wire::open(node);
        let framed = round % 2 == 0;
        let mut junk = rng.bytes(2000);
        junk.push(rng.next_u64() as u8);
        let bytes = if framed {
            // A whole frame of random bytes.
            let mut b = (junk.len() as u32).to_le_bytes().to_vec();
            b.extend_from_slice(&junk);
            b
        } else {
            // Raw random bytes: their first four announce a length; keep it
            // over MAX_FRAME so the node does not wait for the rest.
            if junk.len() < 4 {
                junk.resize(4, 0);
            }
            junk[3] |= 0x80;
            junk
        };
        wire.stream.write_all(&bytes).unwrap();
        let (got, end) = drain(&mut wire.stream, Duration::from_secs(5));
        let replies = frames(&got);
        let errors: Vec<&Frame<Reply>> = replies.iter().filter(|f| f.id == 0).collect();
        if replies.iter().any(|f| f.id != 0) {
            // The bytes happened to decode as a request: it was answered.
            decoded += 1;
            continue;
        }
        assert_ne!(end, End::Open, "round {round}: garbage left the connection open");
        assert!(
            errors.iter().all(|f| matches!(&f.body, Reply::Error(e)
                if e.kind == if framed { ErrorKind::BadRequest } else { ErrorKind::TooLarge })),
            "round {round}: {replies:?}"
        );
        // A reset may swallow the error frame; a clean close must not.
        assert!(
            !errors.is_empty() || end == End::Reset,
            "round {round}: closed without an error frame"
        );
        refused += 1;
    }
    eprintln!(
        "{:5.1}s garbage: {refused} refused, {decoded} decoded",
        t0.elapsed().as_secs_f64()
    );
    assert!(refused >= 18, "only {refused} of 20 garbage rounds refused");
    // A wrong magic: closed without a reply.
    {
        let mut stream = TcpStream::connect_timeout(&node, Duration::from_secs(3)).unwrap();
        stream.write_all(b"PXC9").unwrap();
        let (got, end) = drain(&mut stream, Duration::from_secs(5));
        assert_eq!((got.len(), end), (0, End::Eof), "a wrong magic");
    }

    // (b) Length prefixes over MAX_FRAME: TooLarge with id 0, then closed,
    // without the node allocating the length.
    for len in [MAX_FRAME as u32 + 1, 1 << 30, u32::MAX] {
        let mut wire = Wire::open(node);
        wire.stream.write_all(&len.to_le_bytes()).unwrap();
        let (got, end) = drain(&mut wire.stream, Duration::from_secs(5));
        assert_eq!(end, End::Eof, "a frame of {len} bytes announced");
        let replies = frames(&got);
        assert!(
            matches!(&replies[..], [Frame { id: 0, body: Reply::Error(e) }] if e.kind == ErrorKind::TooLarge),
            "a frame of {len} bytes announced: {replies:?}"
        );
    }
    if let (Some(before), Some(after)) = (rss_before, peak_rss_kib(pid)) {
        eprintln!("node peak RSS {before} KiB before, {after} KiB after the oversized frames");
        assert!(
            after < before + 256 * 1024,
            "the node's peak memory grew from {before} to {after} KiB: it allocated an announced frame"
        );
    }

    // (d) 300 idle connections, half of them after the magic.
    let held: Vec<TcpStream> = (0..300)
        .map(|i| {
            let mut s = TcpStream::connect_timeout(&node, Duration::from_secs(3))
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}"));
            if i % 2 == 0 {
                s.write_all(&MAGIC).unwrap();
            }
            s
        })
        .collect();
    let client = blocking_client(&[node]);
    client
        .put(b"while-held", b"yes")
        .expect("a put with 300 idle connections");
    assert_eq!(client.get(b"while-held").expect("a get"), bytes("yes"));
    let s = cluster.status(0).expect("status with 300 idle connections");
    assert_eq!(s.id, 1);
    let connections = wait_for(Duration::from_secs(3), Duration::from_millis(100), || {
        let (_, body) = scrape(metrics)?;
        metric_value(&body, "paxos_client_connections").filter(|&n| n >= 300.0)
    });
    assert!(
        connections.is_some(),
        "paxos_client_connections never counted the 300 held connections"
    );
    eprintln!(
        "{:5.1}s served with 300 idle connections held ({connections:?} counted)",
        t0.elapsed().as_secs_f64()
    );
    drop(held);

    // (e) The JSON line protocol: garbage gets an error line and the
    // connection goes on; an over-long line gets an error and a close.
    {
        let mut conn = json_connect(node);
        let reply = json_line(&mut conn, "this is not JSON at all");
        assert!(reply.get("error").is_some(), "garbage line answered {reply}");
        let reply = json_line(&mut conn, r#"{"op":"frobnicate","key":"k"}"#);
        assert!(reply.get("error").is_some(), "unknown op answered {reply}");
        let reply = json_line(&mut conn, r#"{"op":"get","key":"while-held"}"#);
        assert_eq!(reply, serde_json::json!({"key": "while-held", "value": "yes"}));
    }
    {
        // Exactly one byte over, no newline: the node reads it all.
        let mut conn = json_connect(node);
        let line = vec![b'x'; MAX_LINE + 1];
        conn.get_mut().write_all(&line).unwrap();
        let mut reply = String::new();
        conn.read_line(&mut reply).expect("an error line");
        let reply: serde_json::Value = serde_json::from_str(reply.trim_end()).expect("a JSON error line");
        assert!(reply.get("error").is_some(), "an over-long line answered {reply}");
        let (rest, end) = drain(conn.get_mut(), Duration::from_secs(5));
        assert_eq!((rest.len(), end), (0, End::Eof), "after an over-long line");
    }
    {
        // Far over: an error line, unless the close with bytes unread
        // reset the connection first; closed either way.
        let mut conn = json_connect(node);
        let mut line = vec![b'{'; 4 * MAX_LINE];
        line.push(b'\n');
        let _ = conn.get_mut().write_all(&line);
        let (got, end) = drain(conn.get_mut(), Duration::from_secs(5));
        assert_ne!(end, End::Open, "a line of 256 KiB left the connection open");
        let text = String::from_utf8_lossy(&got);
        eprintln!("a line of 256 KiB: {end:?} after {text:?}");
        assert!(
            (got.is_empty() && end == End::Reset) || text.contains("\"error\""),
            "a line of 256 KiB answered {text:?} ({end:?})"
        );
    }

    // (c) The slow frames were closed about FRAME_TIMEOUT after they began.
    for (what, handle) in slow {
        let closed_after = handle
            .join()
            .expect("a slowloris thread panicked")
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{what}: closed after {closed_after:?}");
        assert!(
            closed_after >= FRAME_TIMEOUT - Duration::from_secs(1),
            "{what}: closed after {closed_after:?}, before FRAME_TIMEOUT"
        );
    }
    // The idle binary connection outlived them all.
    assert!(matches!(idle.call(1, Request::Status), Reply::Status(s) if s.id == 1));

    // (f) The node still serves, through the real binary and the client,
    // and never panicked.
    let s = status_binary(node);
    assert_eq!(s.id, 1);
    client
        .put(b"after-all", b"ok")
        .expect("a put after the hostile clients");
    assert_eq!(client.get(b"after-all").expect("a get"), bytes("ok"));
    cluster.assert_alive();
    let panics = cluster.count_log_lines("panicked");
    assert_eq!(panics, 0, "a node panicked:\n{}", cluster.logs());
    let bad = cluster.bad_log_lines();
    assert!(bad.is_empty(), "errors in the node logs:\n{}", bad.join("\n"));
    eprintln!("{:5.1}s done", t0.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------
// 5. The operator's commands
// ---------------------------------------------------------------------------

/// `paxos ARGS` that must succeed and print one JSON line.
fn paxos_json(args: &[&str]) -> serde_json::Value {
    let out = run_paxos(args, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "`paxos {}` failed: {:?}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        out.stdout,
        out.stderr
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "`paxos {}` printed {:?}", args.join(" "), out.stdout);
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("`paxos {}` printed {:?}: {e}", args.join(" "), lines[0]))
}

fn toml_string(path: &Path) -> String {
    serde_json::to_string(&path.display().to_string()).unwrap()
}

#[test]
fn operator_commands_work_end_to_end() {
    let t0 = Instant::now();
    let mut cluster = Cluster::new(3);
    let dir = cluster.dir.path().to_path_buf();

    // keygen: a key of 64 hex digits, owner-only; never overwritten.
    let key = dir.join("keygen.key");
    let key_s = key.display().to_string();
    let out = run_paxos(&["keygen", &key_s], Duration::from_secs(10));
    assert!(out.status.success(), "keygen failed: {}", out.stderr);
    let written = std::fs::read_to_string(&key).expect("the key file");
    let hex = written.trim_end();
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "keygen wrote {written:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key file's mode");
    }
    let again = run_paxos(&["keygen", &key_s], Duration::from_secs(10));
    assert!(!again.status.success(), "a second keygen to the same path succeeded");
    assert!(
        again.stderr.contains(&key_s),
        "the refusal does not name the file: {}",
        again.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        written,
        "a second keygen changed the key"
    );

    // One TOML file per node. Each says heartbeat_ms = 400, not below the
    // election timeout: refused unless the flag overrides it.
    let metrics = free_tcp(3);
    let configs: Vec<String> = (0..3)
        .map(|i| {
            let peers: Vec<String> = (0..3)
                .filter(|&j| j != i)
                .map(|j| format!("\"{}={}\"", j + 1, cluster.peer[j]))
                .collect();
            let text = format!(
                "# node {id}\nid = {id}\nlisten = \"{listen}\"\npeers = [{peers}]\ndata_dir = {data}\n\
                 client_listen = \"{client}\"\nmetrics_listen = \"{metrics}\"\nkey_file = {key}\n\
                 heartbeat_ms = 400\nelection_timeout_ms = 300\n",
                id = i + 1,
                listen = cluster.peer[i],
                peers = peers.join(", "),
                data = toml_string(&cluster.data_dir(i)),
                client = cluster.clients[i],
                metrics = metrics[i],
                key = toml_string(&key),
            );
            let path = dir.join(format!("node{}.toml", i + 1));
            std::fs::write(&path, text).expect("write a config file");
            path.display().to_string()
        })
        .collect();
    let refused = run_paxos(&["node", "--config", &configs[0]], Duration::from_secs(10));
    assert!(
        !refused.status.success() && refused.stderr.contains("heartbeat"),
        "a config with heartbeat_ms above the election timeout was not refused: {refused:?}"
    );
    for (i, config) in configs.iter().enumerate() {
        cluster.start_as(i, &["node", "--config", config, "--heartbeat-ms", "50"]);
    }
    let leader = cluster.wait_leader(None, Duration::from_secs(10));
    eprintln!(
        "{:5.1}s 3 nodes from config files; leader node {}",
        t0.elapsed().as_secs_f64(),
        leader + 1
    );

    // put, get, cas, del through every node's address.
    let nodes: Vec<String> = cluster.clients.iter().map(ToString::to_string).collect();
    let nodes = nodes.join(",");
    let n = nodes.as_str();
    use serde_json::json;
    assert_eq!(
        paxos_json(&["put", "--nodes", n, "color", "red"]),
        json!({"key": "color", "previous": null})
    );
    assert_eq!(
        paxos_json(&["put", "--nodes", n, "color", "blue"]),
        json!({"key": "color", "previous": "red"})
    );
    assert_eq!(
        paxos_json(&["get", "--nodes", n, "color"]),
        json!({"key": "color", "value": "blue"})
    );
    assert_eq!(
        paxos_json(&["cas", "--nodes", n, "color", "--expected", "red", "--new", "green"]),
        json!({"key": "color", "ok": false, "current": "blue"})
    );
    assert_eq!(
        paxos_json(&["cas", "--nodes", n, "color", "--expected", "blue", "--new", "green"]),
        json!({"key": "color", "ok": true, "current": "green"})
    );
    assert_eq!(
        paxos_json(&["cas", "--nodes", n, "fresh", "--new", "1"]),
        json!({"key": "fresh", "ok": true, "current": "1"})
    );
    assert_eq!(
        paxos_json(&["del", "--nodes", n, "color"]),
        json!({"key": "color", "previous": "green"})
    );
    assert_eq!(
        paxos_json(&["get", "--nodes", n, "color"]),
        json!({"key": "color", "value": null})
    );
    assert_eq!(
        paxos_json(&["del", "--nodes", n, "color"]),
        json!({"key": "color", "previous": null})
    );
    // One node alone, over --node, sees the same.
    assert_eq!(
        paxos_json(&["get", "--node", &cluster.clients[2].to_string(), "fresh"]),
        json!({"key": "fresh", "value": "1"})
    );

    // The status table: a header and one row per node, one leader.
    let table = wait_for(Duration::from_secs(5), Duration::from_millis(200), || {
        let out = run_paxos(&["status", "--nodes", n], Duration::from_secs(20));
        assert!(out.status.success(), "`paxos status --nodes` failed: {out:?}");
        let rows: Vec<Vec<String>> = out
            .stdout
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect();
        let leaders = rows
            .iter()
            .skip(1)
            .filter(|r| r.get(2).map(String::as_str) == Some("leader"))
            .count();
        // An election between two nodes' answers may show none or two.
        (leaders == 1).then_some((out.stdout, rows))
    });
    let (stdout, rows) = table.expect("`paxos status --nodes` never showed exactly one leader");
    eprintln!("{stdout}");
    assert_eq!(rows.len(), 4, "a header and 3 rows: {stdout}");
    assert_eq!(
        rows[0][..4],
        ["node", "id", "role", "leader"].map(String::from),
        "the header: {stdout}"
    );
    for (i, row) in rows[1..].iter().enumerate() {
        assert_eq!(row[0], cluster.clients[i].to_string(), "row {}: {stdout}", i + 1);
        assert_eq!(row[1], (i + 1).to_string(), "row {}: {stdout}", i + 1);
        assert!(
            matches!(row[2].as_str(), "leader" | "follower"),
            "row {}: {stdout}",
            i + 1
        );
        assert_eq!(row.len(), rows[0].len(), "row {} has every column: {stdout}", i + 1);
    }
    // The leader heard from every node within a few seconds.
    let contact = rows[0]
        .iter()
        .position(|c| c == "last-contact")
        .expect("a last-contact column");
    for row in &rows[1..] {
        let cell = row[contact].as_str();
        let heard_ms = match (row[2].as_str(), cell.strip_suffix("ms"), cell.strip_suffix('s')) {
            ("leader", ..) => {
                assert_eq!(cell, "-", "{stdout}");
                continue;
            }
            (_, Some(ms), _) => ms.parse::<f64>().ok(),
            (_, None, Some(s)) => s.parse::<f64>().ok().map(|s| s * 1000.0),
            _ => None,
        };
        let heard_ms = heard_ms.unwrap_or_else(|| panic!("last contact {cell:?}: {stdout}"));
        assert!(heard_ms < 3000.0, "last contact {cell}: {stdout}");
    }
    let out = run_paxos(&["status", "--nodes", n, "--json"], Duration::from_secs(20));
    assert!(out.status.success(), "`paxos status --json` failed: {out:?}");
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["node"], json!(cluster.clients[i].to_string()), "{line}");
        assert_eq!(line["status"]["id"], json!(i + 1), "{line}");
        // Its two peers, each with the milliseconds since it last heard
        // from it (or null).
        let peers = line["status"]["peers"].as_array().expect("peers");
        let ids: BTreeSet<u64> = peers.iter().filter_map(|p| p["id"].as_u64()).collect();
        let others: BTreeSet<u64> = (1..=3).filter(|&id| id != i as u64 + 1).collect();
        assert_eq!(ids, others, "{line}");
        assert!(
            peers
                .iter()
                .all(|p| p["last_heard_ms"].is_u64() || p["last_heard_ms"].is_null()),
            "{line}"
        );
    }

    // Metrics, scraped with a raw HTTP/1.1 request.
    let leader = cluster.wait_leader(None, Duration::from_secs(5));
    let scraped = wait_for(Duration::from_secs(5), Duration::from_millis(200), || {
        let (status, body) = scrape(metrics[leader])?;
        assert_eq!(status, "HTTP/1.1 200 OK", "GET /metrics answered {status}");
        // The sampler mirrors the commit count every 500 ms.
        (metric_value(&body, "paxos_commits_total")? > 0.0).then_some(body)
    });
    let body = scraped.unwrap_or_else(|| panic!("the leader's metrics never showed a commit"));
    assert!(
        body.contains("paxos_requests_total{"),
        "no paxos_requests_total samples:\n{body}"
    );
    assert!(
        metric_value(&body, "paxos_requests_total").is_some_and(|v| v >= 1.0),
        "{body}"
    );
    for (i, &m) in metrics.iter().enumerate() {
        let (status, body) = scrape(m).unwrap_or_else(|| panic!("node {} metrics unreachable", i + 1));
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(body.contains("paxos_commits_total"), "node {}:\n{body}", i + 1);
    }
    eprintln!(
        "{:5.1}s commands, status and metrics checked",
        t0.elapsed().as_secs_f64()
    );

    // A node restarted with another cluster's key: it warns about
    // authentication and never leads; the others go on.
    let other = dir.join("other.key");
    let out = run_paxos(&["keygen", &other.display().to_string()], Duration::from_secs(10));
    assert!(out.status.success(), "keygen failed: {}", out.stderr);
    let odd = (0..3).find(|&i| i != leader).unwrap();
    let exit = cluster.terminate(odd).expect("node stops on SIGTERM");
    assert!(exit.success(), "node {} exited with {exit} on SIGTERM", odd + 1);
    let other_s = other.display().to_string();
    cluster.start_as(
        odd,
        &[
            "node",
            "--config",
            &configs[odd],
            "--heartbeat-ms",
            "50",
            "--key-file",
            &other_s,
        ],
    );
    let log = cluster.log_path(odd, cluster.starts[odd]);
    let warned = wait_for(Duration::from_secs(5), Duration::from_millis(100), || {
        let s = cluster.status(odd).expect("the node with the other key answers status");
        assert!(!s.is_leader, "the node with the other key leads: {s:?}");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().find(|l| l.contains("authentication")).map(str::to_string)
    });
    let warned = warned.unwrap_or_else(|| panic!("no authentication warning within 5 s:\n{}", cluster.logs()));
    eprintln!("{:5.1}s node {}: {warned}", t0.elapsed().as_secs_f64(), odd + 1);
    assert!(warned.contains("WARN"), "not a warning: {warned}");
    // The others still decide; the odd node never leads.
    assert_eq!(
        paxos_json(&["put", "--nodes", n, "after", "other-key"]),
        json!({"key": "after", "previous": null})
    );
    let until = Instant::now() + Duration::from_secs(2);
    for _ in 0..40 {
        let s = cluster.status(odd).expect("status");
        assert!(!s.is_leader, "the node with the other key leads: {s:?}");
        assert_ne!(cluster.leader(), Some(odd), "the node with the other key leads");
        if Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.assert_alive();
    assert_eq!(cluster.count_log_lines("panicked"), 0, "{}", cluster.logs());
    eprintln!("{:5.1}s done", t0.elapsed().as_secs_f64());
}
