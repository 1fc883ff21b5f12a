//! The live view: each camera's access units become an RTP stream in mediasoup, and any number
//! of viewers receive it over WebRTC, connecting with WHEP.
//!
//! ```text
//! cam-<id> --try_send--> [bounded queue, 64 units] --> live thread
//!                                                        feed: key frame gating, SPS/PPS,
//!                                                        RTP timestamps, RFC 6184 packets
//!                                                        --> DirectProducer::send (per flavor)
//! api thread: POST /whep/<id> --command--> live thread: WebRtcTransport + Consumer --> answer
//! mediasoup:  executor thread (events) + worker thread (ICE, DTLS, SRTP, RTP out)
//! ```
//!
//! Threads: `live` owns every mediasoup object and drives mediasoup's async API with
//! `block_on`; mediasoup adds its executor thread (it inherits the name `live`) and its C++
//! worker thread (`mediasoup-worker-<uuid>`, shown truncated). The camera thread only ever
//! `try_send`s into the queue [`LiveConsumer::attach`] returns (architecture invariant 1); the
//! API thread hands WHEP requests to `live` and waits at most [`whep::REPLY_TIMEOUT`].
//!
//! Per camera: one feed (access units to RTP, see `feed`) and one mediasoup router per
//! *flavor*, the H.264 payload type and profile its viewers negotiated (see `flavor`: WHEP
//! lets each viewer's offer choose the payload type, mediasoup sends one per router). Without
//! viewers nothing is packetized or sent, and the camera thread hands over only key frames,
//! which keep the parameter sets known for the next viewer: an idle camera costs the live
//! view one queue hop per GOP.
//!
//! The mediasoup worker starts with the first live camera, not before: a vasd without live
//! cameras runs no worker. The service itself always exists, so a reload can turn the live
//! view on for a camera.

mod answer;
mod audio;
mod feed;
mod flavor;
mod offer;
mod packetizer;
mod rtcp;
mod runtime;
mod status;
mod timeline;
mod whep;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::camera::fanout::QueueSink;
use crate::camera::status::CameraStatus;
use crate::config::{CameraConfig, LiveConfig};
use crate::supervisor::Consumer;

use self::runtime::{Attached, Command, Runtime};
use self::status::LiveStatus;
use self::whep::LiveRoutes;

/// Access units the live queue of a camera holds: two seconds of video at 30 fps and audio at
/// 50 packets a second, plenty for the `live` thread's longest pause (creating a viewer's
/// transport takes milliseconds). Fuller means the live view cannot keep up; the camera
/// thread then drops and the feed restarts at a key frame.
const QUEUE_UNITS: usize = 160;

/// Why a WHEP request was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum WhepError {
    UnknownCamera(String),
    /// The camera exists with `live = false`.
    NotLive(String),
    /// The camera has not sent an SPS yet (connecting, or no key frame yet).
    NoVideoYet(String),
    /// The camera's stream cannot be sent (not H.264, or a profile WebRTC does not know).
    Unplayable {
        camera: String,
        why: String,
    },
    TooManyViewers {
        camera: String,
        max: u32,
    },
    BadOffer(String),
    UnknownSession,
    /// The media worker or the `live` thread is not available.
    Unavailable(String),
}

impl WhepError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            WhepError::BadOffer(_) => 400,
            WhepError::UnknownCamera(_) | WhepError::UnknownSession => 404,
            WhepError::NotLive(_) | WhepError::NoVideoYet(_) | WhepError::Unplayable { .. } => 409,
            WhepError::TooManyViewers { .. } => 429,
            WhepError::Unavailable(_) => 503,
        }
    }

    /// Seconds after which trying again makes sense, for a `Retry-After` header.
    pub fn retry_after_s(&self) -> Option<u32> {
        match self {
            WhepError::NoVideoYet(_) | WhepError::Unavailable(_) => Some(2),
            WhepError::TooManyViewers { .. } => Some(10),
            _ => None,
        }
    }
}

impl fmt::Display for WhepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WhepError::UnknownCamera(id) => write!(f, "no camera {id:?} is configured"),
            WhepError::NotLive(id) => write!(
                f,
                "camera {id:?} is not in the live view: set live = true for it in vas.toml \
                 and reload"
            ),
            WhepError::NoVideoYet(id) => write!(
                f,
                "camera {id:?} has not sent video yet (no H.264 SPS received): retry in a \
                 few seconds"
            ),
            WhepError::Unplayable { camera, why } => {
                write!(f, "camera {camera:?} cannot be viewed: {why}")
            }
            WhepError::TooManyViewers { camera, max } => write!(
                f,
                "camera {camera:?} already has {max} viewers, the most [live] max_viewers \
                 allows"
            ),
            WhepError::BadOffer(why) => write!(f, "bad SDP offer: {why}"),
            WhepError::UnknownSession => write!(f, "no such WHEP session"),
            WhepError::Unavailable(why) => write!(f, "the live view is unavailable: {why}"),
        }
    }
}

/// The running live view: the `live` thread and the handles other parts of vasd use.
pub struct Live {
    commands: Sender<Command>,
    thread: JoinHandle<()>,
    max_viewers: u32,
}

impl Live {
    /// Starts the `live` thread. The mediasoup worker waits for the first live camera.
    pub fn start(config: &LiveConfig) -> std::io::Result<Live> {
        if config.listen_ip.is_unspecified() && config.announced_address.is_none() {
            log::warn!(
                target: "live",
                "[live] listen_ip = {} without announced_address: viewers would be told to \
                 send to {0}; set announced_address to this host's address",
                config.listen_ip
            );
        }
        let (commands, rx) = crossbeam_channel::unbounded();
        let runtime = Runtime::new(config.clone(), rx);
        let thread = std::thread::Builder::new()
            .name("live".into())
            .spawn(move || runtime.run())?;
        Ok(Live {
            commands,
            thread,
            max_viewers: config.max_viewers,
        })
    }

    /// The consumer to give the supervisor: it attaches every camera with `live = true`.
    pub fn consumer(&self) -> Box<dyn Consumer> {
        Box::new(LiveConsumer {
            commands: self.commands.clone(),
            max_viewers: self.max_viewers,
            statuses: BTreeMap::new(),
        })
    }

    /// The API routes: the viewer page at `/` and WHEP under `/whep/`.
    pub fn routes(&self) -> Arc<dyn crate::api::Routes> {
        Arc::new(LiveRoutes::new(self.commands.clone()))
    }

    /// Closes every viewer and the media worker, and ends the thread.
    pub fn stop(self) {
        let _ = self.commands.send(Command::Stop);
        if self.thread.join().is_err() {
            log::error!(target: "live", "the live thread panicked");
        }
    }
}

/// The supervisor's side of the live view.
struct LiveConsumer {
    commands: Sender<Command>,
    max_viewers: u32,
    /// One status section per camera id, kept across restarts of its thread so that a
    /// reload does not reset the figures of viewers who stay.
    statuses: BTreeMap<String, Arc<LiveStatus>>,
}

impl Consumer for LiveConsumer {
    fn attach(&mut self, cam: &CameraConfig, status: &Arc<CameraStatus>) -> Option<QueueSink> {
        if !cam.roles.live {
            // Another stream of the camera serves the live view.
            return None;
        }
        if !cam.live {
            let _ = self.commands.send(Command::Attach {
                id: cam.id.clone(),
                feed: None,
            });
            return None;
        }
        let (mut sink, units) = QueueSink::bounded("live", QUEUE_UNITS);
        // Audio units are taken whenever the camera's live view has audio and viewers, with
        // or without listeners: dropped on arrival without (live::audio).
        sink.wants_audio = cam.live_audio;
        // Without viewers the camera offers key frames only (see `Runtime::update_idle`).
        let idle = Arc::new(AtomicBool::new(true));
        sink.idle = Some(idle.clone());
        let live = self
            .statuses
            .entry(cam.id.clone())
            .or_insert_with(|| Arc::new(LiveStatus::new(self.max_viewers, sink.stats.clone())))
            .clone();
        live.set_queue(sink.stats.clone());
        status.add_section("live", live.clone());
        let _ = self.commands.send(Command::Attach {
            id: cam.id.clone(),
            feed: Some(Attached {
                units,
                status: live,
                audio: cam.live_audio,
                idle,
            }),
        });
        Some(sink)
    }

    fn detach(&mut self, cam: &CameraConfig) {
        if !cam.roles.live {
            return;
        }
        let _ = self.commands.send(Command::Detach { id: cam.id.clone() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_precise_statuses() {
        // (error, HTTP status, retry after, text)
        let table = [
            (
                WhepError::BadOffer("x".into()),
                400,
                None,
                "bad SDP offer: x",
            ),
            (
                WhepError::UnknownCamera("a".into()),
                404,
                None,
                "no camera \"a\"",
            ),
            (WhepError::NotLive("a".into()), 409, None, "set live = true"),
            (
                WhepError::NoVideoYet("a".into()),
                409,
                Some(2),
                "has not sent video yet",
            ),
            (
                WhepError::TooManyViewers {
                    camera: "a".into(),
                    max: 3,
                },
                429,
                Some(10),
                "already has 3 viewers",
            ),
            (
                WhepError::Unavailable("w".into()),
                503,
                Some(2),
                "unavailable: w",
            ),
        ];
        for (e, status, retry, text) in table {
            assert_eq!(e.status(), status, "{e}");
            assert_eq!(e.retry_after_s(), retry, "{e}");
            assert!(e.to_string().contains(text), "{e}");
        }
    }
}
