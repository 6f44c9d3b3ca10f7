//! The TCP side of the client protocol: one thread accepts connections,
//! one thread per connection reads a request line and hands it to the node
//! loop.

use crate::app;
use crate::client::{ClientReply, ClientRequest};
use crate::node::Requests;
use crate::request::Request;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

/// How long a connection may wait for its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Listens on `addr` and forwards requests to the node through `node`.
pub fn serve(addr: SocketAddr, node: Requests) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("paxos-clients".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let node = node.clone();
                let _ = std::thread::Builder::new()
                    .name("paxos-client".into())
                    .spawn(move || handle(stream, node));
            }
        })?;
    Ok(local)
}

fn handle(stream: TcpStream, node: Requests) {
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else { return };
    let mut line = String::new();
    if BufReader::new(read_half).take(64 * 1024).read_line(&mut line).is_err() {
        return;
    }
    let reply = answer(&line, &node);
    let mut out = serde_json::to_string(&reply).unwrap_or_else(|_| "{\"error\":\"internal\"}".into());
    out.push('\n');
    let mut stream = stream;
    let _ = stream.write_all(out.as_bytes());
}

fn answer(line: &str, node: &Requests) -> ClientReply {
    let error = |e: String| ClientReply::Error { error: e };
    let request: ClientRequest = match serde_json::from_str(line.trim_end()) {
        Ok(r) => r,
        Err(e) => return error(format!("bad request: {e}")),
    };
    let (tx, rx) = mpsc::sync_channel(1);
    let request = match request {
        ClientRequest::Status => Request::Status { reply: tx.into() },
        ClientRequest::Ask { key, value } => {
            let key = match app::key(&key) {
                Ok(k) => k,
                Err(e) => return error(e.to_string()),
            };
            let value = match value.as_deref().map(app::value).transpose() {
                Ok(v) => v,
                Err(e) => return error(e.to_string()),
            };
            Request::Ask {
                key,
                value,
                reply: tx.into(),
            }
        }
    };
    if node.send(request).is_err() {
        return error("the node is stopping".into());
    }
    rx.recv_timeout(ANSWER_TIMEOUT)
        .map(|reply| reply.to_client())
        .unwrap_or_else(|_| error("no answer in time".into()))
}
