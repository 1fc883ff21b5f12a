//! `vas.toml`: parsing, validation with file/line/key errors, and the environment override.
//!
//! The file is read into `raw` structs that mirror it key by key (unknown keys are errors), then
//! resolved into [`Config`]: defaults applied, per-camera values merged over global ones, every
//! value checked. Resolved camera entries compare with `==`, which is what SIGHUP uses to decide
//! whether a camera must restart.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};

/// Environment variable that overrides `[export] enabled`.
pub const EXPORT_ENV: &str = "AI_FRAME_EXPORT_ENABLED";

/// Default location of the daemon's config.
pub const DEFAULT_PATH: &str = "/etc/vas/vas.toml";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub file: PathBuf,
    pub server: ServerConfig,
    pub export: ExportConfig,
    pub live: LiveConfig,
    pub record: RecordConfig,
    pub cameras: Vec<CameraConfig>,
}

/// The WebRTC side of the live view. Changes take effect at the next start.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    /// Address the WebRTC transports listen on (UDP).
    pub listen_ip: IpAddr,
    /// Address announced to viewers in ICE candidates, for NAT; `None` announces `listen_ip`.
    pub announced_address: Option<String>,
    pub udp_port_min: u16,
    pub udp_port_max: u16,
    /// Viewers of one camera at once.
    pub max_viewers: u32,
}

/// Where and how a camera is recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordTarget {
    pub dir: PathBuf,
    pub segment: Duration,
    /// Segments older than this many days are deleted; `None` keeps them by age.
    pub keep_days: Option<u32>,
    /// The camera's segments beyond this many bytes are deleted, oldest first.
    pub max_bytes: Option<u64>,
    /// Access units the recorder queue holds before the camera thread drops instead.
    pub queue_units: usize,
    /// Whether the camera's audio is recorded (AAC as it is, G.711 transcoded to AAC).
    pub audio: bool,
}

/// Global recording settings (defaults of every camera's [`RecordTarget`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordConfig {
    pub dir: PathBuf,
    pub segment: Duration,
    pub keep_days: Option<u32>,
    pub max_bytes: Option<u64>,
    /// All cameras' segments together beyond this many bytes: the oldest go first.
    pub total_max_bytes: Option<u64>,
    pub queue_units: usize,
    pub audio: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub token: Option<String>,
}

/// Global frame export settings. `enabled` already includes the environment override.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportConfig {
    pub enabled: bool,
    pub shm_dir: PathBuf,
    pub slots: u32,
    pub group: Option<String>,
}

/// Reconnect and I/O bounds of one camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectConfig {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// A session that streamed this long resets the backoff to `min_delay`.
    pub healthy_after: Duration,
    /// Longest silence on the socket (at open or while streaming) before the session is dropped.
    pub io_timeout: Duration,
    /// Wait after the camera refused the credentials. Many cameras lock the account or the
    /// client address after 3 to 5 failed logins, so this is far longer than a network retry.
    pub auth_retry: Duration,
}

/// How the RTP of a camera travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Interleaved in the RTSP connection: one TCP connection, through NAT and firewalls.
    Tcp,
    /// RTP/RTCP over UDP (unicast): what some cameras alone offer; loses packets on bad links.
    Udp,
    /// RTP over UDP multicast, where the camera sends one stream to many receivers.
    UdpMulticast,
    /// RTSP tunnelled in HTTP (the camera's web port).
    Http,
}

impl Transport {
    /// The value of FFmpeg's `rtsp_transport` option.
    pub fn ffmpeg_name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::UdpMulticast => "udp_multicast",
            Transport::Http => "http",
        }
    }
}

/// One camera after defaults and global settings are merged in. Two equal values mean the
/// camera needs no restart on reload.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraConfig {
    pub id: String,
    /// With credentials merged in from `username`/`password`/`password_file`; displays
    /// redacted.
    pub url: crate::camera::RtspUrl,
    pub transport: Transport,
    /// Recording settings if this camera is recorded.
    pub record: Option<RecordTarget>,
    /// Whether this camera feeds the live view (default true).
    pub live: bool,
    /// Whether its live view carries the camera's audio (default true).
    pub live_audio: bool,
    /// The frame export target if export is on both globally and for this camera.
    pub export: Option<ExportTarget>,
    pub reconnect: ReconnectConfig,
    /// Which stream of the camera this is; `Main` for the camera as configured.
    pub stream: StreamKind,
    /// The roles this stream serves. A camera with one url serves all three.
    pub roles: Roles,
    /// The camera's second stream; present only on the camera as configured, and expanded
    /// by [`CameraConfig::streams`] into a stream of its own.
    pub substream: Option<Substream>,
}

/// A camera's substream as configured: its url and transport, and the roles it serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Substream {
    pub url: crate::camera::RtspUrl,
    pub transport: Transport,
    pub roles: Roles,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Main,
    Sub,
}

/// Which of a camera's functions a stream serves: every role is served by exactly one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub record: bool,
    pub live: bool,
    pub export: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        record: true,
        live: true,
        export: true,
    };
    pub const NONE: Roles = Roles {
        record: false,
        live: false,
        export: false,
    };

    pub fn names(self) -> Vec<&'static str> {
        [
            ("record", self.record),
            ("live", self.live),
            ("export", self.export),
        ]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect()
    }

    fn get(&mut self, name: &str) -> Option<&mut bool> {
        match name {
            "record" => Some(&mut self.record),
            "live" => Some(&mut self.live),
            "export" => Some(&mut self.export),
            _ => None,
        }
    }

    fn without(self, other: Roles) -> Roles {
        Roles {
            record: self.record && !other.record,
            live: self.live && !other.live,
            export: self.export && !other.export,
        }
    }

    fn is_empty(self) -> bool {
        self == Roles::NONE
    }
}

impl CameraConfig {
    /// The streams to run for this camera, each a config of its own that carries only what
    /// its roles need, so a reload that changes one stream's settings restarts only that
    /// stream. A substream that serves nothing enabled (its only role is `export` and the
    /// export is off) is not run at all: off means not even connected. The main stream always
    /// runs: it is where the camera's status lives.
    pub fn streams(&self) -> Vec<CameraConfig> {
        let Some(sub) = &self.substream else {
            return vec![self.clone()];
        };
        let narrow = |mut c: CameraConfig, roles: Roles| {
            c.roles = roles;
            c.substream = None;
            if !roles.record {
                c.record = None;
            }
            if !roles.export {
                c.export = None;
            }
            if !roles.live {
                c.live = false;
            }
            c
        };
        let main = narrow(self.clone(), self.roles);
        let mut s = narrow(self.clone(), sub.roles);
        s.stream = StreamKind::Sub;
        s.url = sub.url.clone();
        s.transport = sub.transport;
        let serves = s.record.is_some() || s.live || s.export.is_some();
        if serves {
            vec![main, s]
        } else {
            vec![main]
        }
    }

    /// The key of this stream among all: the camera id, `<id>/sub` for a substream (`/`
    /// cannot be part of an id).
    pub fn stream_key(&self) -> String {
        match self.stream {
            StreamKind::Main => self.id.clone(),
            StreamKind::Sub => format!("{}/sub", self.id),
        }
    }

    /// The thread name and log target of this stream: `cam-<id>`, `cam-<id>-sub`.
    pub fn thread_name(&self) -> String {
        match self.stream {
            StreamKind::Main => format!("cam-{}", self.id),
            StreamKind::Sub => format!("cam-{}-sub", self.id),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportTarget {
    pub shm_dir: PathBuf,
    pub slots: u32,
    pub group: Option<String>,
    pub decode: ExportDecode,
    /// Decoder threads (frame threading); 1 decodes on the camera thread alone.
    pub threads: u32,
}

/// Which frames the export decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportDecode {
    /// Every frame.
    All,
    /// Key frames only: the others are never handed to the decoder, so a 1 s GOP costs
    /// about a tenth of decoding every frame (measured: field notes).
    KeyFrames,
}

mod raw {
    use super::*;

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct File {
        #[serde(default)]
        pub server: Server,
        #[serde(default)]
        pub export: Export,
        #[serde(default)]
        pub reconnect: Reconnect,
        #[serde(default)]
        pub record: Record,
        #[serde(default)]
        pub live: Live,
        #[serde(default)]
        pub camera: Vec<Camera>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Record {
        pub dir: Option<Spanned<String>>,
        pub segment_seconds: Option<Spanned<i64>>,
        pub keep_days: Option<Spanned<i64>>,
        pub max_bytes: Option<Spanned<Size>>,
        pub total_max_bytes: Option<Spanned<Size>>,
        pub queue_units: Option<Spanned<i64>>,
        pub audio: Option<bool>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Live {
        pub listen_ip: Option<Spanned<String>>,
        pub announced_address: Option<Spanned<String>>,
        pub udp_port_min: Option<Spanned<i64>>,
        pub udp_port_max: Option<Spanned<i64>>,
        pub max_viewers: Option<Spanned<i64>>,
    }

    /// A byte count: an integer, or a string with a unit ("500M", "2GiB", "1.5T").
    #[derive(Deserialize, Clone)]
    #[serde(untagged)]
    pub enum Size {
        Bytes(i64),
        Text(String),
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Server {
        pub listen: Option<Spanned<String>>,
        pub token: Option<Spanned<String>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Export {
        pub enabled: Option<bool>,
        pub shm_dir: Option<Spanned<String>>,
        pub slots: Option<Spanned<i64>>,
        pub group: Option<Spanned<String>>,
    }

    #[derive(Deserialize, Default, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct Reconnect {
        pub min_delay_ms: Option<Spanned<i64>>,
        pub max_delay_ms: Option<Spanned<i64>>,
        pub healthy_after_s: Option<Spanned<i64>>,
        pub io_timeout_ms: Option<Spanned<i64>>,
        pub auth_retry_s: Option<Spanned<i64>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Camera {
        pub id: Spanned<String>,
        pub url: Spanned<String>,
        pub transport: Option<Spanned<String>>,
        pub username: Option<Spanned<String>>,
        pub password: Option<Spanned<String>>,
        pub password_file: Option<Spanned<String>>,
        pub record: Option<bool>,
        pub record_audio: Option<bool>,
        pub export_decode: Option<Spanned<String>>,
        pub export_threads: Option<Spanned<i64>>,
        pub live: Option<bool>,
        pub live_audio: Option<bool>,
        pub export: Option<bool>,
        pub keep_days: Option<Spanned<i64>>,
        pub max_bytes: Option<Spanned<Size>>,
        #[serde(default)]
        pub reconnect: Reconnect,
        pub roles: Option<Spanned<Vec<Spanned<String>>>>,
        pub substream: Option<Substream>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Substream {
        pub url: Spanned<String>,
        pub roles: Spanned<Vec<Spanned<String>>>,
        pub transport: Option<Spanned<String>>,
    }
}

/// Turns byte spans into `file:line:column` errors.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, span: std::ops::Range<usize>, key: &str, message: impl Into<String>) -> Error {
        let (line, column) = line_column(self.text, span.start);
        Error::BadConfig {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn int_in<T: TryFrom<i64>>(
        &self,
        value: &Spanned<i64>,
        key: &str,
        min: i64,
        max: i64,
        unit: &str,
    ) -> Result<T> {
        let v = *value.get_ref();
        if v < min || v > max {
            return Err(self.error(
                value.span(),
                key,
                format!("{v} is out of range: use {min} to {max} {unit}"),
            ));
        }
        T::try_from(v).map_err(|_| self.error(value.span(), key, "value does not fit"))
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Camera ids become directory names (recordings, shared memory), so they are restricted.
pub fn is_valid_camera_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Parses `AI_FRAME_EXPORT_ENABLED`. `None` when unset.
pub fn export_override(value: Option<&str>) -> Result<Option<bool>> {
    let Some(value) = value else { return Ok(None) };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(Some(true)),
        "false" | "0" => Ok(Some(false)),
        _ => Err(Error::BadEnvironment {
            name: EXPORT_ENV,
            value: value.to_string(),
            message: "use true, false, 1 or 0 (or unset it to use [export] enabled)".into(),
        }),
    }
}

impl Config {
    /// Reads and validates `file`, applying the export override from the environment.
    pub fn load(file: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::ConfigFile {
            file: file.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        let env = std::env::var(EXPORT_ENV).ok();
        Config::parse(file, &text, export_override(env.as_deref())?)
    }

    /// Validates `text` as the contents of `file`. `export_env` is the parsed override.
    pub fn parse(file: &Path, text: &str, export_env: Option<bool>) -> Result<Config> {
        let src = Source { file, text };
        let de = toml::Deserializer::new(text);
        let raw: raw::File = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let span = inner.span().unwrap_or(0..0);
            src.error(span, &key, inner.message().trim_end())
        })?;

        let server = resolve_server(&src, &raw.server)?;
        let export = resolve_export(&src, &raw.export, export_env)?;
        let defaults = resolve_reconnect(&src, "reconnect", &raw.reconnect, None)?;
        let record = resolve_record(&src, &raw.record)?;
        let live = resolve_live(&src, &raw.live)?;

        let mut seen = BTreeSet::new();
        let mut cameras = Vec::with_capacity(raw.camera.len());
        for (i, cam) in raw.camera.iter().enumerate() {
            let key = |k: &str| format!("camera[{i}].{k}");
            let id = cam.id.get_ref();
            if !is_valid_camera_id(id) {
                return Err(src.error(
                    cam.id.span(),
                    &key("id"),
                    format!(
                        "{id:?} is not a valid camera id: use 1 to 64 characters from a-z, 0-9, '_' and '-'"
                    ),
                ));
            }
            if !seen.insert(id.clone()) {
                return Err(src.error(
                    cam.id.span(),
                    &key("id"),
                    format!("camera id {id:?} is used twice: ids must be unique"),
                ));
            }
            let url = rtsp_url(&src, &cam.url, &key("url"))?;
            let export_on = cam.export.unwrap_or(true) && export.enabled;
            let keep_days = match &cam.keep_days {
                Some(v) => days(&src, v, &key("keep_days"))?,
                None => record.keep_days,
            };
            let max_bytes = match &cam.max_bytes {
                Some(v) => size(&src, v, &key("max_bytes"))?,
                None => record.max_bytes,
            };
            let transport = parse_transport(&src, &cam.transport, &key("transport"))?;
            let url = resolve_credentials(&src, cam, url, &key)?;
            let (roles, sub) = resolve_streams(&src, cam, &key)?;
            let substream = match (sub, &cam.substream) {
                (Some((roles, transport)), Some(raw)) => {
                    let sub_url = rtsp_url(&src, &raw.url, &key("substream.url"))?;
                    Some(Substream {
                        url: resolve_credentials(&src, cam, sub_url, &key)?,
                        transport,
                        roles,
                    })
                }
                _ => None,
            };
            let export_decode = match &cam.export_decode {
                None => ExportDecode::All,
                Some(d) => match d.get_ref().as_str() {
                    "all" => ExportDecode::All,
                    "key_frames" => ExportDecode::KeyFrames,
                    other => {
                        return Err(src.error(
                            d.span(),
                            &key("export_decode"),
                            format!(
                                "{other:?} is not a decode mode: use \"all\" or \"key_frames\""
                            ),
                        ))
                    }
                },
            };
            let export_threads = match &cam.export_threads {
                None => 1,
                Some(n) => src.int_in(n, &key("export_threads"), 1, 16, "threads")?,
            };
            cameras.push(CameraConfig {
                id: id.clone(),
                url,
                transport,
                record: cam.record.unwrap_or(false).then(|| RecordTarget {
                    dir: record.dir.clone(),
                    segment: record.segment,
                    keep_days,
                    max_bytes,
                    queue_units: record.queue_units,
                    audio: cam.record_audio.unwrap_or(record.audio),
                }),
                // On unless turned off: users expect to see their cameras in the viewer page,
                // and a live camera nobody watches costs one queue hop per key frame.
                live: cam.live.unwrap_or(true),
                // On too: a camera with a microphone is expected to be heard, and audio costs
                // nothing until someone listens (see live::audio).
                live_audio: cam.live_audio.unwrap_or(true),
                export: export_on.then(|| ExportTarget {
                    shm_dir: export.shm_dir.clone(),
                    slots: export.slots,
                    group: export.group.clone(),
                    decode: export_decode,
                    threads: export_threads,
                }),
                reconnect: resolve_reconnect(
                    &src,
                    &key("reconnect"),
                    &cam.reconnect,
                    Some(defaults),
                )?,
                stream: StreamKind::Main,
                roles,
                substream,
            });
        }

        Ok(Config {
            file: file.to_path_buf(),
            server,
            export,
            live,
            record,
            cameras,
        })
    }
}

/// The text of an `rtsp://` or `rtsps://` url key; the error shows it redacted.
fn rtsp_url<'a>(src: &Source, url: &'a Spanned<String>, key: &str) -> Result<&'a str> {
    let text = url.get_ref();
    if text.starts_with("rtsp://") || text.starts_with("rtsps://") {
        return Ok(text);
    }
    Err(src.error(
        url.span(),
        key,
        format!(
            "{:?} is not an RTSP url: use rtsp://host[:port]/path",
            crate::camera::redact_url(text)
        ),
    ))
}

fn parse_transport(src: &Source, t: &Option<Spanned<String>>, key: &str) -> Result<Transport> {
    let Some(t) = t else {
        return Ok(Transport::Tcp);
    };
    match t.get_ref().as_str() {
        "tcp" => Ok(Transport::Tcp),
        "udp" => Ok(Transport::Udp),
        "udp_multicast" => Ok(Transport::UdpMulticast),
        "http" => Ok(Transport::Http),
        other => Err(src.error(
            t.span(),
            key,
            format!(
                "{other:?} is not a transport: use \"tcp\", \"udp\", \"udp_multicast\" or \"http\""
            ),
        )),
    }
}

/// A role list: known names, each once.
fn parse_roles(src: &Source, list: &Spanned<Vec<Spanned<String>>>, key: &str) -> Result<Roles> {
    let mut roles = Roles::NONE;
    for r in list.get_ref() {
        let name = r.get_ref();
        match roles.get(name) {
            None => {
                return Err(src.error(
                    r.span(),
                    key,
                    format!("{name:?} is not a role: use \"record\", \"live\" or \"export\""),
                ))
            }
            Some(true) => {
                return Err(src.error(r.span(), key, format!("role {name:?} is given twice")))
            }
            Some(slot) => *slot = true,
        }
    }
    if roles.is_empty() {
        return Err(src.error(
            list.span(),
            key,
            "a stream with no role: give it at least one of \"record\", \"live\", \"export\"",
        ));
    }
    Ok(roles)
}

/// The roles of a camera's main stream and its substream: every role on exactly one stream.
fn resolve_streams(
    src: &Source,
    cam: &raw::Camera,
    key: &dyn Fn(&str) -> String,
) -> Result<(Roles, Option<(Roles, Transport)>)> {
    let Some(sub) = &cam.substream else {
        if let Some(r) = &cam.roles {
            return Err(src.error(
                r.span(),
                &key("roles"),
                "roles without a substream: a camera with one url serves every role; add \
                 [camera.substream] or remove roles",
            ));
        }
        return Ok((Roles::ALL, None));
    };
    let sub_roles = parse_roles(src, &sub.roles, &key("substream.roles"))?;
    let transport = match &sub.transport {
        Some(_) => parse_transport(src, &sub.transport, &key("substream.transport"))?,
        None => parse_transport(src, &cam.transport, &key("transport"))?,
    };
    let main_roles = match &cam.roles {
        None => {
            let rest = Roles::ALL.without(sub_roles);
            if rest.is_empty() {
                return Err(src.error(
                    sub.roles.span(),
                    &key("substream.roles"),
                    "the substream takes every role and leaves the main stream none: give the \
                     main stream one (roles = [\"record\"]) or use the substream's url alone",
                ));
            }
            rest
        }
        Some(list) => {
            let main = parse_roles(src, list, &key("roles"))?;
            for name in main.names() {
                if sub_roles.names().contains(&name) {
                    return Err(src.error(
                        list.span(),
                        &key("roles"),
                        format!("role {name:?} is on both streams: give each role to one stream"),
                    ));
                }
            }
            let missing = Roles::ALL.without(main).without(sub_roles);
            if !missing.is_empty() {
                return Err(src.error(
                    list.span(),
                    &key("roles"),
                    format!(
                        "role {:?} is on no stream: give it to the main stream or the substream",
                        missing.names()[0]
                    ),
                ));
            }
            main
        }
    };
    Ok((main_roles, Some((sub_roles, transport))))
}

/// The camera URL with `username` and a password from `password` or `password_file` merged
/// in. A password file must not be readable by others than its owner and group: it exists so
/// that the secret is not in a world-readable place.
fn resolve_credentials(
    src: &Source,
    cam: &raw::Camera,
    url: &str,
    key: &dyn Fn(&str) -> String,
) -> Result<crate::camera::RtspUrl> {
    use crate::camera::RtspUrl;
    let password = match (&cam.password, &cam.password_file) {
        (Some(p), Some(_)) => {
            return Err(src.error(
                p.span(),
                &key("password"),
                "give password or password_file, not both",
            ))
        }
        (Some(p), None) => Some(p.get_ref().clone()),
        (None, Some(f)) => {
            let path = Path::new(f.get_ref());
            let bad = |why: String| src.error(f.span(), &key("password_file"), why);
            let meta = std::fs::metadata(path)
                .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o004 != 0 {
                return Err(bad(format!(
                    "{} is readable by every user: chmod o-r it (e.g. 0640 root:vas)",
                    path.display()
                )));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
            // One line; the newline an editor adds is not part of the password.
            Some(text.trim_end_matches(['\n', '\r']).to_string())
        }
        (None, None) => None,
    };
    match (&cam.username, password) {
        (Some(u), Some(p)) => {
            if url
                .split("://")
                .nth(1)
                .is_some_and(|r| r[..r.find(['/', '?', '#']).unwrap_or(r.len())].contains('@'))
            {
                return Err(src.error(
                    u.span(),
                    &key("username"),
                    "the url has credentials too: give them in one place (username and \
                     password keys keep them out of the url)",
                ));
            }
            Ok(RtspUrl::with_credentials(url, u.get_ref(), &p))
        }
        (Some(u), None) => Err(src.error(
            u.span(),
            &key("username"),
            "username needs password or password_file",
        )),
        (None, Some(_)) => {
            let span = cam
                .password
                .as_ref()
                .or(cam.password_file.as_ref())
                .map_or(0..0, |v| v.span());
            Err(src.error(span, &key("password"), "a password needs a username"))
        }
        (None, None) => Ok(RtspUrl::new(url)),
    }
}

fn resolve_server(src: &Source, raw: &raw::Server) -> Result<ServerConfig> {
    let listen = match &raw.listen {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(s) => s.get_ref().parse().map_err(|_| {
            src.error(
                s.span(),
                "server.listen",
                format!(
                    "{:?} is not an address:port: use e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"",
                    s.get_ref()
                ),
            )
        })?,
    };
    let token = match &raw.token {
        Some(t) if t.get_ref().len() < 16 => {
            return Err(src.error(
                t.span(),
                "server.token",
                "the token is shorter than 16 characters: use a long random string",
            ))
        }
        t => t.as_ref().map(|t| t.get_ref().clone()),
    };
    Ok(ServerConfig { listen, token })
}

fn resolve_export(src: &Source, raw: &raw::Export, env: Option<bool>) -> Result<ExportConfig> {
    let shm_dir = match &raw.shm_dir {
        None => PathBuf::from("/dev/shm/vas"),
        Some(s) if !Path::new(s.get_ref()).is_absolute() => {
            return Err(src.error(
                s.span(),
                "export.shm_dir",
                format!("{:?} is not an absolute path", s.get_ref()),
            ))
        }
        Some(s) => PathBuf::from(s.get_ref()),
    };
    let slots = match &raw.slots {
        None => 4,
        Some(s) => src.int_in(s, "export.slots", 2, 64, "slots")?,
    };
    let group = match &raw.group {
        Some(g) if g.get_ref().is_empty() => {
            return Err(src.error(g.span(), "export.group", "the group name is empty"))
        }
        g => g.as_ref().map(|g| g.get_ref().clone()),
    };
    Ok(ExportConfig {
        enabled: env.unwrap_or(raw.enabled.unwrap_or(false)),
        shm_dir,
        slots,
        group,
    })
}

/// `0` means no limit.
fn days(src: &Source, v: &Spanned<i64>, key: &str) -> Result<Option<u32>> {
    let d: u32 = src.int_in(v, key, 0, 36_500, "days (0 = keep by age forever)")?;
    Ok((d > 0).then_some(d))
}

/// Parses a byte count; `0` means no limit.
fn size(src: &Source, v: &Spanned<raw::Size>, key: &str) -> Result<Option<u64>> {
    let bad = |why: &str| src.error(v.span(), key, why.to_string());
    let bytes = match v.get_ref() {
        raw::Size::Bytes(b) if *b < 0 => return Err(bad("a size cannot be negative")),
        raw::Size::Bytes(b) => *b as u64,
        raw::Size::Text(t) => parse_size(t).ok_or_else(|| {
            bad(&format!(
                "{t:?} is not a size: use bytes (1000000) or a number with K, M, G or T \
                 (powers of 1024, e.g. \"500G\" or \"1.5TiB\")"
            ))
        })?,
    };
    Ok((bytes > 0).then_some(bytes))
}

/// "500G", "1.5TiB", "200 MB" (binary units), "123".
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    let bytes = num * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

fn resolve_record(src: &Source, raw: &raw::Record) -> Result<RecordConfig> {
    let dir = match &raw.dir {
        None => PathBuf::from("/var/lib/vas/recordings"),
        Some(s) if !Path::new(s.get_ref()).is_absolute() => {
            return Err(src.error(
                s.span(),
                "record.dir",
                format!("{:?} is not an absolute path", s.get_ref()),
            ))
        }
        Some(s) => PathBuf::from(s.get_ref()),
    };
    let segment = match &raw.segment_seconds {
        None => Duration::from_secs(60),
        Some(v) => {
            Duration::from_secs(src.int_in(v, "record.segment_seconds", 2, 3600, "seconds")?)
        }
    };
    let keep_days = match &raw.keep_days {
        None => Some(7),
        Some(v) => days(src, v, "record.keep_days")?,
    };
    let max_bytes = match &raw.max_bytes {
        None => None,
        Some(v) => size(src, v, "record.max_bytes")?,
    };
    let total_max_bytes = match &raw.total_max_bytes {
        None => None,
        Some(v) => size(src, v, "record.total_max_bytes")?,
    };
    let queue_units = match &raw.queue_units {
        None => 512,
        Some(v) => src.int_in(v, "record.queue_units", 16, 100_000, "access units")?,
    };
    Ok(RecordConfig {
        dir,
        segment,
        keep_days,
        max_bytes,
        total_max_bytes,
        queue_units,
        audio: raw.audio.unwrap_or(true),
    })
}

fn resolve_live(src: &Source, raw: &raw::Live) -> Result<LiveConfig> {
    let listen_ip = match &raw.listen_ip {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(s) => s.get_ref().parse().map_err(|_| {
            src.error(
                s.span(),
                "live.listen_ip",
                format!(
                    "{:?} is not an IP address: use e.g. \"0.0.0.0\" or \"192.0.2.5\"",
                    s.get_ref()
                ),
            )
        })?,
    };
    let announced_address = match &raw.announced_address {
        Some(s) if s.get_ref().trim().is_empty() => {
            return Err(src.error(s.span(), "live.announced_address", "the address is empty"))
        }
        s => s.as_ref().map(|s| s.get_ref().clone()),
    };
    let udp_port_min = match &raw.udp_port_min {
        None => 40000,
        Some(v) => src.int_in(v, "live.udp_port_min", 1024, 65535, "(a UDP port)")?,
    };
    let udp_port_max: u16 = match &raw.udp_port_max {
        None => 40999,
        Some(v) => src.int_in(v, "live.udp_port_max", 1024, 65535, "(a UDP port)")?,
    };
    if udp_port_max < udp_port_min {
        let span = raw
            .udp_port_max
            .as_ref()
            .or(raw.udp_port_min.as_ref())
            .map_or(0..0, |v| v.span());
        return Err(src.error(
            span,
            "live.udp_port_max",
            format!("udp_port_max ({udp_port_max}) is below udp_port_min ({udp_port_min})"),
        ));
    }
    let max_viewers = match &raw.max_viewers {
        None => 16,
        Some(v) => src.int_in(v, "live.max_viewers", 1, 1000, "viewers")?,
    };
    Ok(LiveConfig {
        listen_ip,
        announced_address,
        udp_port_min,
        udp_port_max,
        max_viewers,
    })
}

fn resolve_reconnect(
    src: &Source,
    prefix: &str,
    raw: &raw::Reconnect,
    defaults: Option<ReconnectConfig>,
) -> Result<ReconnectConfig> {
    let d = defaults.unwrap_or(ReconnectConfig {
        min_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(30),
        healthy_after: Duration::from_secs(30),
        io_timeout: Duration::from_secs(5),
        auth_retry: Duration::from_secs(60),
    });
    let ms = |v: &Option<Spanned<i64>>, k: &str, min, max, dflt: Duration| -> Result<Duration> {
        match v {
            None => Ok(dflt),
            Some(v) => Ok(Duration::from_millis(src.int_in(
                v,
                &format!("{prefix}.{k}"),
                min,
                max,
                "milliseconds",
            )?)),
        }
    };
    let min_delay = ms(&raw.min_delay_ms, "min_delay_ms", 10, 600_000, d.min_delay)?;
    let max_delay = ms(
        &raw.max_delay_ms,
        "max_delay_ms",
        10,
        3_600_000,
        d.max_delay,
    )?;
    let io_timeout = ms(
        &raw.io_timeout_ms,
        "io_timeout_ms",
        500,
        120_000,
        d.io_timeout,
    )?;
    let healthy_after = match &raw.healthy_after_s {
        None => d.healthy_after,
        Some(v) => Duration::from_secs(src.int_in(
            v,
            &format!("{prefix}.healthy_after_s"),
            1,
            86_400,
            "seconds",
        )?),
    };
    let auth_retry = match &raw.auth_retry_s {
        None => d.auth_retry,
        Some(v) => Duration::from_secs(src.int_in(
            v,
            &format!("{prefix}.auth_retry_s"),
            60,
            86_400,
            "seconds (cameras lock accounts after a few failed logins)",
        )?),
    };
    if max_delay < min_delay {
        let span = raw
            .max_delay_ms
            .as_ref()
            .or(raw.min_delay_ms.as_ref())
            .map_or(0..0, |v| v.span());
        return Err(src.error(
            span,
            &format!("{prefix}.max_delay_ms"),
            format!(
                "max_delay_ms ({} ms) is below min_delay_ms ({} ms)",
                max_delay.as_millis(),
                min_delay.as_millis()
            ),
        ));
    }
    Ok(ReconnectConfig {
        min_delay,
        max_delay,
        healthy_after,
        io_timeout,
        auth_retry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("vas.toml"), text, None)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const ONE: &str = "[[camera]]\nid = \"front\"\nurl = \"rtsp://127.0.0.1/a\"\n";

    #[test]
    fn defaults() {
        let c = parse(ONE).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(!c.export.enabled);
        assert_eq!(c.export.slots, 4);
        let cam = &c.cameras[0];
        assert_eq!(cam.export, None);
        assert_eq!(cam.reconnect.min_delay, Duration::from_millis(500));
        assert_eq!(cam.reconnect.max_delay, Duration::from_secs(30));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        // (config text, expected substring of the error)
        let table: &[(&str, &str)] = &[
            (
                "[[camera]]\nid = \"Front\"\nurl = \"rtsp://h/a\"\n",
                "vas.toml:2:6: camera[0].id: \"Front\" is not a valid camera id",
            ),
            (
                "[[camera]]\nid = \"a\"\nurl = \"http://h/a\"\n",
                "vas.toml:3:7: camera[0].url: \"http://h/a\" is not an RTSP url",
            ),
            (
                "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/a\"\n[[camera]]\nid = \"a\"\nurl = \"rtsp://h/b\"\n",
                "vas.toml:5:6: camera[1].id: camera id \"a\" is used twice",
            ),
            ("[server]\nlisten = \"localhost\"\n", "vas.toml:2:10: server.listen:"),
            ("[export]\nslots = 1\n", "vas.toml:2:9: export.slots: 1 is out of range: use 2 to 64"),
            ("[export]\nenabled = \"yes\"\n", "vas.toml:2:11: export.enabled: invalid type: string"),
            ("[exprot]\nenabled = true\n", "vas.toml:1:2: exprot: unknown field `exprot`"),
            (
                "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/a\"\nrecrod = true\n",
                "vas.toml:4:1: camera[0].recrod: unknown field `recrod`",
            ),
            ("[[camera]]\nid = \"a\"\n", "camera[0]: missing field `url`"),
            (
                "[reconnect]\nmin_delay_ms = 5000\nmax_delay_ms = 1000\n",
                "vas.toml:3:16: reconnect.max_delay_ms: max_delay_ms (1000 ms) is below min_delay_ms (5000 ms)",
            ),
            (
                "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/a\"\nreconnect = { io_timeout_ms = 1 }\n",
                "camera[0].reconnect.io_timeout_ms: 1 is out of range",
            ),
            ("[server]\ntoken = \"short\"\n", "vas.toml:2:9: server.token: the token is shorter"),
            ("[export]\nshm_dir = \"shm\"\n", "export.shm_dir: \"shm\" is not an absolute path"),
            ("[[camera]\n", "vas.toml:1:"),
        ];
        for (text, want) in table {
            let got = err(text);
            assert!(
                got.contains(want),
                "config:\n{text}\nwant: {want}\ngot:  {got}"
            );
        }
    }

    #[test]
    fn substream_roles_and_their_errors() {
        let cam = |extra: &str| {
            format!("[[camera]]\nid = \"c\"\nurl = \"rtsp://h/main\"\nrecord = true\n{extra}")
        };
        let sub =
            |roles: &str| format!("[camera.substream]\nurl = \"rtsp://h/sub\"\nroles = {roles}\n");
        // (camera text, error it must give: file:line:column: key: message)
        let errors = [
            (
                cam("roles = [\"record\"]\n"),
                "vas.toml:5:9: camera[0].roles: roles without a substream",
            ),
            (
                cam(&sub("[\"live\", \"lives\"]")),
                "camera[0].substream.roles: \"lives\" is not a role",
            ),
            (
                cam(&sub("[\"live\", \"live\"]")),
                "camera[0].substream.roles: role \"live\" is given twice",
            ),
            (
                cam(&sub("[]")),
                "camera[0].substream.roles: a stream with no role",
            ),
            (
                cam(&sub("[\"record\", \"live\", \"export\"]")),
                "camera[0].substream.roles: the substream takes every role",
            ),
            (
                cam(&format!(
                    "roles = [\"record\", \"live\"]\n{}",
                    sub("[\"live\", \"export\"]")
                )),
                "camera[0].roles: role \"live\" is on both streams",
            ),
            (
                cam(&format!("roles = [\"record\"]\n{}", sub("[\"live\"]"))),
                "camera[0].roles: role \"export\" is on no stream",
            ),
            (
                cam("[camera.substream]\nurl = \"http://h/sub\"\nroles = [\"live\"]\n"),
                "camera[0].substream.url: \"http://h/sub\" is not an RTSP url",
            ),
            (
                cam("transport = \"quic\"\n"),
                "camera[0].transport: \"quic\" is not a transport",
            ),
            (
                cam("export_decode = \"some\"\n"),
                "camera[0].export_decode: \"some\" is not a decode mode",
            ),
            (
                cam("username = \"u\"\n"),
                "camera[0].username: username needs password",
            ),
            (
                cam("password = \"p\"\n"),
                "camera[0].password: a password needs a username",
            ),
        ];
        for (text, want) in &errors {
            let got = err(text);
            assert!(got.contains(want), "{text}\ngot:  {got}\nwant: {want}");
        }

        // The usual setup: main records, substream serves live and export.
        let cfg = parse(&format!(
            "[export]\nenabled = true\n{}",
            cam(&format!(
                "username = \"u\"\npassword = \"p\"\n{}",
                sub("[\"live\", \"export\"]")
            ))
        ))
        .unwrap();
        let streams = cfg.cameras[0].streams();
        // (key, thread, roles, records, live, exports, url with credentials)
        let got: Vec<_> = streams
            .iter()
            .map(|s| {
                (
                    s.stream_key(),
                    s.thread_name(),
                    s.roles.names(),
                    s.record.is_some(),
                    s.live,
                    s.export.is_some(),
                    s.url.expose().to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "c".into(),
                    "cam-c".into(),
                    vec!["record"],
                    true,
                    false,
                    false,
                    "rtsp://u:p@h/main".into()
                ),
                (
                    "c/sub".into(),
                    "cam-c-sub".into(),
                    vec!["live", "export"],
                    false,
                    true,
                    true,
                    "rtsp://u:p@h/sub".into()
                ),
            ]
        );
        // Export off: a substream whose only role is export is not even connected.
        let cfg = parse(&cam(&sub("[\"export\"]"))).unwrap();
        let keys: Vec<String> = cfg.cameras[0]
            .streams()
            .iter()
            .map(|s| s.stream_key())
            .collect();
        assert_eq!(keys, vec!["c".to_string()]);
        // One url: one stream with every role, as before substreams existed.
        let cfg = parse(&cam("")).unwrap();
        let streams = cfg.cameras[0].streams();
        assert_eq!(streams.len(), 1);
        assert_eq!(streams[0].roles, Roles::ALL);
    }

    #[test]
    fn credentials_never_appear_in_errors() {
        let got = err("[[camera]]\nid = \"a\"\nurl = \"http://admin:hunter2@h/a\"\n");
        assert!(!got.contains("hunter2"), "{got}");
    }

    #[test]
    fn sizes() {
        // (text, bytes)
        let table = [
            ("123", Some(123)),
            ("1K", Some(1024)),
            ("500G", Some(500 << 30)),
            ("1.5TiB", Some(3 << 39)),
            ("200 MB", Some(200 << 20)),
            ("2g", Some(2 << 30)),
            ("", None),
            ("G", None),
            ("5X", None),
            ("-1G", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_size(text), want, "{text:?}");
        }
    }

    #[test]
    fn record_and_live_sections() {
        let text = "[record]\ndir = \"/srv/rec\"\nsegment_seconds = 10\nmax_bytes = \"1G\"\n\
                    [live]\nlisten_ip = \"0.0.0.0\"\nannounced_address = \"cam.example.org\"\n\
                    [[camera]]\nid = \"a\"\nurl = \"rtsp://h/a\"\nrecord = true\nlive = true\nkeep_days = 0\n\
                    [[camera]]\nid = \"b\"\nurl = \"rtsp://h/b\"\n";
        let c = parse(text).unwrap();
        let rec = c.cameras[0].record.as_ref().unwrap();
        assert_eq!(rec.dir, PathBuf::from("/srv/rec"));
        assert_eq!(rec.segment, Duration::from_secs(10));
        assert_eq!(rec.keep_days, None);
        assert_eq!(rec.max_bytes, Some(1 << 30));
        assert!(c.cameras[0].live);
        assert_eq!(c.cameras[1].record, None);
        assert!(c.cameras[1].live, "live defaults to true");
        assert_eq!(c.live.announced_address.as_deref(), Some("cam.example.org"));
        assert_eq!(c.record.keep_days, Some(7));

        let table: &[(&str, &str)] = &[
            ("[record]\ndir = \"rec\"\n", "vas.toml:2:7: record.dir: \"rec\" is not an absolute path"),
            ("[record]\nmax_bytes = \"lots\"\n", "vas.toml:2:13: record.max_bytes: \"lots\" is not a size"),
            ("[record]\nsegment_seconds = 1\n", "record.segment_seconds: 1 is out of range: use 2 to 3600"),
            ("[live]\nlisten_ip = \"x\"\n", "vas.toml:2:13: live.listen_ip: \"x\" is not an IP address"),
            (
                "[live]\nudp_port_min = 5000\nudp_port_max = 4000\n",
                "vas.toml:3:16: live.udp_port_max: udp_port_max (4000) is below udp_port_min (5000)",
            ),
            ("[live]\nmax_viewers = 0\n", "live.max_viewers: 0 is out of range: use 1 to 1000 viewers"),
            (
                "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/a\"\nmax_bytes = -5\n",
                "vas.toml:4:13: camera[0].max_bytes: a size cannot be negative",
            ),
        ];
        for (text, want) in table {
            let got = err(text);
            assert!(
                got.contains(want),
                "config:\n{text}\nwant: {want}\ngot:  {got}"
            );
        }
    }

    #[test]
    fn camera_ids() {
        let table = [
            ("front", true),
            ("cam_01-b", true),
            (&"a".repeat(64) as &str, true),
            (&"a".repeat(65), false),
            ("", false),
            ("Front", false),
            ("a/b", false),
            ("..", false),
            ("a b", false),
            ("caf\u{e9}", false),
        ];
        for (id, ok) in table {
            assert_eq!(is_valid_camera_id(id), ok, "{id:?}");
        }
    }

    #[test]
    fn export_env_overrides_file() {
        // (file says, env var, effective)
        let table = [
            ("false", None, false),
            ("true", None, true),
            ("true", Some("false"), false),
            ("true", Some("0"), false),
            ("false", Some("1"), true),
            ("false", Some("TRUE"), true),
        ];
        for (file, env, want) in table {
            let text = format!("[export]\nenabled = {file}\n{ONE}");
            let env = export_override(env).unwrap();
            let c = Config::parse(Path::new("vas.toml"), &text, env).unwrap();
            assert_eq!(c.export.enabled, want, "file {file} env {env:?}");
            assert_eq!(c.cameras[0].export.is_some(), want);
        }
        for bad in ["yes", "", "2", "on"] {
            let e = export_override(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("AI_FRAME_EXPORT_ENABLED"), "{e}");
        }
    }

    #[test]
    fn per_camera_export_switch_and_reconnect_override() {
        let text = "[export]\nenabled = true\n[reconnect]\nmax_delay_ms = 8000\n\
                    [[camera]]\nid = \"a\"\nurl = \"rtsp://h/a\"\nexport = false\n\
                    [[camera]]\nid = \"b\"\nurl = \"rtsp://h/b\"\nreconnect = { min_delay_ms = 100 }\n";
        let c = parse(text).unwrap();
        assert_eq!(c.cameras[0].export, None);
        assert!(c.cameras[1].export.is_some());
        assert_eq!(c.cameras[0].reconnect.max_delay, Duration::from_secs(8));
        assert_eq!(c.cameras[1].reconnect.max_delay, Duration::from_secs(8));
        assert_eq!(c.cameras[1].reconnect.min_delay, Duration::from_millis(100));
    }

    #[test]
    fn shipped_default_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/vas/vas.toml");
        let c = Config::load(&path).unwrap();
        assert!(!c.export.enabled || std::env::var(EXPORT_ENV).is_ok());
    }
}

/// The man page documents exactly the keys the parser accepts: each section's keys are read
/// from the parser's own "expected one of" list and from the `.TP`/`.TQ` entries of vas.toml(5).
#[cfg(test)]
mod man_page {
    use super::*;
    use std::collections::BTreeSet;

    /// Keys the parser accepts in `section` (a table header such as "[export]").
    fn accepted(section: &str) -> BTreeSet<String> {
        let text = format!("{section}\nnot_a_key_of_vas = 1\n");
        let e = Config::parse(Path::new("t.toml"), &text, None)
            .unwrap_err()
            .to_string();
        // serde says "expected `a`", "expected `a` or `b`" or "expected one of `a`, `b`, ...".
        let list = e.split("expected ").nth(1).unwrap_or_else(|| panic!("{e}"));
        let list = list.strip_prefix("one of ").unwrap_or(list);
        list.split([',', ' '])
            .filter(|w| w.starts_with('`'))
            .map(|k| k.trim_matches('`').to_string())
            .collect()
    }

    /// Keys vas.toml(5) documents under `.SH <section>`.
    fn documented(page: &str, section: &str) -> BTreeSet<String> {
        let start = page
            .find(&format!(".SH {section}\n"))
            .unwrap_or_else(|| panic!("no section {section} in vas.toml.5"));
        let body = &page[start + 4..];
        let body = &body[..body.find("\n.SH ").unwrap_or(body.len())];
        let lines: Vec<&str> = body.lines().collect();
        lines
            .windows(2)
            .filter(|w| w[0] == ".TP" || w[0] == ".TQ")
            .filter_map(|w| w[1].strip_prefix(".B "))
            .map(|k| k.trim().to_string())
            .collect()
    }

    #[test]
    fn vas_toml_5_lists_every_key_and_no_other() {
        let page =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/vas.toml.5"))
                .unwrap();
        // (man page section, TOML that opens it)
        let table = [
            ("[server]", "[server]"),
            ("[export]", "[export]"),
            ("[reconnect]", "[reconnect]"),
            ("[record]", "[record]"),
            ("[live]", "[live]"),
            ("[[camera]]", "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/a\""),
        ];
        for (section, toml) in table {
            assert_eq!(
                documented(&page, section),
                accepted(toml),
                "vas.toml.5 {section} (left) against the parser (right)"
            );
        }
    }
}
