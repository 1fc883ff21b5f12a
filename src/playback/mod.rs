//! Playback of recordings over the API: listings of continuous spans, clips remuxed on the
//! fly as MP4 (fragmented to play at once, progressive to download), and the raw segments.
//!
//! ```text
//! rec-<id> --opened/closed--> Index <--removed-- rec-janitor
//!                               |
//!   GET /api/recordings ... ----+--> spans ---> JSON
//!   GET .../video.mp4 ----------+--> Clip ----> moof+mdat copied from the segment files
//!   GET .../files/<day>/<name> -+--> the file, with Range
//! ```
//! Camera ids and file names in a request are only ever looked up in the index, never
//! joined to a path: nothing outside the recordings directory can be named.

mod clip;
pub mod index;
pub mod mp4;

use std::fs::File;
use std::time::UNIX_EPOCH;

use serde_json::{json, Value};
use tiny_http::{Method, Request, Response, StatusCode};

use self::clip::Clip;
pub use self::index::Index;
use self::index::{spans, Segment, Span};
use crate::api::{header, header_value, json_reply, Reply, Routes};

/// Longest clip one request may ask for: its sample tables (for a download) stay a few MB.
pub const MAX_CLIP_S: u64 = 3 * 3600;
/// Clip length when the request names none.
const DEFAULT_CLIP_S: u64 = 60;

const TIME_FORMS: &str = "RFC 3339 (2026-12-01T14:32:00Z, 2026-12-01T15:32:00.5+01:00) or Unix \
                          seconds (1796135520, 1796135520.5)";

pub struct PlaybackRoutes {
    index: Index,
}

impl PlaybackRoutes {
    pub fn new(index: Index) -> PlaybackRoutes {
        PlaybackRoutes { index }
    }
}

/// A request that cannot be served, as the JSON error the client gets.
struct Refusal {
    status: u16,
    body: Value,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        body: json!({ "error": message.into() }),
    }
}

impl Routes for PlaybackRoutes {
    fn token_in_query(&self, path: &str) -> bool {
        // A <video src> or a download link cannot send an Authorization header.
        path.starts_with("/api/recordings/")
    }

    fn is_long(&self, path: &str) -> bool {
        path.starts_with("/api/recordings/")
            && (path.ends_with("/video.mp4") || path.contains("/files/"))
    }

    fn respond(&self, request: &mut Request, path: &str) -> Option<Reply> {
        let rest = match path {
            "/api/recordings" => "",
            p => p.strip_prefix("/api/recordings/")?,
        };
        if !matches!(request.method(), Method::Get | Method::Head) {
            return Some(
                json_reply(405, &json!({ "error": "use GET" }))
                    .with_header(header_value("Allow", "GET, HEAD")),
            );
        }
        let query = query_of(request.url());
        let parts: Vec<&str> = rest.split('/').collect();
        let result = match parts[..] {
            [""] => self.list_all(&query),
            [camera] => self.list(camera, &query),
            [camera, "video.mp4"] => self.clip(camera, &query),
            [camera, "files", day, name] => self.file(request, camera, day, name),
            _ => Err(refuse(
                404,
                "no such endpoint: try /api/recordings, /api/recordings/<camera>, \
                 /api/recordings/<camera>/video.mp4?start=&duration= or \
                 /api/recordings/<camera>/files/<day>/<file>",
            )),
        };
        Some(result.unwrap_or_else(|r| json_reply(r.status, &r.body)))
    }
}

type Query = Vec<(String, String)>;

fn query_of(url: &str) -> Query {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn param<'a>(query: &'a Query, name: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A time as Unix milliseconds from RFC 3339 or Unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    // A `+` of an offset typed into a query arrives decoded as a space.
    let s = s.trim().replace(' ', "+");
    let s = s.as_str();
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok();
    }
    let secs: f64 = s.parse().ok()?;
    // Years 1970 to 9999: anything else is a typo, not a moment on a camera.
    (secs.is_finite() && (0.0..253_402_300_800.0).contains(&secs))
        .then(|| (secs * 1000.0).round() as i64)
}

fn time_param(query: &Query, name: &str) -> Result<Option<i64>, Refusal> {
    match param(query, name) {
        None | Some("") => Ok(None),
        Some(v) => parse_time(v)
            .map(Some)
            .ok_or_else(|| refuse(400, format!("{name}={v:?} is not a time: use {TIME_FORMS}"))),
    }
}

fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn times(start_ms: i64, end_ms: i64) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("start".into(), rfc3339(start_ms).into());
    m.insert("end".into(), rfc3339(end_ms).into());
    m.insert("start_unix_ms".into(), start_ms.into());
    m.insert("end_unix_ms".into(), end_ms.into());
    m.insert(
        "duration_s".into(),
        ((end_ms - start_ms) as f64 / 1000.0).into(),
    );
    m
}

fn span_json(camera: &str, span: &Span) -> Value {
    let (start, end) = (span.start_ms(), span.end_ms());
    let mut m = times(start, end);
    m.insert("bytes".into(), span.bytes().into());
    m.insert("segments".into(), span.segments.len().into());
    m.insert("recording".into(), span.recording().into());
    let duration = (end - start).min(MAX_CLIP_S as i64 * 1000);
    m.insert(
        "url".into(),
        format!(
            "/api/recordings/{camera}/video.mp4?start={}&duration={}",
            seconds(start),
            seconds(duration)
        )
        .into(),
    );
    Value::Object(m)
}

/// `<day>/<name>` of a segment: the last two components of its path.
fn file_name(segment: &Segment) -> String {
    let mut it = segment.path.iter().rev();
    let name = it.next().map(|s| s.to_string_lossy()).unwrap_or_default();
    let day = it.next().map(|s| s.to_string_lossy()).unwrap_or_default();
    format!("{day}/{name}")
}

fn segment_json(camera: &str, s: &Segment) -> Value {
    let mut m = times(s.start_ms, s.end_ms());
    m.insert("bytes".into(), s.bytes.into());
    m.insert("recording".into(), s.open.into());
    let file = file_name(s);
    m.insert(
        "url".into(),
        format!("/api/recordings/{camera}/files/{file}").into(),
    );
    m.insert("file".into(), file.into());
    Value::Object(m)
}

/// The window `[start, end)` of a listing; both ends optional.
fn window(query: &Query) -> Result<(i64, i64), Refusal> {
    let start = time_param(query, "start")?.unwrap_or(i64::MIN);
    let end = time_param(query, "end")?.unwrap_or(i64::MAX);
    if end <= start {
        return Err(refuse(400, "end must be after start"));
    }
    Ok((start, end))
}

impl PlaybackRoutes {
    fn segments(&self, camera: &str) -> Result<Vec<Segment>, Refusal> {
        self.index.segments(camera).ok_or_else(|| {
            let known = self.index.cameras();
            refuse(
                404,
                format!(
                    "no recordings of camera {camera:?}; cameras with recordings: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })
    }

    fn list_all(&self, query: &Query) -> Result<Reply, Refusal> {
        let (start, end) = window(query)?;
        let mut cameras = Vec::new();
        for camera in self.index.cameras() {
            let Some(segments) = self.index.segments(&camera) else {
                continue;
            };
            let spans: Vec<Value> = spans(segments)
                .iter()
                .filter(|s| s.end_ms() > start && s.start_ms() < end)
                .map(|s| span_json(&camera, s))
                .collect();
            cameras.push(json!({ "camera": camera, "spans": spans }));
        }
        Ok(json_reply(200, &json!({ "cameras": cameras })))
    }

    fn list(&self, camera: &str, query: &Query) -> Result<Reply, Refusal> {
        let (start, end) = window(query)?;
        let segments = self.segments(camera)?;
        let mut body = json!({
            "camera": camera,
            "spans": spans(segments.clone())
                .iter()
                .filter(|s| s.end_ms() > start && s.start_ms() < end)
                .map(|s| span_json(camera, s))
                .collect::<Vec<_>>(),
        });
        if matches!(param(query, "segments"), Some("1" | "true" | "yes")) {
            body["segments"] = segments
                .iter()
                .filter(|s| s.end_ms() > start && s.start_ms < end)
                .map(|s| segment_json(camera, s))
                .collect::<Vec<_>>()
                .into();
        }
        Ok(json_reply(200, &body))
    }

    fn clip(&self, camera: &str, query: &Query) -> Result<Reply, Refusal> {
        let start = time_param(query, "start")?
            .ok_or_else(|| refuse(400, format!("start= is missing: use {TIME_FORMS}")))?;
        let duration_ms = match param(query, "duration") {
            None | Some("") => DEFAULT_CLIP_S * 1000,
            Some(v) => {
                let secs: f64 = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite())
                    .ok_or_else(|| {
                        refuse(400, format!("duration={v:?} is not a number of seconds"))
                    })?;
                if secs <= 0.0 {
                    return Err(refuse(400, "duration must be more than 0 seconds"));
                }
                if secs > MAX_CLIP_S as f64 {
                    return Err(refuse(
                        400,
                        format!(
                            "duration={v} is over the limit of {MAX_CLIP_S} s; ask for \
                             several clips"
                        ),
                    ));
                }
                (secs * 1000.0).round().max(1.0) as u64
            }
        };
        let download = matches!(param(query, "download"), Some("1" | "true" | "yes"));
        let all = spans(self.segments(camera)?);
        let end = start + duration_ms as i64;
        // The span holding `start`; or, for a start in a gap, the first span the clip's
        // window reaches (a click just before a recording starts plays it).
        let Some(span) = all
            .iter()
            .find(|s| s.start_ms() <= start && start < s.end_ms())
            .or_else(|| {
                all.iter()
                    .find(|s| start < s.start_ms() && s.start_ms() < end)
            })
        else {
            let before = all.iter().rev().find(|s| s.end_ms() <= start);
            let after = all.iter().find(|s| s.start_ms() > start);
            let nearest: Vec<Value> = before
                .into_iter()
                .chain(after)
                .map(|s| span_json(camera, s))
                .collect();
            return Err(Refusal {
                status: 404,
                body: json!({
                    "error": format!(
                        "camera {camera:?} has no recording from {} to {}; the nearest \
                         recordings are listed in \"nearest\"",
                        rfc3339(start),
                        rfc3339(end)
                    ),
                    "nearest": nearest,
                }),
            });
        };
        let from = start.max(span.start_ms());
        let first = span
            .segments
            .iter()
            .rposition(|s| s.start_ms <= from)
            .unwrap_or(0);
        let clip = Clip::new(
            span.segments[first..].to_vec(),
            from,
            (end - from).max(1) as u64,
        )
        .map_err(|e| {
            log::warn!(target: "api", "camera {camera}: cannot read its recording: {e}");
            refuse(500, format!("cannot read the recording of {camera:?}: {e}"))
        })?;
        let mut reply = if download {
            let (body, len) = clip.progressive().map_err(|e| {
                log::warn!(target: "api", "camera {camera}: cannot build a download: {e}");
                refuse(500, format!("cannot read the recording of {camera:?}: {e}"))
            })?;
            let stamp = time::OffsetDateTime::from_unix_timestamp(clip.start_ms.div_euclid(1000))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let name = format!(
                "{camera}-{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}s.mp4",
                stamp.year(),
                stamp.month() as u8,
                stamp.day(),
                stamp.hour(),
                stamp.minute(),
                stamp.second(),
                duration_ms.div_ceil(1000)
            );
            Response::new(
                StatusCode(200),
                Vec::new(),
                Box::new(body) as Box<dyn std::io::Read + Send>,
                Some(len as usize),
                None,
            )
            // tiny_http sends big bodies chunked even when their length is known; a
            // download needs Content-Length for the browser's progress.
            .with_chunked_threshold(usize::MAX)
            .with_header(header_value(
                "Content-Disposition",
                &format!("attachment; filename=\"{name}\""),
            ))
        } else {
            Response::new(
                StatusCode(200),
                Vec::new(),
                Box::new(clip.fragmented()) as Box<dyn std::io::Read + Send>,
                None,
                None,
            )
        };
        reply = reply
            .with_header(header_value("Content-Type", "video/mp4"))
            .with_header(header_value("Cache-Control", "no-store"))
            .with_header(header_value("X-Vas-Start", &rfc3339(clip.start_ms)))
            .with_header(header_value(
                "X-Vas-Start-Unix-Ms",
                &clip.start_ms.to_string(),
            ));
        Ok(reply)
    }

    fn file(
        &self,
        request: &Request,
        camera: &str,
        day: &str,
        name: &str,
    ) -> Result<Reply, Refusal> {
        let wanted = format!("{day}/{name}");
        let segment = self
            .segments(camera)?
            .into_iter()
            .find(|s| file_name(s) == wanted)
            .ok_or_else(|| {
                refuse(
                    404,
                    format!(
                        "camera {camera:?} has no segment {wanted:?}; list them with \
                         /api/recordings/{camera}?segments=1"
                    ),
                )
            })?;
        let path = segment.file();
        let file = File::open(&path).map_err(|e| refuse(404, format!("{wanted}: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| refuse(500, format!("{wanted}: {e}")))?;
        let len = meta.len();
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let stamp = modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let etag = format!("\"{len:x}-{stamp:x}\"");
        let common = |r: Reply| {
            r.with_header(header_value("ETag", &etag))
                .with_header(header_value(
                    "Last-Modified",
                    &httpdate::fmt_http_date(modified),
                ))
                .with_header(header_value("Accept-Ranges", "bytes"))
        };
        if header(request, "If-None-Match").is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
        {
            return Ok(common(Response::empty(304).boxed()));
        }
        let range = match header(request, "Range") {
            Some(r) => match parse_range(&r, len) {
                Some(range) => Some(range),
                None => {
                    return Ok(common(
                        json_reply(
                            416,
                            &json!({ "error": format!(
                                "Range {r:?} is not one satisfiable byte range of a {len}-byte file"
                            ) }),
                        )
                        .with_header(header_value("Content-Range", &format!("bytes */{len}"))),
                    ))
                }
            },
            None => None,
        };
        let (status, from, count) = match range {
            Some((a, b)) => (206, a, b - a + 1),
            None => (200, 0, len),
        };
        use std::io::{Seek, SeekFrom};
        let mut file = file;
        file.seek(SeekFrom::Start(from))
            .map_err(|e| refuse(500, format!("{wanted}: {e}")))?;
        use std::io::Read as _;
        let body: Box<dyn std::io::Read + Send> = Box::new(file.take(count));
        let mut reply = Response::new(
            StatusCode(status),
            Vec::new(),
            body,
            Some(count as usize),
            None,
        )
        .with_chunked_threshold(usize::MAX)
        .with_header(header_value("Content-Type", "video/mp4"));
        if status == 206 {
            reply = reply.with_header(header_value(
                "Content-Range",
                &format!("bytes {from}-{}/{len}", from + count - 1),
            ));
        }
        Ok(common(reply))
    }
}

/// One byte range of a `len`-byte file (`bytes=a-b`, `bytes=a-`, `bytes=-n`), inclusive;
/// `None` for anything else or a range outside the file.
fn parse_range(value: &str, len: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (from, to) = match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            let n: u64 = b.parse().ok()?;
            (len.saturating_sub(n), len - 1)
        }
        (false, true) => (a.parse().ok()?, len - 1),
        (false, false) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(len - 1)),
        (true, true) => return None,
    };
    (from <= to && from < len).then_some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_both_forms() {
        let table = [
            ("2026-12-01T14:32:00Z", Some(1_796_135_520_000)),
            ("2026-12-01T15:32:00.5+01:00", Some(1_796_135_520_500)),
            ("2026-12-01T15:32:00.5 01:00", Some(1_796_135_520_500)),
            ("1796135520", Some(1_796_135_520_000)),
            ("1796135520.25", Some(1_796_135_520_250)),
            (" 1796135520 ", Some(1_796_135_520_000)),
            ("2026-12-01 14:32", None),
            ("yesterday", None),
            ("-5", None),
            ("1e30", None),
            ("NaN", None),
            ("", None),
        ];
        for (input, want) in table {
            assert_eq!(parse_time(input), want, "{input:?}");
        }
    }

    #[test]
    fn ranges() {
        let table = [
            ("bytes=0-99", Some((0, 99))),
            ("bytes=100-", Some((100, 999))),
            ("bytes=-100", Some((900, 999))),
            ("bytes=900-5000", Some((900, 999))),
            ("bytes=1000-", None),
            ("bytes=5-1", None),
            ("bytes=0-1,5-6", None),
            ("items=0-1", None),
            ("bytes=-", None),
        ];
        for (input, want) in table {
            assert_eq!(parse_range(input, 1000), want, "{input:?}");
        }
    }
}
