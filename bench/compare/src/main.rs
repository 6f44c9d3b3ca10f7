//! `compare`: one load generator for etcd and for the paxos service.
//!
//! ```text
//! compare --system etcd|paxos --endpoints a,b,c --clients N --seconds S --op put|get [--value-size 64]
//! ```
//!
//! N tasks each run operations back to back through the system's own
//! client — `etcd_client::Client` for etcd, `paxos_service::Client` for
//! paxos — for a 1 s warm-up and then S measured seconds, and the program
//! prints one JSON line:
//!
//! ```text
//! {"system":..,"op":..,"clients":N,"ops":..,"seconds":..,"ops_per_s":..,"p50_ms":..,"p99_ms":..,"errors":..}
//! ```
//!
//! - Both systems get the same structure: one client object, connected
//!   with all the endpoints, cloned into every task; `--connections K`
//!   makes K of them, tasks spread round-robin, for both systems alike
//!   (bench/compare.sh passes one per 128 tasks, as a paxos `Client` keeps
//!   at most 128 calls in flight: 256 tasks share two).
//!   An etcd-client clone shares its tonic channel (HTTP/2 to every
//!   endpoint, requests balanced across them; followers forward writes to
//!   the leader); a paxos `Client` clone shares its one pipelined
//!   connection (to the leader, which it finds itself).
//! - Puts: task t writes keys `k{t}-{i % 1024}`, padded to 16 bytes
//!   (`k00003-000000517`), with `--value-size` byte values (64).
//! - Gets: linearizable (etcd's default consistency; paxos's `get`, read
//!   through the log). A fill phase first writes 1024 keys
//!   (`k00000-000000000` .. `k00000-000001023`); task t's i-th get reads
//!   key `(t * 131 + i) % 1024`. A get that finds no value is an error.
//! - `ops` counts the operations that succeeded and were issued after the
//!   warm-up and finished within the S seconds; `errors` counts the ones
//!   in that window that failed (or timed out after `--op-timeout`).
//!   Latency is per operation, as the caller sees it (including any wait
//!   for a client's in-flight slot), p50 and p99 over the successful ones.

use clap::{Parser, ValueEnum};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Keys each put task cycles through, and keys the get fill phase writes.
const KEYS: usize = 1024;
/// The warm-up before the measured window.
const WARM_UP: Duration = Duration::from_secs(1);
/// Puts in flight during the get fill phase.
const FILL_CONCURRENCY: usize = 64;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum System {
    Etcd,
    Paxos,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Op {
    Put,
    Get,
}

/// Drives etcd or the paxos service with N concurrent clients; prints one
/// JSON line.
#[derive(Parser, Debug)]
#[command(name = "compare")]
struct Args {
    /// Which system the endpoints are.
    #[arg(long, value_enum)]
    system: System,
    /// Every node's client address, comma-separated (`host:port`; for
    /// etcd `http://` is added when missing).
    #[arg(long, value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    /// Concurrent tasks, each with one operation in flight.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Measured seconds (after a 1 s warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// The operation.
    #[arg(long, value_enum)]
    op: Op,
    /// Bytes per value.
    #[arg(long, default_value_t = 64)]
    value_size: usize,
    /// Client objects the tasks share (round-robin); the same for both
    /// systems.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Seconds before one operation counts as failed.
    #[arg(long, default_value_t = 10.0)]
    op_timeout: f64,
}

/// One system's client, cheap to clone (clones share the connection).
#[derive(Clone)]
enum Handle {
    Etcd(Box<etcd_client::Client>),
    Paxos(paxos_service::Client),
}

impl Handle {
    async fn connect(system: System, endpoints: &[String], timeout: Duration) -> Result<Handle, String> {
        match system {
            System::Etcd => {
                let urls: Vec<String> = endpoints
                    .iter()
                    .map(|e| {
                        if e.contains("://") {
                            e.clone()
                        } else {
                            format!("http://{e}")
                        }
                    })
                    .collect();
                let options = etcd_client::ConnectOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(timeout);
                let client = etcd_client::Client::connect(urls, Some(options))
                    .await
                    .map_err(|e| format!("etcd connect: {e}"))?;
                Ok(Handle::Etcd(Box::new(client)))
            }
            System::Paxos => {
                let mut nodes = Vec::new();
                for e in endpoints {
                    let e = e.strip_prefix("http://").unwrap_or(e);
                    let addr: SocketAddr = e
                        .to_socket_addrs()
                        .map_err(|err| format!("bad endpoint {e:?}: {err}"))?
                        .next()
                        .ok_or_else(|| format!("endpoint {e:?} resolves to nothing"))?;
                    nodes.push(addr);
                }
                let mut options = paxos_service::ClientOptions::new(nodes);
                options.request_timeout = timeout;
                let client = paxos_service::Client::connect(options)
                    .await
                    .map_err(|e| format!("paxos connect: {e}"))?;
                Ok(Handle::Paxos(client))
            }
        }
    }

    async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        match self {
            Handle::Etcd(c) => c.put(key, value, None).await.map(drop).map_err(|e| e.to_string()),
            Handle::Paxos(c) => c.put(key, value).await.map(drop).map_err(|e| e.to_string()),
        }
    }

    /// A linearizable read; a missing key is an error.
    async fn get(&mut self, key: &[u8]) -> Result<(), String> {
        let found = match self {
            Handle::Etcd(c) => !c.get(key, None).await.map_err(|e| e.to_string())?.kvs().is_empty(),
            Handle::Paxos(c) => c.get(key).await.map_err(|e| e.to_string())?.is_some(),
        };
        if found {
            Ok(())
        } else {
            Err(format!("key {:?} has no value", String::from_utf8_lossy(key)))
        }
    }
}

/// Task `task`'s `i`-th key: 16 bytes.
fn key(task: usize, i: usize) -> Vec<u8> {
    let k = format!("k{:05}-{:09}", task % 100_000, i % KEYS);
    debug_assert_eq!(k.len(), 16);
    k.into_bytes()
}

/// What one task saw in the measured window.
#[derive(Default)]
struct Tally {
    /// Latencies of the successful operations, in nanoseconds.
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn run_task(
    mut handle: Handle,
    task: usize,
    op: Op,
    value: Arc<Vec<u8>>,
    measure_from: Instant,
    end: Instant,
    op_timeout: Duration,
) -> Tally {
    let mut tally = Tally::default();
    let mut i = 0usize;
    loop {
        let start = Instant::now();
        if start >= end {
            break;
        }
        let k = match op {
            Op::Put => key(task, i),
            Op::Get => key(0, task.wrapping_mul(131).wrapping_add(i)),
        };
        let outcome = tokio::time::timeout(op_timeout, async {
            match op {
                Op::Put => handle.put(&k, &value).await,
                Op::Get => handle.get(&k).await,
            }
        })
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {op_timeout:?}")));
        let done = Instant::now();
        if start >= measure_from && done <= end {
            match outcome {
                Ok(()) => tally.latencies.push((done - start).as_nanos() as u64),
                Err(e) => {
                    tally.errors += 1;
                    tally.first_error.get_or_insert(e);
                }
            }
        } else if let Err(e) = outcome {
            // Outside the window: not counted, but a failure still shows.
            tally.first_error.get_or_insert(e);
        }
        i = i.wrapping_add(1);
    }
    tally
}

/// Writes the 1024 keys the gets read.
async fn fill(handles: &[Handle], value: Arc<Vec<u8>>, op_timeout: Duration) -> Result<(), String> {
    let mut set = tokio::task::JoinSet::new();
    for w in 0..FILL_CONCURRENCY {
        let mut handle = handles[w % handles.len()].clone();
        let value = value.clone();
        set.spawn(async move {
            let mut i = w;
            while i < KEYS {
                let k = key(0, i);
                // Retry a few times: a freshly elected cluster may refuse.
                let mut attempts = 0;
                loop {
                    match tokio::time::timeout(op_timeout, handle.put(&k, &value)).await {
                        Ok(Ok(())) => break,
                        Ok(Err(e)) if attempts >= 5 => return Err(format!("fill put: {e}")),
                        Err(_) if attempts >= 5 => return Err("fill put timed out".to_string()),
                        _ => {
                            attempts += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                i += FILL_CONCURRENCY;
            }
            Ok(())
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.map_err(|e| format!("fill task: {e}"))??;
    }
    Ok(())
}

/// The `q`-quantile of sorted nanoseconds, in milliseconds (nearest rank).
fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn run(args: Args) -> Result<String, String> {
    if args.clients == 0 || args.connections == 0 {
        return Err("--clients and --connections must be at least 1".into());
    }
    if args.seconds.is_nan() || args.seconds <= 0.0 || args.op_timeout.is_nan() || args.op_timeout <= 0.0 {
        return Err("--seconds and --op-timeout must be positive".into());
    }
    let op_timeout = Duration::from_secs_f64(args.op_timeout);
    let mut handles = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        handles.push(Handle::connect(args.system, &args.endpoints, op_timeout).await?);
    }
    let value: Arc<Vec<u8>> = Arc::new((0..args.value_size).map(|i| b'a' + (i % 26) as u8).collect());
    if args.op == Op::Get {
        fill(&handles, value.clone(), op_timeout).await?;
    }

    let measured = Duration::from_secs_f64(args.seconds);
    let begin = Instant::now();
    let measure_from = begin + WARM_UP;
    let end = measure_from + measured;
    let mut set = tokio::task::JoinSet::new();
    for task in 0..args.clients {
        let handle = handles[task % handles.len()].clone();
        set.spawn(run_task(
            handle,
            task,
            args.op,
            value.clone(),
            measure_from,
            end,
            op_timeout,
        ));
    }
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        let tally = joined.map_err(|e| format!("task: {e}"))?;
        latencies.extend(tally.latencies);
        errors += tally.errors;
        if first_error.is_none() {
            first_error = tally.first_error;
        }
    }
    if let Some(e) = first_error {
        eprintln!("compare: {:?} {:?}: first error: {e}", args.system, args.op);
    }
    latencies.sort_unstable();
    let ops = latencies.len() as u64;
    let seconds = measured.as_secs_f64();
    // Fields in the documented order (serde_json's map would sort them).
    let system = match args.system {
        System::Etcd => "etcd",
        System::Paxos => "paxos",
    };
    let op = match args.op {
        Op::Put => "put",
        Op::Get => "get",
    };
    let num = |x: f64| serde_json::Value::from(round3(x));
    Ok(format!(
        r#"{{"system":"{system}","op":"{op}","clients":{},"ops":{ops},"seconds":{},"ops_per_s":{},"p50_ms":{},"p99_ms":{},"errors":{errors}}}"#,
        args.clients,
        num(seconds),
        num(ops as f64 / seconds),
        num(quantile_ms(&latencies, 0.50)),
        num(quantile_ms(&latencies, 0.99)),
    ))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("compare: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    // Don't wait for the clients' background tasks (reconnects, etc.).
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_16_bytes() {
        assert_eq!(key(0, 0), b"k00000-000000000");
        assert_eq!(key(255, 1023 + 1024), b"k00255-000001023");
        assert_eq!(key(99_999, 5).len(), 16);
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|ms| ms * 1_000_000).collect();
        assert_eq!(quantile_ms(&v, 0.50), 50.0);
        assert_eq!(quantile_ms(&v, 0.99), 99.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
        assert_eq!(quantile_ms(&[7_000_000], 0.99), 7.0);
    }
}
