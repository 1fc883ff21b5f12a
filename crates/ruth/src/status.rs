//! Status: a Unix socket that answers each connection with one JSON document (agents,
//! subscriptions, models, events) and closes it; `ruth status` reads it and prints tables.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::registry::Board;

/// How long the status thread waits for a reader to take the document.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

pub fn serve(board: Arc<Board>, listener: UnixListener) -> Result<()> {
    std::thread::Builder::new()
        .name("status".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut stream) = conn else { continue };
                let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
                let mut text = snapshot(&board).to_string();
                text.push('\n');
                let _ = stream.write_all(text.as_bytes());
            }
        })
        .map(|_| ())
        .map_err(|e| Error::Io {
            what: "starting the status thread".into(),
            source: e,
        })
}

/// The whole status as JSON.
pub fn snapshot(board: &Board) -> Value {
    let now = Instant::now();
    let subs = board.subscriptions();
    let subscriptions: Vec<Value> = subs.iter().map(|s| s.status(now)).collect();
    let mut models: BTreeMap<String, (Value, u32, u32)> = BTreeMap::new();
    for (sub, row) in subs.iter().zip(&subscriptions) {
        let entry = models.entry(sub.model.id.clone()).or_insert_with(|| {
            let m = &sub.model;
            (
                json!({
                    "id": m.id,
                    "socket": m.socket,
                    "deadline_ms": m.deadline.as_millis() as u64,
                    "max_reply_bytes": m.max_reply_bytes,
                    "reconnect_ms": m.reconnect.as_millis() as u64,
                }),
                0,
                0,
            )
        });
        entry.1 += 1;
        entry.2 += u32::from(row["state"] == "up");
    }
    let models: Vec<Value> = models
        .into_values()
        .map(|(mut m, n, up)| {
            m["subscriptions"] = json!(n);
            m["up"] = json!(up);
            m
        })
        .collect();
    json!({
        "pid": std::process::id(),
        "config": board.config_file,
        "export_root": board.export_root,
        "uptime_s": board.started.elapsed().as_secs(),
        "reloads": board.reloads(),
        "agents": board.agents().iter().map(|a| a.status()).collect::<Vec<_>>(),
        "subscriptions": subscriptions,
        "models": models,
        "events": board.events.status(),
    })
}

/// Reads the status document from a running Ruth.
pub fn fetch(socket: &Path) -> Result<Value> {
    let fail = |message: String| Error::Status {
        path: socket.to_path_buf(),
        message,
    };
    let mut stream = UnixStream::connect(socket)
        .map_err(|e| fail(format!("{e} (is ruth running with this config?)")))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| fail(e.to_string()))?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| fail(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| fail(format!("not a status document: {e}")))
}

/// Tables for people: agents, subscriptions, models, events.
pub fn render(status: &Value) -> String {
    let mut out = String::new();
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    out.push_str(&format!(
        "ruth pid {}, up {} s, {} reload(s), export root {}\n\n",
        status["pid"],
        status["uptime_s"],
        status["reloads"],
        text(&status["export_root"])
    ));
    let mut rows = vec![vec![
        "AGENT".to_string(),
        "STATE".into(),
        "GENERATION".into(),
        "FRAMES".into(),
        "LAST FRAME".into(),
        "ERROR".into(),
    ]];
    for a in status["agents"].as_array().into_iter().flatten() {
        rows.push(vec![
            text(&a["stream_agent_id"]),
            text(&a["state"]),
            text(&a["generation"]),
            text(&a["frames"]),
            text(&a["last_frame_id"]),
            text(&a["error"]),
        ]);
    }
    out.push_str(&table(&rows));
    out.push('\n');
    let mut rows = vec![vec![
        "SUBSCRIPTION".to_string(),
        "FPS".into(),
        "STATE".into(),
        "SENT/S".into(),
        "SKIPPED/S".into(),
        "DISPATCHED".into(),
        "RESULTS".into(),
        "SKIPPED BUSY/DOWN/WRITE".into(),
        "ERRORS".into(),
        "DROPPED".into(),
        "REASON".into(),
    ]];
    for s in status["subscriptions"].as_array().into_iter().flatten() {
        let c = &s["counters"];
        rows.push(vec![
            format!("{}/{}", text(&s["camera"]), text(&s["model"])),
            text(&s["fps"]),
            text(&s["state"]),
            format!("{:.1}", s["sent_fps"].as_f64().unwrap_or(0.0)),
            format!("{:.1}", s["skipped_fps"].as_f64().unwrap_or(0.0)),
            text(&c["dispatched"]),
            text(&c["results"]),
            format!(
                "{}/{}/{}",
                c["skipped_busy"], c["skipped_down"], c["skipped_write"]
            ),
            text(&c["model_errors"]),
            text(&c["replies_dropped"]),
            text(&s["down_reason"]),
        ]);
    }
    out.push_str(&table(&rows));
    // Under the table, not in it: a model's message can be a sentence long.
    for s in status["subscriptions"].as_array().into_iter().flatten() {
        if let Some(error) = s["last_model_error"].as_str() {
            out.push_str(&format!(
                "last model error of {}/{}: {error}\n",
                text(&s["camera"]),
                text(&s["model"])
            ));
        }
    }
    out.push('\n');
    let mut rows = vec![vec![
        "MODEL".to_string(),
        "SOCKET".into(),
        "UP".into(),
        "DEADLINE MS".into(),
    ]];
    for m in status["models"].as_array().into_iter().flatten() {
        rows.push(vec![
            text(&m["id"]),
            text(&m["socket"]),
            format!("{}/{}", m["up"], m["subscriptions"]),
            text(&m["deadline_ms"]),
        ]);
    }
    out.push_str(&table(&rows));
    let e = &status["events"];
    out.push_str(&format!(
        "\nevents: {} published, {} subscriber(s) on {}, {} subscriber(s) dropped, {} stdout line(s) dropped\n",
        e["published"],
        e["subscribers"],
        text(&e["socket"]),
        e["subscribers_dropped"],
        e["stdout_dropped"]
    ));
    out
}

/// Left-aligned columns, two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<width$}", width = widths[i]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(model: &str, sent_fps: f64, last_model_error: Value) -> Value {
        json!({
            "camera": "front", "model": model, "fps": 5.0, "state": "up",
            "down_reason": null, "sent_fps": sent_fps, "skipped_fps": 0.0,
            "last_model_error": last_model_error,
            "counters": {"dispatched": 50, "results": 40, "skipped_busy": 1,
                         "skipped_down": 2, "skipped_write": 3, "model_errors": 10,
                         "replies_dropped": 0},
        })
    }

    /// The subscriptions table shows the send rate, and the last model error of each
    /// subscription that has one on a line under it.
    #[test]
    fn subscriptions_table_and_last_model_errors() {
        let status = json!({
            "pid": 7, "uptime_s": 3, "reloads": 0, "export_root": "/dev/shm/vas",
            "agents": [], "models": [],
            "subscriptions": [
                subscription("motion", 4.8, json!("frame 17 was overwritten before it was read")),
                subscription("plates", 2.0, Value::Null),
            ],
            "events": {"published": 0, "subscribers": 0, "socket": "/run/e.sock",
                       "subscribers_dropped": 0, "stdout_dropped": 0},
        });
        let out = render(&status);
        let lines: Vec<&str> = out.lines().collect();
        let header = lines
            .iter()
            .position(|l| l.starts_with("SUBSCRIPTION"))
            .unwrap();
        let cells = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
        // (line after the header, its cells)
        let expected: [(usize, &[&str]); 2] = [
            (
                1,
                &[
                    "front/motion",
                    "5.0",
                    "up",
                    "4.8",
                    "0.0",
                    "50",
                    "40",
                    "1/2/3",
                    "10",
                    "0",
                    "-",
                ],
            ),
            (
                2,
                &[
                    "front/plates",
                    "5.0",
                    "up",
                    "2.0",
                    "0.0",
                    "50",
                    "40",
                    "1/2/3",
                    "10",
                    "0",
                    "-",
                ],
            ),
        ];
        assert_eq!(
            cells(lines[header])[..5],
            ["SUBSCRIPTION", "FPS", "STATE", "SENT/S", "SKIPPED/S"]
        );
        for (offset, want) in expected {
            assert_eq!(cells(lines[header + offset]), want, "{out}");
        }
        assert_eq!(
            lines[header + 3],
            "last model error of front/motion: frame 17 was overwritten before it was read",
            "{out}"
        );
        assert_eq!(lines[header + 4], "", "one error line only: {out}");
    }
}
