//! `GET /metrics`: the status board in the Prometheus text format (version 0.0.4).
//!
//! Nothing is counted for it: a collector reads the same camera snapshots as `/api/cameras`
//! when a scrape arrives, so a camera thread pays nothing per packet for the metrics, and a
//! vasd nobody scrapes pays nothing at all. Every series has a `camera` label; counters end
//! in `_total` (the encoder appends it to the names below).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::camera::status::{CameraSnapshot, CameraState};
use crate::supervisor::StatusBoard;

/// The `Content-Type` of the reply.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Prefix of every metric name.
const PREFIX: &str = "vas";

pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new(board: StatusBoard) -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register_collector(Box::new(BoardCollector { board }));
        Metrics { registry }
    }

    /// The exposition text of every camera on the board now.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[derive(Debug)]
struct BoardCollector {
    board: StatusBoard,
}

/// One series of a family: the label besides `camera` (e.g. `queue`), and the value.
type Sample = (Option<(&'static str, &'static str)>, u64);

/// A metric family: name without prefix and `_total`, help text, type, and how to read its
/// series from a camera's snapshot (none when the camera does not have that part).
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    read: fn(&CameraSnapshot) -> Vec<Sample>,
}

fn one(value: u64) -> Vec<Sample> {
    vec![(None, value)]
}

/// A number of a consumer's status section (`record`, `live`), if the camera has the section.
fn section(cam: &CameraSnapshot, name: &str, field: &str) -> Vec<Sample> {
    cam.sections
        .get(name)
        .and_then(|s| s.get(field))
        .and_then(serde_json::Value::as_u64)
        .map(one)
        .unwrap_or_default()
}

const STATES: [(CameraState, &str); 4] = [
    (CameraState::Connecting, "connecting"),
    (CameraState::Streaming, "streaming"),
    (CameraState::BackingOff, "backing_off"),
    (CameraState::Stopped, "stopped"),
];

/// Every family, in the order of the exposition. The names are documented in vasd(8).
const FAMILIES: &[Family] = &[
    Family {
        name: "packets_received",
        help: "Access units (video packets) received from the camera.",
        kind: MetricType::Counter,
        read: |c| one(c.packets),
    },
    Family {
        name: "bytes_received",
        help: "Bytes of video received from the camera.",
        kind: MetricType::Counter,
        read: |c| one(c.bytes),
    },
    Family {
        name: "key_frames",
        help: "Key frames received from the camera.",
        kind: MetricType::Counter,
        read: |c| one(c.key_frames),
    },
    Family {
        name: "reconnects",
        help: "Sessions opened after the first one.",
        kind: MetricType::Counter,
        read: |c| one(c.reconnects),
    },
    Family {
        name: "failures",
        help: "Failed open attempts and sessions that ended in an error.",
        kind: MetricType::Counter,
        read: |c| one(c.failures),
    },
    Family {
        name: "camera_streaming",
        help: "1 while the camera is streaming, 0 otherwise.",
        kind: MetricType::Gauge,
        read: |c| one(u64::from(c.state == CameraState::Streaming)),
    },
    Family {
        name: "camera_state",
        help: "1 for the state the camera is in, 0 for the others.",
        kind: MetricType::Gauge,
        read: |c| {
            STATES
                .iter()
                .map(|(s, name)| (Some(("state", *name)), u64::from(c.state == *s)))
                .collect()
        },
    },
    Family {
        name: "frames_decoded",
        help: "Frames decoded for the export (exported cameras only).",
        kind: MetricType::Counter,
        read: |c| c.export.iter().map(|e| (None, e.frames_decoded)).collect(),
    },
    Family {
        name: "frames_exported",
        help: "Frames published to the shared-memory export (exported cameras only).",
        kind: MetricType::Counter,
        read: |c| c.export.iter().map(|e| (None, e.frames_exported)).collect(),
    },
    Family {
        name: "decode_errors",
        help: "Packets the decoder refused (exported cameras only).",
        kind: MetricType::Counter,
        read: |c| c.export.iter().map(|e| (None, e.decode_errors)).collect(),
    },
    Family {
        name: "queue_units_offered",
        help: "Access units the camera thread offered to a consumer queue.",
        kind: MetricType::Counter,
        read: |c| {
            c.queues
                .iter()
                .map(|(q, s)| (Some(("queue", *q)), s.offered))
                .collect()
        },
    },
    Family {
        name: "queue_units_dropped",
        help: "Access units dropped because a consumer queue was full.",
        kind: MetricType::Counter,
        read: |c| {
            c.queues
                .iter()
                .map(|(q, s)| (Some(("queue", *q)), s.dropped))
                .collect()
        },
    },
    Family {
        name: "record_segments",
        help: "Recording segments completed.",
        kind: MetricType::Counter,
        read: |c| section(c, "record", "segments"),
    },
    Family {
        name: "record_bytes",
        help: "Bytes of the completed recording segments.",
        kind: MetricType::Counter,
        read: |c| section(c, "record", "bytes"),
    },
    Family {
        name: "record_write_errors",
        help: "Failed writes or opens of recording segments.",
        kind: MetricType::Counter,
        read: |c| section(c, "record", "write_errors"),
    },
    Family {
        name: "record_units_skipped",
        help: "Access units never recorded: dropped at the queue, waiting for a key frame, or without a picture.",
        kind: MetricType::Counter,
        read: |c| section(c, "record", "units_skipped"),
    },
    Family {
        name: "live_viewers",
        help: "Live view sessions now, connected or still connecting.",
        kind: MetricType::Gauge,
        read: |c| section(c, "live", "viewers"),
    },
    Family {
        name: "live_rtp_bytes_sent",
        help: "RTP bytes sent to live viewers.",
        kind: MetricType::Counter,
        read: |c| section(c, "live", "rtp_bytes_sent"),
    },
];

impl Collector for BoardCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Snapshots first, then the text: the board's lock is held only while reading atomics.
        let cameras: Vec<CameraSnapshot> = self
            .board
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|s| s.snapshot())
            .collect();

        let build = ConstGauge::new(1u64);
        let mut metric = encoder.encode_descriptor(
            "build_info",
            "Always 1; the label tells the version of vasd.",
            None,
            build.metric_type(),
        )?;
        build.encode(metric.encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?)?;

        for family in FAMILIES {
            let series: Vec<(&str, Sample)> = cameras
                .iter()
                .flat_map(|c| (family.read)(c).into_iter().map(|s| (c.id.as_str(), s)))
                .collect();
            // A family no camera has (no exported camera, say) is left out, not shown empty.
            if series.is_empty() {
                continue;
            }
            let mut metric =
                encoder.encode_descriptor(family.name, family.help, None, family.kind)?;
            for (camera, (label, value)) in series {
                let mut labels = vec![("camera", camera)];
                labels.extend(label);
                let metric = metric.encode_family(&labels)?;
                match family.kind {
                    MetricType::Counter => ConstCounter::new(value).encode(metric)?,
                    _ => ConstGauge::new(value).encode(metric)?,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::fanout::QueueStats;
    use crate::camera::status::{CameraStatus, StatusSection};
    use std::collections::BTreeMap;
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, RwLock};

    #[derive(Debug)]
    struct Section(serde_json::Value);

    impl StatusSection for Section {
        fn snapshot(&self) -> serde_json::Value {
            self.0.clone()
        }
    }

    /// Camera `a` exported, recorded and live; camera `b` with none of those.
    fn board() -> StatusBoard {
        let a = Arc::new(CameraStatus::new("a", "rtsp://a".into(), true));
        a.set_state(CameraState::Streaming);
        a.count_packet(1000, true, 1);
        a.count_packet(500, false, 2);
        a.reconnects.fetch_add(1, Ordering::Relaxed);
        let export = a.export.as_ref().unwrap();
        export.frames_decoded.store(2, Ordering::Relaxed);
        export.frames_exported.store(2, Ordering::Relaxed);
        let queue = Arc::new(QueueStats::default());
        queue.offered.store(2, Ordering::Relaxed);
        queue.dropped.store(1, Ordering::Relaxed);
        a.add_queue("record", queue);
        a.add_section(
            "record",
            Arc::new(Section(serde_json::json!({
                "segments": 3, "bytes": 1400, "write_errors": 0, "units_skipped": 1,
                "state": "writing"
            }))),
        );
        a.add_section(
            "live",
            Arc::new(Section(
                serde_json::json!({"viewers": 2, "rtp_bytes_sent": 9000}),
            )),
        );
        let b = Arc::new(CameraStatus::new("b", "rtsp://b".into(), false));
        b.set_state(CameraState::BackingOff);
        b.set_error(crate::error::CameraFault::Unreachable, "refused".into());
        let cams = [("a".to_string(), a), ("b".to_string(), b)];
        Arc::new(RwLock::new(cams.into_iter().collect::<BTreeMap<_, _>>()))
    }

    #[test]
    fn every_family_with_its_series() {
        let text = Metrics::new(board()).render().unwrap();
        let version = env!("CARGO_PKG_VERSION");
        // (TYPE line, the family's series in order)
        let want: &[(&str, &[&str])] = &[
            (
                "vas_build_info gauge",
                &[&format!("vas_build_info{{version=\"{version}\"}} 1")],
            ),
            (
                "vas_packets_received_total counter",
                &[
                    "vas_packets_received_total{camera=\"a\"} 2",
                    "vas_packets_received_total{camera=\"b\"} 0",
                ],
            ),
            (
                "vas_bytes_received_total counter",
                &[
                    "vas_bytes_received_total{camera=\"a\"} 1500",
                    "vas_bytes_received_total{camera=\"b\"} 0",
                ],
            ),
            (
                "vas_key_frames_total counter",
                &[
                    "vas_key_frames_total{camera=\"a\"} 1",
                    "vas_key_frames_total{camera=\"b\"} 0",
                ],
            ),
            (
                "vas_reconnects_total counter",
                &[
                    "vas_reconnects_total{camera=\"a\"} 1",
                    "vas_reconnects_total{camera=\"b\"} 0",
                ],
            ),
            (
                "vas_failures_total counter",
                &[
                    "vas_failures_total{camera=\"a\"} 0",
                    "vas_failures_total{camera=\"b\"} 1",
                ],
            ),
            (
                "vas_camera_streaming gauge",
                &[
                    "vas_camera_streaming{camera=\"a\"} 1",
                    "vas_camera_streaming{camera=\"b\"} 0",
                ],
            ),
            (
                "vas_camera_state gauge",
                &[
                    "vas_camera_state{camera=\"a\",state=\"connecting\"} 0",
                    "vas_camera_state{camera=\"a\",state=\"streaming\"} 1",
                    "vas_camera_state{camera=\"a\",state=\"backing_off\"} 0",
                    "vas_camera_state{camera=\"a\",state=\"stopped\"} 0",
                    "vas_camera_state{camera=\"b\",state=\"connecting\"} 0",
                    "vas_camera_state{camera=\"b\",state=\"streaming\"} 0",
                    "vas_camera_state{camera=\"b\",state=\"backing_off\"} 1",
                    "vas_camera_state{camera=\"b\",state=\"stopped\"} 0",
                ],
            ),
            (
                "vas_frames_decoded_total counter",
                &["vas_frames_decoded_total{camera=\"a\"} 2"],
            ),
            (
                "vas_frames_exported_total counter",
                &["vas_frames_exported_total{camera=\"a\"} 2"],
            ),
            (
                "vas_decode_errors_total counter",
                &["vas_decode_errors_total{camera=\"a\"} 0"],
            ),
            (
                "vas_queue_units_offered_total counter",
                &["vas_queue_units_offered_total{camera=\"a\",queue=\"record\"} 2"],
            ),
            (
                "vas_queue_units_dropped_total counter",
                &["vas_queue_units_dropped_total{camera=\"a\",queue=\"record\"} 1"],
            ),
            (
                "vas_record_segments_total counter",
                &["vas_record_segments_total{camera=\"a\"} 3"],
            ),
            (
                "vas_record_bytes_total counter",
                &["vas_record_bytes_total{camera=\"a\"} 1400"],
            ),
            (
                "vas_record_write_errors_total counter",
                &["vas_record_write_errors_total{camera=\"a\"} 0"],
            ),
            (
                "vas_record_units_skipped_total counter",
                &["vas_record_units_skipped_total{camera=\"a\"} 1"],
            ),
            (
                "vas_live_viewers gauge",
                &["vas_live_viewers{camera=\"a\"} 2"],
            ),
            (
                "vas_live_rtp_bytes_sent_total counter",
                &["vas_live_rtp_bytes_sent_total{camera=\"a\"} 9000"],
            ),
        ];
        let mut expected = Vec::new();
        for (typ, series) in want {
            let name = typ.split(' ').next().unwrap();
            let help = text
                .lines()
                .find(|l| l.starts_with(&format!("# HELP {name} ")))
                .unwrap_or_else(|| panic!("no HELP for {name}:\n{text}"));
            expected.push(help.to_string());
            expected.push(format!("# TYPE {typ}"));
            expected.extend(series.iter().map(|s| s.to_string()));
        }
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got, expected, "\n{text}");
    }

    #[test]
    fn an_empty_board_shows_only_the_build() {
        let text = Metrics::new(Arc::new(RwLock::new(BTreeMap::new())))
            .render()
            .unwrap();
        let series: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(series.len(), 1, "{text}");
        assert!(series[0].starts_with("vas_build_info{"), "{text}");
    }
}
