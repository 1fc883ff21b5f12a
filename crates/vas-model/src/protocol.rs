//! The wire format between Ruth and a model, version 1, as described in vas-model(7).
//!
//! One connection per subscription, Ruth the client, the model the listening side. Ruth writes
//! one JSON object per line (a [`FrameRequest`]); the model answers each with one JSON line
//! ([`Reply`]) carrying the same `id`. At most one request is unanswered on a connection at
//! any time, so a model never needs a queue.

use frames::{FrameRef, SlotRef};
use serde::{Deserialize, Serialize};

/// The `v` field of every request. A model refuses a request of another version with an error
/// reply naming the version it speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The only request type of version 1.
pub const FRAME_REQUEST: &str = "frame";

/// The only pixel format of version 1 (the export's NV12).
pub const FORMAT_NV12: &str = "nv12";

/// Longest request line Ruth sends, newline included. A request is about 450 bytes; the
/// limit leaves room for long paths and ids and lets a model bound its read buffer.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Longest reply line Ruth accepts by default (`max_reply_bytes` in ruth.toml), newline
/// included. A longer line marks the subscription down.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 1024 * 1024;

/// One frame for the model to look at, named by reference: the model attaches to the
/// camera's export under `root` and reads the slot itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRequest {
    /// Protocol version, [`PROTOCOL_VERSION`].
    pub v: u32,
    /// Request type, [`FRAME_REQUEST`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique per connection, increasing; the reply echoes it.
    pub id: u64,
    /// Camera id; also the Stream Agent id.
    pub camera: String,
    /// The export root (`[export] root` of ruth.toml); the frames are under `root/camera/`.
    pub root: String,
    pub generation: u64,
    pub slot: u32,
    /// The slot's seqlock sequence when Ruth saw the frame; a different one means the frame
    /// is gone.
    pub sequence: u64,
    pub frame_id: u64,
    /// Stream presentation timestamp, ns.
    pub pts_ns: i64,
    /// Capture time, ns since the Unix epoch.
    pub wall_ns: i64,
    /// Capture time on CLOCK_MONOTONIC, ns.
    pub mono_ns: i64,
    pub width: u32,
    pub height: u32,
    pub stride_y: u32,
    pub stride_uv: u32,
    /// Pixel format, [`FORMAT_NV12`].
    pub format: String,
    pub key_frame: bool,
    /// How long Ruth waits for the reply before it marks the subscription down, ms.
    pub deadline_ms: u64,
}

impl FrameRequest {
    /// The request for a frame Ruth found in a camera's export.
    pub fn for_slot(id: u64, camera: &str, root: &str, frame: &SlotRef, deadline_ms: u64) -> Self {
        let m = &frame.meta;
        FrameRequest {
            v: PROTOCOL_VERSION,
            kind: FRAME_REQUEST.to_string(),
            id,
            camera: camera.to_string(),
            root: root.to_string(),
            generation: frame.generation,
            slot: frame.slot,
            sequence: frame.sequence,
            frame_id: m.frame_id,
            pts_ns: m.pts_ns,
            wall_ns: m.wall_ns,
            mono_ns: m.mono_ns,
            width: m.width,
            height: m.height,
            stride_y: m.stride_y,
            stride_uv: m.stride_uv,
            format: FORMAT_NV12.to_string(),
            key_frame: m.key_frame,
            deadline_ms,
        }
    }

    /// The reference to hand to [`frames::ExportReader::read_frame_into`].
    pub fn frame_ref(&self) -> FrameRef {
        FrameRef {
            generation: self.generation,
            slot: self.slot,
            sequence: self.sequence,
            frame_id: self.frame_id,
        }
    }

    /// Why this request cannot be served by a version 1 model, if it cannot.
    pub fn unsupported(&self) -> Option<String> {
        if self.v != PROTOCOL_VERSION {
            return Some(format!(
                "protocol version {} is not supported: this model speaks version {PROTOCOL_VERSION}",
                self.v
            ));
        }
        if self.kind != FRAME_REQUEST {
            return Some(format!("unknown request type {:?}", self.kind));
        }
        if self.format != FORMAT_NV12 {
            return Some(format!("unknown pixel format {:?}", self.format));
        }
        None
    }
}

/// A model's answer to one request: a result (any JSON value, usually an object) or an error
/// message. Exactly one of the two is present on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    pub fn result(id: u64, result: serde_json::Value) -> Reply {
        Reply {
            id,
            result: Some(result),
            error: None,
        }
    }

    pub fn error(id: u64, message: impl Into<String>) -> Reply {
        Reply {
            id,
            result: None,
            error: Some(message.into()),
        }
    }

    /// Parses one reply line (without its newline) the way Ruth does: the object must have
    /// an unsigned `id` and exactly one of `result` and `error` (a string); other fields are
    /// ignored.
    pub fn parse(line: &[u8]) -> Result<Reply, String> {
        const SHAPE: &str = "a reply is one JSON object per line, {\"id\": N, \"result\": ...} \
                             or {\"id\": N, \"error\": \"...\"}";
        // An object first: serde would also build the struct from an array like [1, 2].
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)
            .map_err(|e| format!("not a reply object ({e}): {SHAPE}"))?;
        let has_result = object.contains_key("result");
        let reply = Reply::deserialize(serde_json::Value::Object(object))
            .map_err(|e| format!("not a reply object ({e}): {SHAPE}"))?;
        match (&reply.result, &reply.error) {
            (Some(_), Some(_)) => Err("a reply has both result and error".into()),
            // `"result": null` deserialises to None: it is a result of null.
            (None, None) if has_result => Ok(Reply::result(reply.id, serde_json::Value::Null)),
            (None, None) => Err("a reply has neither result nor error".into()),
            _ => Ok(reply),
        }
    }

    /// The reply as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reply_parsing_table() {
        // (line, Ok(id) or the start of the error)
        let table: &[(&str, Result<u64, &str>)] = &[
            (r#"{"id":7,"result":{"motion":0.5}}"#, Ok(7)),
            (r#"{"id":8,"error":"lapped"}"#, Ok(8)),
            (r#"{"id":9,"result":null}"#, Ok(9)),
            (r#"{"id":10,"result":1,"extra":"ignored"}"#, Ok(10)),
            (
                r#"{"id":1,"result":1,"error":"x"}"#,
                Err("a reply has both"),
            ),
            (r#"{"id":1}"#, Err("a reply has neither")),
            (r#"{"result":1}"#, Err("not a reply object")),
            (r#"{"id":-1,"result":1}"#, Err("not a reply object")),
            (r#"{"id":1,"error":5}"#, Err("not a reply object")),
            ("[1,2]", Err("not a reply object")),
            ("hello", Err("not a reply object")),
            ("", Err("not a reply object")),
        ];
        for (line, want) in table {
            let got = Reply::parse(line.as_bytes());
            match (want, &got) {
                (Ok(id), Ok(r)) => assert_eq!(r.id, *id, "{line}"),
                (Err(prefix), Err(e)) => assert!(e.starts_with(prefix), "{line}: {e}"),
                _ => panic!("{line}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn reply_lines_round_trip() {
        let r = Reply::result(3, json!({"a": [1, 2]}));
        let line = r.to_line();
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(Reply::parse(&line[..line.len() - 1]).unwrap(), r);
        let e = Reply::error(4, "no such frame");
        assert_eq!(
            String::from_utf8(e.to_line()).unwrap(),
            "{\"id\":4,\"error\":\"no such frame\"}\n"
        );
    }

    #[test]
    fn requests_name_their_version_and_type() {
        let mut req: FrameRequest = serde_json::from_value(json!({
            "v": 1, "type": "frame", "id": 1, "camera": "front", "root": "/dev/shm/vas",
            "generation": 5, "slot": 2, "sequence": 8, "frame_id": 40, "pts_ns": 1,
            "wall_ns": 2, "mono_ns": 3, "width": 4, "height": 2, "stride_y": 4,
            "stride_uv": 4, "format": "nv12", "key_frame": true, "deadline_ms": 2000,
            "future_field": "ignored"
        }))
        .unwrap();
        assert_eq!(req.unsupported(), None);
        assert_eq!(
            req.frame_ref(),
            FrameRef {
                generation: 5,
                slot: 2,
                sequence: 8,
                frame_id: 40
            }
        );
        req.v = 2;
        assert!(req.unsupported().unwrap().contains("version 2"));
    }

    /// vas-model(7): a request line is at most 464 bytes plus the root, so 16384 bytes hold
    /// every request whose root is a usable path (PATH_MAX is 4096 with its NUL).
    #[test]
    fn the_longest_request_fits_the_limit() {
        let line_len = |root: &str| {
            let longest = FrameRequest {
                v: PROTOCOL_VERSION,
                kind: FRAME_REQUEST.to_string(),
                id: u64::MAX,
                camera: "c".repeat(64),
                root: root.to_string(),
                generation: u64::MAX,
                slot: 63,
                sequence: u64::MAX,
                frame_id: u64::MAX,
                pts_ns: i64::MIN,
                wall_ns: i64::MIN,
                mono_ns: i64::MIN,
                width: 16384,
                height: 16384,
                stride_y: u32::MAX,
                stride_uv: u32::MAX,
                format: FORMAT_NV12.to_string(),
                key_frame: false,
                deadline_ms: 600_000,
            };
            serde_json::to_vec(&longest).unwrap().len() + 1
        };
        assert_eq!(line_len(""), 464);
        assert!(line_len(&"r".repeat(4095)) <= MAX_REQUEST_BYTES);
    }
}
