//! The HTTP API on `[server] listen`: health and camera status as JSON.
//!
//! tiny_http runs one `api` thread here; requests are short reads of atomics, so one thread
//! serves them all and never touches a camera thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::error::{Error, Result};
use crate::supervisor::StatusBoard;

pub struct Api {
    server: Arc<Server>,
    thread: JoinHandle<()>,
    pub addr: SocketAddr,
}

impl Api {
    /// Binds `listen` and starts serving. Refuses a non-loopback address without a token: the
    /// status and, later, the live view must not be open to a network by accident.
    pub fn start(listen: SocketAddr, token: Option<String>, board: StatusBoard) -> Result<Api> {
        if !listen.ip().is_loopback() && token.is_none() {
            return Err(Error::Listen {
                addr: listen.to_string(),
                message: "a non-loopback address needs [server] token set".into(),
            });
        }
        let server = Server::http(listen).map_err(|e| Error::Listen {
            addr: listen.to_string(),
            message: e.to_string(),
        })?;
        let addr = server.server_addr().to_ip().unwrap_or(listen);
        let server = Arc::new(server);
        let thread = {
            let server = server.clone();
            std::thread::Builder::new()
                .name("api".into())
                .spawn(move || serve(&server, token.as_deref(), &board))
                .map_err(|e| Error::Io {
                    what: "starting the api thread".into(),
                    source: e,
                })?
        };
        Ok(Api {
            server,
            thread,
            addr,
        })
    }

    pub fn stop(self) {
        self.server.unblock();
        let _ = self.thread.join();
    }
}

fn serve(server: &Server, token: Option<&str>, board: &StatusBoard) {
    for request in server.incoming_requests() {
        let response = route(&request, token, board);
        if let Err(e) = request.respond(response) {
            log::debug!(target: "api", "response not delivered: {e}");
        }
    }
}

type Reply = Response<std::io::Cursor<Vec<u8>>>;

fn text(status: u16, body: &str) -> Reply {
    Response::from_string(body).with_status_code(status)
}

fn json(body: &impl serde::Serialize) -> Reply {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    Response::from_data(bytes).with_header(
        Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..])
            .expect("static header is valid"),
    )
}

fn authorized(request: &Request, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    request.headers().iter().any(|h| {
        h.field.equiv("Authorization")
            && h.value
                .as_str()
                .strip_prefix("Bearer ")
                .is_some_and(|t| t == token)
    })
}

fn route(request: &Request, token: Option<&str>, board: &StatusBoard) -> Reply {
    let path = request.url().split('?').next().unwrap_or("");
    if path == "/healthz" {
        return text(200, "ok\n");
    }
    if !authorized(request, token) {
        return text(401, "missing or wrong bearer token\n");
    }
    match (request.method(), path) {
        (Method::Get, "/api/cameras") => {
            let board = board.read().unwrap_or_else(|e| e.into_inner());
            let cams: Vec<_> = board.values().map(|s| s.snapshot()).collect();
            json(&cams)
        }
        (_, "/api/cameras") => text(405, "use GET\n"),
        _ => text(404, "no such endpoint: try /healthz or /api/cameras\n"),
    }
}
