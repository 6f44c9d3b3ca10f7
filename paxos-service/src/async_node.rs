//! The tokio driver (feature `tokio`): the same [`Engine`] as the blocking
//! [`node`](crate::node) — same replica, registers, [`FileLog`] and
//! datagram format — on a `tokio::net::UdpSocket`, a tokio timer and a
//! tokio channel of [`Request`]s.
//!
//! One turn: `select!` on a datagram, a request, a finished sync, the
//! replica's deadline (`tokio::time::sleep` for [`Engine::wait`]) or
//! shutdown; take what else is ready without waiting; [`Engine::tick`];
//! [`Engine::flush`].
//!
//! The `fdatasync` never runs on the runtime: the engine's log lives on
//! its own sync thread ([`SyncPipeline`](paxos_std::storage::SyncPipeline)),
//! which wakes this loop through a `tokio::sync::Notify` when a sync
//! finishes. A sync on a runtime worker would stall every other task of
//! that worker (and everything on a `current_thread` runtime); on its own
//! thread it also overlaps with the turns that build the next group.
//!
//! Opening the data directory and replaying the log also run off the
//! runtime, on a thread of their own: they read files, and rebuilding the
//! registers needs a large stack ([`STACK`]).
//!
//! ```no_run
//! use paxos_service::async_node;
//! use paxos_service::node::NodeOptions;
//! use paxos_service::request::{Reply, Request};
//! # async fn demo(options: NodeOptions) -> Result<(), Box<dyn std::error::Error>> {
//! let (requests, inbox) = tokio::sync::mpsc::channel(1024);
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let node = tokio::spawn(async_node::run(options, inbox, async {
//!     let _ = stopped.await;
//! }));
//! let (tx, mut rx) = tokio::sync::mpsc::channel(1);
//! let key = paxos_service::app::key("color")?;
//! let value = Some(paxos_service::app::value("blue")?);
//! requests.send(Request::Ask { key, value, reply: tx.into() }).await?;
//! if let Some(Reply::Answer { value, .. }) = rx.recv().await {
//!     println!("decided: {value:?}");
//! }
//! let _ = stop.send(());
//! node.await??;
//! # Ok(()) }
//! ```

use crate::engine::{open_log, Engine, NodeError, NodeOptions, MAX_INPUTS_PER_TURN};
use crate::request::Request;
use paxos_std::storage::FileLog;
use paxos_std::transport::{TokioUdpTransport, RECV_BUFFER_LEN};
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;

pub use crate::engine::STACK;

/// Runs a node on the current tokio runtime until `shutdown` completes,
/// serving the requests sent on `requests` (the node goes on without
/// requests if every sender is dropped).
///
/// Needs a runtime with timers and IO enabled (`enable_all`).
///
/// # Errors
///
/// [`NodeError`] if it cannot start, or when storage fails (a node that
/// cannot make its votes durable must not vote).
pub async fn run(
    options: NodeOptions,
    mut requests: Receiver<Request>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let net = TokioUdpTransport::bind(options.listen, options.id, &options.peers, options.key.clone())
        .await
        .map_err(|e| NodeError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", options.listen))))?;
    let synced = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut engine = start(options, net, std::sync::Arc::clone(&synced)).await?;
    let mut buf = vec![0u8; RECV_BUFFER_LEN];
    let mut requests_open = true;
    tokio::pin!(shutdown);
    loop {
        let mut taken = 0;
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            received = engine.link().recv(&mut buf) => match received {
                Ok(r) => {
                    engine.handle_datagram(r.from, buf.get(r.frame).unwrap_or_default());
                    taken += 1;
                }
                Err(e) => {
                    tracing::warn!(node = %engine.id(), "receive failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            request = requests.recv(), if requests_open => match request {
                Some(r) => {
                    engine.handle_request(r);
                    taken += 1;
                }
                None => requests_open = false,
            },
            () = synced.notified() => {}
            () = tokio::time::sleep(engine.wait()) => {}
        }
        // Take every input already there too, so that one sync covers them.
        while taken > 0 && taken < MAX_INPUTS_PER_TURN {
            if let Ok(Some(r)) = engine.link().try_recv(&mut buf) {
                engine.handle_datagram(r.from, buf.get(r.frame).unwrap_or_default());
            } else if let Ok(r) = requests.try_recv() {
                engine.handle_request(r);
            } else {
                break;
            }
            taken += 1;
        }
        engine.tick();
        engine.flush();
        if let Some(e) = engine.take_storage_error() {
            return Err(NodeError::Storage(e));
        }
    }
    tracing::info!(node = %engine.id(), "stopped");
    Ok(())
}

/// Opens the log and rebuilds the node on a thread with a large stack.
async fn start(
    options: NodeOptions,
    net: TokioUdpTransport,
    synced: std::sync::Arc<tokio::sync::Notify>,
) -> Result<Engine<TokioUdpTransport>, NodeError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("paxos-start-{}", options.id))
        .stack_size(STACK)
        .spawn(move || {
            let started = open_log(&options).and_then(|(log, recovered): (FileLog, _)| {
                // `notify_one` keeps a permit when the loop is busy, so
                // a sync that ends mid-turn is not missed.
                let wake = std::sync::Arc::new(move || synced.notify_one());
                Engine::start(&options, log, &recovered, net, wake)
            });
            let _ = tx.send(started);
        })
        .map_err(NodeError::Io)?;
    rx.await
        .map_err(|_| NodeError::Io(std::io::Error::other("the start thread panicked")))?
}
