//! The HTTP API on `[server] listen`: health, camera status as JSON, the same figures as
//! Prometheus metrics, plus the routes other parts of vasd add through [`Routes`] (the live
//! view: its page and WHEP).
//!
//! tiny_http runs one `api` thread here; requests are short reads of atomics, so one thread
//! serves them all and never touches a camera thread. Added routes that need another thread
//! (WHEP) hand the work over and wait a bounded time.

mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::error::{Error, Result};
use crate::supervisor::StatusBoard;
use metrics::Metrics;

/// Routes served by another part of vasd, behind the same token check.
pub trait Routes: Send + Sync {
    /// Paths anyone may fetch without the token: static assets that carry no data.
    fn is_public(&self, path: &str) -> bool;
    /// The reply to `request` for `path`, or `None` when `path` is not one of these routes.
    fn respond(&self, request: &mut Request, path: &str) -> Option<Reply>;
}

pub struct Api {
    server: Arc<Server>,
    thread: JoinHandle<()>,
    pub addr: SocketAddr,
}

impl Api {
    /// Binds `listen` and starts serving. Refuses a non-loopback address without a token: the
    /// status and, later, the live view must not be open to a network by accident.
    pub fn start(
        listen: SocketAddr,
        token: Option<String>,
        board: StatusBoard,
        routes: Option<Arc<dyn Routes>>,
    ) -> Result<Api> {
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
        let metrics = Metrics::new(board.clone());
        let thread = {
            let server = server.clone();
            std::thread::Builder::new()
                .name("api".into())
                .spawn(move || {
                    let api = Served {
                        token: token.as_deref(),
                        board: &board,
                        metrics: &metrics,
                        routes: routes.as_deref(),
                    };
                    serve(&server, &api)
                })
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

/// What the `api` thread answers from.
struct Served<'a> {
    token: Option<&'a str>,
    board: &'a StatusBoard,
    metrics: &'a Metrics,
    routes: Option<&'a dyn Routes>,
}

fn serve(server: &Server, api: &Served) {
    for mut request in server.incoming_requests() {
        let response = route(&mut request, api);
        if let Err(e) = request.respond(response) {
            log::debug!(target: "api", "response not delivered: {e}");
        }
    }
}

pub type Reply = Response<std::io::Cursor<Vec<u8>>>;

fn text(status: u16, body: &str) -> Reply {
    Response::from_string(body).with_status_code(status)
}

fn with_content_type(reply: Reply, content_type: &str) -> Reply {
    reply.with_header(
        Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
            .expect("static header is valid"),
    )
}

fn json(body: &impl serde::Serialize) -> Reply {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    with_content_type(Response::from_data(bytes), "application/json")
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

fn route(request: &mut Request, api: &Served) -> Reply {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    if path == "/healthz" {
        return text(200, "ok\n");
    }
    let public = api.routes.is_some_and(|r| r.is_public(&path));
    if !public && !authorized(request, api.token) {
        return text(401, "missing or wrong bearer token\n");
    }
    if let Some(reply) = api.routes.and_then(|r| r.respond(request, &path)) {
        return reply;
    }
    match (request.method(), path.as_str()) {
        (Method::Get, "/api/cameras") => {
            let board = api.board.read().unwrap_or_else(|e| e.into_inner());
            json(&cameras_json(&board))
        }
        (Method::Get, "/metrics") => match api.metrics.render() {
            Ok(body) => with_content_type(Response::from_string(body), metrics::CONTENT_TYPE),
            Err(_) => text(500, "the metrics could not be encoded\n"),
        },
        (_, "/api/cameras" | "/metrics") => text(405, "use GET\n"),
        _ => text(
            404,
            "no such endpoint: try /healthz, /api/cameras or /metrics\n",
        ),
    }
}

/// One JSON object per camera: its main stream's status, with the substream's status nested
/// as `substream` and `role_streams` naming the stream that serves each role.
fn cameras_json(
    board: &std::collections::BTreeMap<String, std::sync::Arc<crate::camera::status::CameraStatus>>,
) -> Vec<serde_json::Value> {
    let mut cams = Vec::new();
    for (key, status) in board {
        if key.ends_with("/sub") {
            continue;
        }
        let main = status.snapshot();
        let sub = board.get(&format!("{key}/sub")).map(|s| s.snapshot());
        let mut role_streams = serde_json::Map::new();
        for (stream, roles) in
            std::iter::once(("main", &main.roles)).chain(sub.as_ref().map(|s| ("sub", &s.roles)))
        {
            for role in roles.iter() {
                role_streams.insert(role.to_string(), stream.into());
            }
        }
        let mut value = serde_json::to_value(&main).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("role_streams".into(), role_streams.into());
            obj.insert(
                "substream".into(),
                sub.map_or(serde_json::Value::Null, |s| {
                    serde_json::to_value(&s).unwrap_or_default()
                }),
            );
        }
        cams.push(value);
    }
    cams
}
