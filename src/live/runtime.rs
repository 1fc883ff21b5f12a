//! The `live` thread: owns the mediasoup worker, each live camera's feed and routers, and the
//! viewers' transports. It waits on one `Select` over its command queue, mediasoup's events
//! and every camera's unit queue, so a unit is packetized as soon as it arrives and a WHEP
//! request is answered between two units.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender};
use futures_lite::future::block_on;
use mediasoup::prelude::*;
use mediasoup::types::data_structures::{DtlsState, IceState};
use mediasoup::worker::{WorkerLogLevel, WorkerSettings};

use super::answer::{answer, Local};
use super::audio::{self, AudioFeed, AudioOut};
use super::feed::{Feed, Outcome, UnitIn};
use super::flavor::{Flavor, FlavorKey};
use super::offer::Offer;
use super::status::LiveStatus;
use super::timeline::{to_clock, CLOCK_RATE};
use super::WhepError;
use crate::camera::fanout::{SharedUnit, Track};
use crate::config::LiveConfig;

/// mediasoup drops a viewer's ICE after this long without a consent check from it (RFC 7675;
/// browsers and aiortc send one every 4 to 6 s). mediasoup accepts 10 to 60 s; 15 s frees the
/// transport of a viewer that vanished (killed, network gone) quickly without dropping a live
/// one that missed a check or two.
const ICE_CONSENT_TIMEOUT_S: u8 = 15;
/// A viewer whose DTLS handshake has not completed this long after its offer never will.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A camera whose thread ended keeps its routers and viewers this long: a reload that
/// restarts the camera attaches it again within milliseconds, and its viewers stay.
const DETACH_GRACE: Duration = Duration::from_secs(10);
/// Housekeeping period (timeouts above) when nothing else wakes the thread.
const TICK: Duration = Duration::from_millis(500);

pub(super) enum Command {
    /// A camera starts; `feed` is `None` when it has `live = false`.
    Attach {
        id: String,
        feed: Option<Attached>,
    },
    /// A camera's thread ended.
    Detach {
        id: String,
    },
    Offer {
        camera: String,
        offer: Box<Offer>,
        reply: Sender<Result<Answered, WhepError>>,
    },
    Close {
        camera: String,
        session: String,
        reply: Sender<Result<(), WhepError>>,
    },
    Stop,
}

pub(super) struct Attached {
    pub units: Receiver<SharedUnit>,
    pub status: Arc<LiveStatus>,
    /// `live_audio`: the queue carries the camera's audio units too.
    pub audio: bool,
    /// Raised while the camera has no viewers: its thread then offers key frames only.
    pub idle: Arc<AtomicBool>,
}

pub(super) struct Answered {
    pub session: String,
    pub sdp: String,
}

/// What mediasoup's callbacks report, from its executor thread.
enum Event {
    Ice(String, IceState),
    Dtls(String, DtlsState),
    WorkerDied(String),
}

struct Media {
    worker: Worker,
    /// Keeps the executor thread running as long as the worker.
    _manager: WorkerManager,
}

struct LiveCamera {
    status: Arc<LiveStatus>,
    units: Receiver<SharedUnit>,
    feed: Feed,
    audio_feed: AudioFeed,
    /// Video and audio SSRCs.
    ssrcs: (u32, u32),
    /// `live_audio` of the camera.
    audio_enabled: bool,
    /// Shared with the camera thread's sink, see [`Runtime::update_idle`].
    idle: Arc<AtomicBool>,
    /// The camera's audio codec, from its stream description; `None` without audio.
    audio_codec: Option<ffmpeg_next::codec::Id>,
    /// profile-level-id of the stream's SPS.
    profile: Option<String>,
    /// Set when the stream cannot be sent at all (not H.264).
    unplayable: Option<String>,
    flavors: Vec<Flavor>,
    detached_at: Option<Instant>,
}

impl LiveCamera {
    /// Called wherever the camera's flavors (its viewers) or its sink change: tells the
    /// camera thread whether the live view wants every unit or only key frames, and closes
    /// the audio transcoder once nobody listens (no audio arrives to notice it by then).
    fn flavors_changed(&mut self) {
        // Relaxed: see QueueSink::idle.
        self.idle.store(self.flavors.is_empty(), Ordering::Relaxed);
        if !self.flavors.iter().any(|f| f.audio.is_some()) {
            self.audio_feed.no_listeners();
        }
    }
}

struct Viewer {
    camera: String,
    flavor: FlavorKey,
    created: Instant,
    connected: bool,
    saw_key_frame: bool,
    transport: WebRtcTransport,
    _consumer: mediasoup::consumer::Consumer,
    _audio_consumer: Option<mediasoup::consumer::Consumer>,
}

/// What woke the thread.
enum Wake {
    Command(Option<Command>),
    Event(Event),
    Unit(usize, Option<SharedUnit>),
    Tick,
}

pub(super) struct Runtime {
    config: LiveConfig,
    commands: Receiver<Command>,
    events_tx: Sender<Event>,
    events: Receiver<Event>,
    media: Option<Media>,
    cameras: BTreeMap<String, LiveCamera>,
    not_live: BTreeSet<String>,
    viewers: HashMap<String, Viewer>,
    /// The unit queues to wait on, rebuilt when cameras come and go.
    feeds: Vec<(String, Receiver<SharedUnit>)>,
    feeds_dirty: bool,
}

impl Runtime {
    pub(super) fn new(config: LiveConfig, commands: Receiver<Command>) -> Runtime {
        let (events_tx, events) = crossbeam_channel::unbounded();
        Runtime {
            config,
            commands,
            events_tx,
            events,
            media: None,
            cameras: BTreeMap::new(),
            not_live: BTreeSet::new(),
            viewers: HashMap::new(),
            feeds: Vec::new(),
            feeds_dirty: false,
        }
    }

    pub(super) fn run(mut self) {
        let mut housekept = Instant::now();
        loop {
            if self.feeds_dirty {
                self.feeds = self
                    .cameras
                    .iter()
                    .filter(|(_, c)| c.detached_at.is_none())
                    .map(|(id, c)| (id.clone(), c.units.clone()))
                    .collect();
                self.feeds_dirty = false;
            }
            let wake = {
                let mut sel = Select::new();
                sel.recv(&self.commands);
                sel.recv(&self.events);
                for (_, rx) in &self.feeds {
                    sel.recv(rx);
                }
                match sel.select_timeout(TICK) {
                    Err(_) => Wake::Tick,
                    Ok(op) => match op.index() {
                        0 => Wake::Command(op.recv(&self.commands).ok()),
                        1 => match op.recv(&self.events) {
                            Ok(e) => Wake::Event(e),
                            Err(_) => Wake::Tick,
                        },
                        i => Wake::Unit(i - 2, op.recv(&self.feeds[i - 2].1).ok()),
                    },
                }
            };
            match wake {
                Wake::Command(None) | Wake::Command(Some(Command::Stop)) => break,
                Wake::Command(Some(cmd)) => self.command(cmd),
                Wake::Event(e) => self.event(e),
                Wake::Unit(i, Some(unit)) => {
                    let id = self.feeds[i].0.clone();
                    self.unit(&id, &unit);
                }
                Wake::Unit(i, None) => {
                    // The camera thread ended and dropped its sender: stop waiting on it (a
                    // disconnected queue is always ready); the supervisor's detach follows.
                    let id = self.feeds[i].0.clone();
                    if let Some(cam) = self.cameras.get_mut(&id) {
                        cam.units = crossbeam_channel::never();
                    }
                    self.feeds_dirty = true;
                }
                Wake::Tick => {}
            }
            let now = Instant::now();
            if now.duration_since(housekept) >= TICK {
                self.housekeeping(now);
                housekept = now;
            }
        }
        let ids: Vec<String> = self.cameras.keys().cloned().collect();
        for id in ids {
            self.close_camera(&id, "vasd is stopping");
        }
        if self.media.take().is_some() {
            log::info!(target: "live", "stopped");
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Attach { id, feed: None } => {
                self.close_camera(&id, "live = false in the new config");
                self.not_live.insert(id);
            }
            Command::Attach {
                id,
                feed: Some(attached),
            } => self.attach(id, attached),
            Command::Detach { id } => {
                self.not_live.remove(&id);
                if let Some(cam) = self.cameras.get_mut(&id) {
                    cam.detached_at = Some(Instant::now());
                    cam.units = crossbeam_channel::never();
                    self.feeds_dirty = true;
                }
            }
            Command::Offer {
                camera,
                offer,
                reply,
            } => {
                let result = self.offer(&camera, &offer);
                if let Ok(answered) = &result {
                    let session = answered.session.clone();
                    if reply.send(result).is_err() {
                        // The API gave up waiting: nobody will ever use this session.
                        self.close_viewer(&session, "the WHEP request timed out");
                    }
                } else {
                    let _ = reply.send(result);
                }
            }
            Command::Close {
                camera,
                session,
                reply,
            } => {
                let known = self
                    .viewers
                    .get(&session)
                    .is_some_and(|v| v.camera == camera);
                let result = if known {
                    self.close_viewer(&session, "ended by the viewer (DELETE)");
                    Ok(())
                } else {
                    Err(WhepError::UnknownSession)
                };
                let _ = reply.send(result);
            }
            // Handled by the loop in `run`.
            Command::Stop => {}
        }
    }

    fn attach(&mut self, id: String, attached: Attached) {
        self.not_live.remove(&id);
        if let Err(e) = self.ensure_media() {
            attached.status.set_error(Some(e));
        }
        match self.cameras.get_mut(&id) {
            Some(cam) => {
                // The same camera restarted within the grace period: viewers stay.
                cam.units = attached.units;
                cam.status = attached.status;
                cam.audio_enabled = attached.audio;
                cam.idle = attached.idle;
                cam.feed.new_source();
                cam.detached_at = None;
                // The new source may send another codec (a reload that gave the live role
                // to the camera's H.264 substream): judge it afresh.
                if cam.unplayable.take().is_some() {
                    cam.status.set_error(None);
                }
            }
            None => {
                let ssrcs = (fastrand::u32(1..), fastrand::u32(1..));
                let feed = Feed::new(&id, ssrcs.0, fastrand::u64(..), attached.status.clone());
                let audio_feed =
                    AudioFeed::new(&id, ssrcs.1, fastrand::u64(..), attached.status.clone());
                self.cameras.insert(
                    id.clone(),
                    LiveCamera {
                        status: attached.status,
                        units: attached.units,
                        feed,
                        audio_feed,
                        ssrcs,
                        audio_enabled: attached.audio,
                        idle: attached.idle,
                        audio_codec: None,
                        profile: None,
                        unplayable: None,
                        flavors: Vec::new(),
                        detached_at: None,
                    },
                );
            }
        }
        if let Some(cam) = self.cameras.get_mut(&id) {
            cam.flavors_changed();
        }
        self.feeds_dirty = true;
    }

    /// Starts the mediasoup worker if it is not running.
    fn ensure_media(&mut self) -> Result<(), String> {
        if self.media.is_some() {
            return Ok(());
        }
        let manager = WorkerManager::new();
        let mut settings = WorkerSettings::default();
        // The default is debug with every tag: per-packet log traffic through the channel.
        settings.log_level = WorkerLogLevel::Warn;
        settings.log_tags = Vec::new();
        settings.rtc_port_range = self.config.udp_port_min..=self.config.udp_port_max;
        let worker = block_on(manager.create_worker(settings))
            .map_err(|e| format!("the mediasoup worker did not start: {e}"))?;
        let tx = self.events_tx.clone();
        // Detached handlers live as long as the object they watch.
        worker
            .on_dead(move |why| {
                let _ = tx.send(Event::WorkerDied(format!("{why:?}")));
            })
            .detach();
        log::info!(target: "live", "mediasoup worker {} started", worker.id());
        self.media = Some(Media {
            worker,
            _manager: manager,
        });
        Ok(())
    }

    fn unit(&mut self, id: &str, unit: &SharedUnit) {
        let Some(cam) = self.cameras.get_mut(id) else {
            return;
        };
        let audio_codec = unit
            .stream
            .audio
            .as_ref()
            .filter(|_| cam.audio_enabled)
            .map(|a| a.parameters.id());
        if audio_codec != cam.audio_codec {
            cam.audio_codec = audio_codec;
            let described = audio_codec.and_then(audio::describe);
            match (audio_codec, &described) {
                (Some(c), None) => log::warn!(
                    target: "live",
                    "camera {id}: its {} audio cannot be sent to browsers (they take Opus, \
                     PCMA and PCMU; vasd transcodes AAC): viewers get video only",
                    crate::camera::session::codec_name(c)
                ),
                (_, Some(d)) => log::info!(target: "live", "camera {id}: live audio {d}"),
                (None, None) => {}
            }
            cam.status.set_audio(described);
            self.audio_changed(id, audio_codec);
        }
        let Some(cam) = self.cameras.get_mut(id) else {
            return;
        };
        if unit.track == Track::Audio {
            let flavors = &cam.flavors;
            let sending = flavors.iter().any(|f| f.audio.is_some());
            cam.audio_feed
                .push(unit, sending, Instant::now(), &mut |packet| {
                    for f in flavors {
                        if let Some((_, direct)) = &f.audio {
                            let _ = direct.send(packet.clone());
                        }
                    }
                });
            return;
        }
        let parameters = unit.stream.parameters();
        if parameters.id() != ffmpeg_next::codec::Id::H264 {
            if cam.unplayable.is_none() {
                let why = format!(
                    "it sends {}, and the live view carries H.264 only (browsers cannot be \
                     relied on to decode anything else over WebRTC): set this stream of the \
                     camera to H.264, or give the live role to its H.264 substream \
                     ([camera.substream] roles = [\"live\"])",
                    crate::camera::session::codec_name(parameters.id())
                );
                log::warn!(target: "live", "camera {id}: {why}");
                cam.status.set_error(Some(why.clone()));
                cam.unplayable = Some(why);
            }
            return;
        }
        let tb = unit.time_base;
        let input = UnitIn {
            data: unit.packet.data().unwrap_or(&[]),
            extradata: &unit.stream.extradata,
            pts_90k: unit
                .packet
                .pts()
                .or(unit.packet.dts())
                .and_then(|p| to_clock(p, tb.numerator(), tb.denominator(), CLOCK_RATE as u32)),
            seq: unit.seq,
            session: unit.session,
            key: unit.key,
            received_unix_ms: unit.received_unix_ms,
        };
        let now = Instant::now();
        let sending = !cam.flavors.is_empty();
        let flavors = &cam.flavors;
        let outcome = cam.feed.push(&input, sending, now, &mut |packet| {
            // Every flavor gets the same packet; mediasoup rewrites payload type and SSRC per
            // viewer. A send fails only when the worker is gone, which its event reports.
            if let Some((last, others)) = flavors.split_last() {
                for f in others {
                    let _ = f.direct.send(packet.clone());
                }
                let _ = last.direct.send(packet);
            }
        });

        let profile = cam.feed.profile_level_id();
        if profile != cam.profile {
            self.profile_changed(id, profile);
        }
        if let Outcome::Sent { key: true, .. } = outcome {
            self.key_frame_sent(id, now);
        }
    }

    /// The SPS changed (first one, or a camera reconfigured between sessions). Viewers
    /// negotiated the old profile: close their flavors; the viewer page reconnects.
    fn profile_changed(&mut self, id: &str, profile: Option<String>) {
        let Some(cam) = self.cameras.get_mut(id) else {
            return;
        };
        log::info!(
            target: "live",
            "camera {id}: H.264 profile-level-id {}",
            profile.as_deref().unwrap_or("unknown")
        );
        let unknown = profile
            .as_deref()
            .is_some_and(|p| p.parse::<h264_profile_level_id::ProfileLevelId>().is_err());
        cam.status.set_error(unknown.then(|| {
            format!(
                "profile-level-id {} is not an H.264 profile WebRTC knows; viewers get it \
                 declared as their own profile",
                profile.as_deref().unwrap_or("")
            )
        }));
        cam.status.set_profile_level_id(profile.clone());
        let old = std::mem::replace(&mut cam.profile, profile);
        if old.is_none() {
            return;
        }
        let stale: Vec<String> = self
            .viewers
            .iter()
            .filter(|(_, v)| v.camera == id)
            .filter(|(_, v)| cam.flavors.iter().any(|f| f.exact && f.key == v.flavor))
            .map(|(s, _)| s.clone())
            .collect();
        for s in stale {
            self.close_viewer(&s, "the camera's H.264 profile changed");
        }
    }

    /// The camera's audio codec changed (a reconnect to a reconfigured camera). Viewers who
    /// negotiated another audio codec would get packets their decoder cannot read: close
    /// them, the viewer page reconnects and negotiates afresh. Audio that stops keeps them.
    fn audio_changed(&mut self, id: &str, codec: Option<ffmpeg_next::codec::Id>) {
        let Some(kind) = codec.and_then(AudioOut::for_camera).map(|(k, _)| k) else {
            return;
        };
        let stale: Vec<String> = self
            .viewers
            .iter()
            .filter(|(_, v)| v.camera == id)
            .filter(|(_, v)| v.flavor.audio.is_some_and(|(k, _)| k != kind))
            .map(|(s, _)| s.clone())
            .collect();
        for s in stale {
            self.close_viewer(&s, "the camera's audio codec changed");
        }
    }

    fn key_frame_sent(&mut self, id: &str, now: Instant) {
        let Some(cam) = self.cameras.get(id) else {
            return;
        };
        for (session, v) in self.viewers.iter_mut() {
            if v.camera == id && v.connected && !v.saw_key_frame {
                v.saw_key_frame = true;
                let waited = now.duration_since(v.created);
                cam.status
                    .last_join_to_key_frame_ms
                    .store(waited.as_millis() as u64, Ordering::Relaxed);
                log::debug!(
                    target: "live",
                    "viewer {session} of {id}: first key frame {} ms after its offer",
                    waited.as_millis()
                );
            }
        }
    }

    /// Creates a viewer for a WHEP offer and returns the answer.
    fn offer(&mut self, camera: &str, offer: &Offer) -> Result<Answered, WhepError> {
        let Some(cam) = self.cameras.get_mut(camera) else {
            return Err(if self.not_live.contains(camera) {
                WhepError::NotLive(camera.into())
            } else {
                WhepError::UnknownCamera(camera.into())
            });
        };
        if cam.detached_at.is_some() {
            return Err(WhepError::NoVideoYet(camera.into()));
        }
        if let Some(why) = &cam.unplayable {
            return Err(WhepError::Unplayable {
                camera: camera.into(),
                why: why.clone(),
            });
        }
        let Some(profile) = cam.profile.clone() else {
            return Err(WhepError::NoVideoYet(camera.into()));
        };
        let max = self.config.max_viewers;
        if cam.status.viewers.load(Ordering::Relaxed) >= u64::from(max) {
            return Err(WhepError::TooManyViewers {
                camera: camera.into(),
                max,
            });
        }
        let Some(media) = self.media.as_ref() else {
            return Err(WhepError::Unavailable(
                cam.status
                    .error()
                    .unwrap_or_else(|| "the mediasoup worker is not running".into()),
            ));
        };
        let choice = offer
            .choose(&profile)
            .ok_or_else(|| WhepError::BadOffer("the offer has no usable H.264 codec".into()))?;
        if !choice.exact {
            log::info!(
                target: "live",
                "camera {camera}: a viewer offers no profile matching {profile}; sending it as \
                 {} (decoders read the real profile from the SPS)",
                choice.profile_level_id
            );
        }
        // The camera's audio goes to viewers who offered its codec; the others get video.
        let audio = cam
            .audio_codec
            .and_then(AudioOut::for_camera)
            .and_then(|(kind, _)| offer.audio_codec(kind))
            .map(|c| (c.kind, c.payload_type));
        let key = FlavorKey {
            payload_type: choice.codec.payload_type,
            profile_level_id: choice.profile_level_id.clone(),
            audio,
        };
        let index = match cam.flavors.iter().position(|f| f.key == key) {
            Some(i) => i,
            None => {
                let flavor = Flavor::create(
                    &media.worker,
                    camera,
                    cam.ssrcs,
                    key,
                    choice.exact,
                    &cam.status,
                )
                .map_err(|e| WhepError::Unavailable(format!("cannot create a router: {e}")))?;
                cam.flavors.push(flavor);
                cam.flavors.len() - 1
            }
        };
        let created = self.create_viewer(camera, index, offer, &choice);
        let Some(cam) = self.cameras.get_mut(camera) else {
            return Err(WhepError::UnknownCamera(camera.into()));
        };
        match created {
            Ok((session, viewer, sdp)) => {
                cam.flavors[index].viewers += 1;
                cam.flavors_changed();
                LiveStatus::add(&cam.status.viewers, 1);
                LiveStatus::add(&cam.status.sessions, 1);
                log::info!(
                    target: "live",
                    "camera {camera}: viewer {session} joined ({} now)",
                    cam.status.viewers.load(Ordering::Relaxed)
                );
                self.viewers.insert(session.clone(), viewer);
                Ok(Answered { session, sdp })
            }
            Err(e) => {
                if cam.flavors[index].viewers == 0 {
                    cam.flavors.remove(index);
                }
                Err(e)
            }
        }
    }

    fn create_viewer(
        &self,
        camera: &str,
        flavor: usize,
        offer: &Offer,
        choice: &super::offer::CodecChoice,
    ) -> Result<(String, Viewer, String), WhepError> {
        let cam = &self.cameras[camera];
        let flavor = &cam.flavors[flavor];
        let listen = ListenInfo {
            protocol: Protocol::Udp,
            ip: self.config.listen_ip,
            announced_address: self.config.announced_address.clone(),
            expose_internal_ip: false,
            port: None,
            port_range: Some(self.config.udp_port_min..=self.config.udp_port_max),
            flags: None,
            send_buffer_size: None,
            recv_buffer_size: None,
        };
        let mut options = WebRtcTransportOptions::new(WebRtcTransportListenInfos::new(listen));
        options.ice_consent_timeout = ICE_CONSENT_TIMEOUT_S;
        let transport = block_on(flavor.router.create_webrtc_transport(options)).map_err(|e| {
            WhepError::Unavailable(format!(
                "cannot open a UDP port in {}-{} on {}: {e}",
                self.config.udp_port_min, self.config.udp_port_max, self.config.listen_ip
            ))
        })?;
        let mut consumer_options =
            ConsumerOptions::new(flavor.producer.id(), offer.capabilities(choice));
        consumer_options.mid = Some(offer.mid.clone());
        // Retransmission: the consumer keeps what it sent (mediasoup's buffer: up to 2 s of
        // video) and answers a viewer's NACK with the lost packets. Without RTX (RFC 4588):
        // they are resent as they were, same SSRC and sequence number, which every WebRTC
        // receiver takes (its jitter buffer fills the hole). RTX would need the router's
        // `video/rtx` codec under the payload type the viewer offered for it, but mediasoup
        // picks that payload type itself from its dynamic range, and a browser drops packets of
        // a type it did not offer; a router per viewer would cost a producer per viewer.
        // `enable_rtx` turns NACK handling on; no RTX codec is offered to mediasoup, so none is
        // used. The offer's `nack` feedback must be there too (all browsers send it).
        consumer_options.enable_rtx = Some(true);
        let consumer = block_on(transport.consume(consumer_options)).map_err(|e| {
            WhepError::BadOffer(format!(
                "the offered H.264 codec (payload type {}) cannot carry this stream: {e}",
                choice.codec.payload_type
            ))
        })?;
        let audio_consumer = match (&flavor.audio, flavor.key.audio, &offer.audio) {
            (Some((producer, _)), Some((kind, _)), Some(section)) => {
                let codec = offer.audio_codec(kind).ok_or_else(|| {
                    WhepError::BadOffer("the offered audio codec vanished".into())
                })?;
                let mut options =
                    ConsumerOptions::new(producer.id(), offer.audio_capabilities(codec));
                options.mid = Some(section.mid.clone());
                Some(block_on(transport.consume(options)).map_err(|e| {
                    WhepError::BadOffer(format!(
                        "the offered {} codec (payload type {}) cannot carry this audio: {e}",
                        kind.sdp_name(),
                        codec.payload_type
                    ))
                })?)
            }
            _ => None,
        };
        block_on(transport.connect(WebRtcTransportRemoteParameters {
            dtls_parameters: offer.remote_dtls.clone(),
        }))
        .map_err(|e| WhepError::BadOffer(format!("the DTLS parameters were refused: {e}")))?;

        let session = transport.id().to_string();
        let (tx, s) = (self.events_tx.clone(), session.clone());
        transport
            .on_ice_state_change(move |state| {
                let _ = tx.send(Event::Ice(s.clone(), state));
            })
            .detach();
        let (tx, s) = (self.events_tx.clone(), session.clone());
        transport
            .on_dtls_state_change(move |state| {
                let _ = tx.send(Event::Dtls(s.clone(), state));
            })
            .detach();
        let sdp = answer(
            offer,
            &Local {
                ice: transport.ice_parameters(),
                candidates: transport.ice_candidates(),
                fingerprints: &transport.dtls_parameters().fingerprints,
                rtp: consumer.rtp_parameters(),
                audio: audio_consumer.as_ref().map(|c| c.rtp_parameters()),
                stream_id: camera,
            },
        );
        let viewer = Viewer {
            camera: camera.to_string(),
            flavor: flavor.key.clone(),
            created: Instant::now(),
            connected: false,
            saw_key_frame: false,
            transport,
            _consumer: consumer,
            _audio_consumer: audio_consumer,
        };
        Ok((session, viewer, sdp))
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Ice(session, IceState::Disconnected) => {
                self.close_viewer(&session, "ICE consent expired (the viewer went away)")
            }
            Event::Ice(..) => {}
            Event::Dtls(session, DtlsState::Connected) => {
                if let Some(v) = self.viewers.get_mut(&session) {
                    v.connected = true;
                    log::debug!(
                        target: "live",
                        "viewer {session} of {}: DTLS connected after {} ms",
                        v.camera,
                        v.created.elapsed().as_millis()
                    );
                }
            }
            Event::Dtls(session, DtlsState::Failed) => {
                self.close_viewer(&session, "the DTLS handshake failed")
            }
            Event::Dtls(session, DtlsState::Closed) => {
                self.close_viewer(&session, "the viewer closed the connection")
            }
            Event::Dtls(..) => {}
            Event::WorkerDied(why) => {
                log::error!(
                    target: "live",
                    "the mediasoup worker died ({why}); every viewer is dropped and a new \
                     worker starts with the next camera attach"
                );
                let sessions: Vec<String> = self.viewers.keys().cloned().collect();
                for s in sessions {
                    self.close_viewer(&s, "the media worker died");
                }
                for cam in self.cameras.values_mut() {
                    cam.flavors.clear();
                    cam.flavors_changed();
                }
                self.media = None;
                if let Err(e) = self.ensure_media() {
                    log::error!(target: "live", "{e}");
                }
            }
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        let never_connected: Vec<String> = self
            .viewers
            .iter()
            .filter(|(_, v)| !v.connected && now.duration_since(v.created) > CONNECT_TIMEOUT)
            .map(|(s, _)| s.clone())
            .collect();
        for s in never_connected {
            self.close_viewer(&s, "it never completed ICE and DTLS");
        }
        let gone: Vec<String> = self
            .cameras
            .iter()
            .filter(|(_, c)| {
                c.detached_at
                    .is_some_and(|t| now.duration_since(t) > DETACH_GRACE)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.close_camera(&id, "the camera was removed");
        }
    }

    fn close_viewer(&mut self, session: &str, why: &str) {
        let Some(viewer) = self.viewers.remove(session) else {
            return;
        };
        if let Some(cam) = self.cameras.get_mut(&viewer.camera) {
            cam.status.viewers.fetch_sub(1, Ordering::Relaxed);
            if let Some(i) = cam.flavors.iter().position(|f| f.key == viewer.flavor) {
                cam.flavors[i].viewers -= 1;
                if cam.flavors[i].viewers == 0 {
                    // Dropping the router closes its transports and producer in the worker.
                    cam.flavors.remove(i);
                }
            }
            cam.flavors_changed();
            log::info!(
                target: "live",
                "camera {}: viewer {session} left: {why} ({} now)",
                viewer.camera,
                cam.status.viewers.load(Ordering::Relaxed)
            );
        }
        log::debug!(target: "live", "closing transport {}", viewer.transport.id());
    }

    fn close_camera(&mut self, id: &str, why: &str) {
        let sessions: Vec<String> = self
            .viewers
            .iter()
            .filter(|(_, v)| v.camera == id)
            .map(|(s, _)| s.clone())
            .collect();
        for s in sessions {
            self.close_viewer(&s, why);
        }
        if let Some(cam) = self.cameras.remove(id) {
            cam.status.viewers.store(0, Ordering::Relaxed);
            self.feeds_dirty = true;
        }
    }
}
