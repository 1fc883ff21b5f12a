//! The live view's HTTP routes, served by the API threads: WHEP (RFC 9725): `POST /whep/<camera>` with an SDP offer answers `201 Created` with the SDP
//! answer and the session's `Location`; `DELETE` on that location ends the session.
//!
//! The API thread parses the offer itself (cheap, and keeps bad input away from the `live`
//! thread), then hands it to `live` and waits at most [`REPLY_TIMEOUT`]: one slow mediasoup
//! call cannot hold the API thread, so `/healthz` and `/api/cameras` stay responsive.

use std::io::Read;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use tiny_http::{Method, Request, Response};

use super::offer::Offer;
use super::runtime::Command;
use super::WhepError;
use crate::api::{header, header_value, text, Reply, Routes};
use crate::config::is_valid_camera_id;

/// Longest wait of the API thread for the `live` thread. Creating a viewer takes a few
/// milliseconds; this only bounds the damage of a stuck worker.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// A browser's offer is 3 to 8 KiB; anything this big is not one.
const MAX_OFFER_BYTES: u64 = 64 * 1024;

pub struct LiveRoutes {
    commands: Sender<Command>,
}

impl LiveRoutes {
    pub(super) fn new(commands: Sender<Command>) -> LiveRoutes {
        LiveRoutes { commands }
    }

    fn offer(&self, request: &mut Request, camera: &str) -> Reply {
        let content_type = header(request, "Content-Type").unwrap_or_default();
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/sdp") {
            return text(
                415,
                &format!(
                    "the offer must be sent with Content-Type: application/sdp (got {:?})",
                    content_type
                ),
            );
        }
        let mut body = Vec::new();
        if let Err(e) = request
            .as_reader()
            .take(MAX_OFFER_BYTES + 1)
            .read_to_end(&mut body)
        {
            return text(400, &format!("cannot read the request body: {e}"));
        }
        if body.len() as u64 > MAX_OFFER_BYTES {
            return text(
                413,
                &format!("the offer is larger than {MAX_OFFER_BYTES} bytes: not an SDP offer"),
            );
        }
        let Ok(sdp) = String::from_utf8(body) else {
            return text(400, "bad SDP offer: the body is not UTF-8 text");
        };
        let offer = match Offer::parse(&sdp) {
            Ok(o) => o,
            Err(why) => return refusal(&WhepError::BadOffer(why)),
        };
        let (reply, answer) = crossbeam_channel::bounded(1);
        let sent = self.commands.send(Command::Offer {
            camera: camera.to_string(),
            offer: Box::new(offer),
            reply,
        });
        if sent.is_err() {
            return refusal(&WhepError::Unavailable(
                "the live thread has stopped".into(),
            ));
        }
        match wait_reply(&answer, REPLY_TIMEOUT) {
            Ok(answered) => {
                let location = format!("/whep/{camera}/{}", answered.session);
                Response::from_data(answered.sdp.into_bytes())
                    .with_status_code(201)
                    .boxed()
                    .with_header(header_value("Content-Type", "application/sdp"))
                    .with_header(header_value("Location", &location))
            }
            Err(e) => refusal(&e),
        }
    }

    fn close(&self, camera: &str, session: &str) -> Reply {
        let (reply, done) = crossbeam_channel::bounded(1);
        let sent = self.commands.send(Command::Close {
            camera: camera.to_string(),
            session: session.to_string(),
            reply,
        });
        if sent.is_err() {
            return refusal(&WhepError::Unavailable(
                "the live thread has stopped".into(),
            ));
        }
        match wait_reply(&done, REPLY_TIMEOUT) {
            Ok(()) => text(200, "session ended"),
            Err(e) => refusal(&e),
        }
    }
}

impl Routes for LiveRoutes {
    fn respond(&self, request: &mut Request, path: &str) -> Option<Reply> {
        let rest = path.strip_prefix("/whep/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        let reply = match parts[..] {
            [camera] if !is_valid_camera_id(camera) => {
                refusal(&WhepError::UnknownCamera(camera.into()))
            }
            [camera] => match request.method() {
                Method::Post => self.offer(request, camera),
                _ => text(405, "use POST with an SDP offer to start a WHEP session")
                    .with_header(header_value("Allow", "POST")),
            },
            [camera, session] if is_valid_camera_id(camera) && is_session_id(session) => {
                match request.method() {
                    Method::Delete => self.close(camera, session),
                    Method::Patch => text(
                        405,
                        "trickle ICE and ICE restarts are not supported: the server is \
                         ICE-lite and its answer carries every candidate",
                    )
                    .with_header(header_value("Allow", "DELETE")),
                    _ => text(405, "use DELETE to end the session")
                        .with_header(header_value("Allow", "DELETE")),
                }
            }
            _ => refusal(&WhepError::UnknownSession),
        };
        Some(reply)
    }
}

/// Session ids are mediasoup transport ids: UUIDs.
fn is_session_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn refusal(e: &WhepError) -> Reply {
    let reply = text(e.status(), &e.to_string());
    match e.retry_after_s() {
        Some(s) => reply.with_header(header_value("Retry-After", &s.to_string())),
        None => reply,
    }
}

/// Waits for a reply from the `live` thread for at most `timeout`.
fn wait_reply<T>(rx: &Receiver<Result<T, WhepError>>, timeout: Duration) -> Result<T, WhepError> {
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(RecvTimeoutError::Timeout) => Err(WhepError::Unavailable(format!(
            "the live thread did not answer within {} s",
            timeout.as_secs()
        ))),
        Err(RecvTimeoutError::Disconnected) => {
            Err(WhepError::Unavailable("the live thread has stopped".into()))
        }
    }
}
