//! The HTTP API on `[server] listen`: health, camera status as JSON, the same figures as
//! Prometheus metrics, plus the routes other parts of vasd add through [`Routes`] (the live
//! view: its page and WHEP; playback of recordings).
//!
//! tiny_http reads requests on its own threads; [`WORKERS`] `api` threads answer them. A
//! route that streams for long (a recording) is answered on a thread of its own, at most
//! [`MAX_LONG`] at once, so a download or a slow client never holds up `/healthz`,
//! `/metrics` or a WHEP exchange. Routes that need another thread (WHEP) hand the work over
//! and wait a bounded time.

mod metrics;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::error::{Error, Result};
use crate::supervisor::StatusBoard;
use metrics::Metrics;

/// Threads answering requests.
pub const WORKERS: usize = 4;
/// Long replies (recordings) streaming at once; more are refused with 503.
pub const MAX_LONG: usize = 16;

/// Routes served by another part of vasd, behind the same token check.
pub trait Routes: Send + Sync {
    /// Paths that also take the token as `?access_token=` (RFC 6750 section 2.3), for
    /// clients that cannot send a header: a `<video src>`, a download link.
    fn token_in_query(&self, _path: &str) -> bool {
        false
    }
    /// Paths whose replies stream for long: answered on a thread of their own.
    fn is_long(&self, _path: &str) -> bool {
        false
    }
    /// The reply to `request` for `path`, or `None` when `path` is not one of these routes.
    fn respond(&self, request: &mut Request, path: &str) -> Option<Reply>;
}

pub struct Api {
    server: Arc<Server>,
    threads: Vec<JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl Api {
    /// Binds `listen` and starts serving. Refuses a non-loopback address without a token: the
    /// status and, later, the live view must not be open to a network by accident.
    pub fn start(
        listen: SocketAddr,
        token: Option<String>,
        board: StatusBoard,
        routes: Vec<Arc<dyn Routes>>,
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
        let served = Arc::new(Served {
            token,
            metrics: Metrics::new(board.clone()),
            board,
            routes,
            long: AtomicUsize::new(0),
        });
        let mut threads = Vec::new();
        for n in 0..WORKERS {
            let (shared, served) = (server.clone(), served.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("api-{n}"))
                .spawn(move || serve(&shared, &served));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    server.unblock();
                    return Err(Error::Io {
                        what: "starting the api threads".into(),
                        source: e,
                    });
                }
            }
        }
        Ok(Api {
            server,
            threads,
            addr,
        })
    }

    pub fn stop(self) {
        // One unblock wakes one waiting worker.
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// What the `api` threads answer from.
struct Served {
    token: Option<String>,
    board: StatusBoard,
    metrics: Metrics,
    routes: Vec<Arc<dyn Routes>>,
    /// Long replies streaming now.
    long: AtomicUsize,
}

fn serve(server: &Server, api: &Arc<Served>) {
    for mut request in server.incoming_requests() {
        let path = path_of(&request);
        if api.routes.iter().any(|r| r.is_long(&path)) {
            answer_long(request, api);
            continue;
        }
        let response = route(&mut request, api);
        respond(request, response);
    }
}

fn respond(request: Request, response: Reply) {
    if let Err(e) = request.respond(response) {
        log::debug!(target: "api", "response not delivered: {e}");
    }
}

/// Answers `request` on a thread of its own, or refuses it when [`MAX_LONG`] stream already.
fn answer_long(mut request: Request, api: &Arc<Served>) {
    // Relaxed: a count of streams, not a guard of any data.
    if api.long.fetch_add(1, Ordering::Relaxed) >= MAX_LONG {
        api.long.fetch_sub(1, Ordering::Relaxed);
        let reply = text(
            503,
            &format!("{MAX_LONG} recordings are streaming already; try again"),
        )
        .with_header(header_value("Retry-After", "5"));
        return respond(request, reply);
    }
    let served = api.clone();
    let spawned = std::thread::Builder::new()
        .name("api-long".into())
        .spawn(move || {
            let response = route(&mut request, &served);
            respond(request, response);
            served.long.fetch_sub(1, Ordering::Relaxed);
        });
    if let Err(e) = spawned {
        api.long.fetch_sub(1, Ordering::Relaxed);
        log::warn!(target: "api", "cannot start a thread for a long reply: {e}");
    }
}

/// Every reply: a body of any length, streamed.
pub type Reply = tiny_http::ResponseBox;

/// A plain-text reply; the body ends with a newline.
pub fn text(status: u16, body: &str) -> Reply {
    let mut body = body.to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    Response::from_string(body).with_status_code(status).boxed()
}

pub fn header_value(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("header names and values we make are ASCII")
}

/// The value of the first header `name` of `request`.
pub fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

fn with_content_type(reply: Reply, content_type: &str) -> Reply {
    reply.with_header(header_value("Content-Type", content_type))
}

/// A JSON reply with `status`; never cached (it is status or listings of now).
pub fn json_reply(status: u16, body: &impl serde::Serialize) -> Reply {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    with_content_type(
        Response::from_data(bytes).with_status_code(status).boxed(),
        "application/json",
    )
    .with_header(header_value("Cache-Control", "no-store"))
}

fn path_of(request: &Request) -> String {
    request.url().split('?').next().unwrap_or("").to_string()
}

/// Whether `request` carries the token: as a bearer header, or, where `in_query`, as
/// `access_token`. Compared in constant time.
fn authorized(request: &Request, token: Option<&str>, in_query: bool) -> bool {
    let Some(token) = token else { return true };
    let same = |t: &str| constant_time_eq::constant_time_eq(t.as_bytes(), token.as_bytes());
    let header_ok = request.headers().iter().any(|h| {
        h.field.equiv("Authorization") && h.value.as_str().strip_prefix("Bearer ").is_some_and(same)
    });
    header_ok
        || (in_query
            && request.url().split_once('?').is_some_and(|(_, q)| {
                form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "access_token" && same(&v))
            }))
}

/// The viewer page (live view and recordings): plain HTML and JavaScript, no build step,
/// nothing fetched from elsewhere. It holds no data: everything it shows it fetches with the
/// token, which the user enters in the page (a browser cannot send a bearer token when
/// navigating), so it is served without one.
const VIEWER_PAGE: &str = include_str!("viewer.html");

fn route(request: &mut Request, api: &Served) -> Reply {
    let path = path_of(request);
    if path == "/healthz" {
        return text(200, "ok");
    }
    if path == "/" {
        return match request.method() {
            Method::Get | Method::Head => Response::from_string(VIEWER_PAGE)
                .boxed()
                .with_header(header_value("Content-Type", "text/html; charset=utf-8"))
                .with_header(header_value("Cache-Control", "no-cache")),
            _ => text(405, "use GET").with_header(header_value("Allow", "GET")),
        };
    }
    let in_query = api.routes.iter().any(|r| r.token_in_query(&path));
    if !authorized(request, api.token.as_deref(), in_query) {
        return text(401, "missing or wrong bearer token");
    }
    for routes in &api.routes {
        if let Some(reply) = routes.respond(request, &path) {
            return reply;
        }
    }
    match (request.method(), path.as_str()) {
        (Method::Get, "/api/cameras") => {
            let board = api.board.read().unwrap_or_else(|e| e.into_inner());
            json_reply(200, &cameras_json(&board))
        }
        (Method::Get, "/metrics") => match api.metrics.render() {
            Ok(body) => {
                with_content_type(Response::from_string(body).boxed(), metrics::CONTENT_TYPE)
            }
            Err(_) => text(500, "the metrics could not be encoded"),
        },
        (_, "/api/cameras" | "/metrics") => text(405, "use GET"),
        _ => text(
            404,
            "no such endpoint: try /healthz, /api/cameras, /api/recordings or /metrics",
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
