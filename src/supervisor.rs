//! Owns the camera threads and applies config changes as a diff: added cameras start, removed
//! ones stop, changed ones restart, untouched ones keep streaming without a reconnect. The
//! unit is a camera *stream*: a camera with a substream runs two threads, and a change to
//! one stream's settings restarts that stream alone.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::camera::fanout::QueueSink;
use crate::camera::status::CameraStatus;
use crate::camera::CameraHandle;
use crate::config::CameraConfig;

/// A consumer of access units (recorder, live view). The supervisor asks it for a queue when a
/// camera starts and tells it when the camera has stopped; the camera thread only ever
/// `try_send`s into the queue.
pub trait Consumer: Send {
    /// The queue this consumer wants filled for `cam`, or `None` if it does not serve it.
    /// It may add its own section to the camera's `status`.
    fn attach(&mut self, cam: &CameraConfig, status: &Arc<CameraStatus>) -> Option<QueueSink>;
    /// The thread of the stream `cam` has ended; the queue's sender is gone. Called for every
    /// stream that was attached, whatever `attach` returned.
    fn detach(&mut self, cam: &CameraConfig);
}

/// Status of every running camera stream, by stream key (`<id>`, `<id>/sub`), for the API.
pub type StatusBoard = Arc<RwLock<BTreeMap<String, Arc<CameraStatus>>>>;

/// What a reload does, by stream key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub start: Vec<String>,
    pub stop: Vec<String>,
    pub restart: Vec<String>,
    pub keep: Vec<String>,
}

/// Compares running streams with the streams of the wanted cameras.
pub fn plan(running: &BTreeMap<String, CameraConfig>, wanted: &[CameraConfig]) -> Plan {
    let wanted: Vec<CameraConfig> = wanted.iter().flat_map(|c| c.streams()).collect();
    let mut p = Plan::default();
    for stream in &wanted {
        let key = stream.stream_key();
        match running.get(&key) {
            None => p.start.push(key),
            Some(old) if old != stream => p.restart.push(key),
            Some(_) => p.keep.push(key),
        }
    }
    for key in running.keys() {
        if !wanted.iter().any(|c| &c.stream_key() == key) {
            p.stop.push(key.clone());
        }
    }
    p
}

pub struct Supervisor {
    cameras: BTreeMap<String, CameraHandle>,
    board: StatusBoard,
    consumers: Vec<Box<dyn Consumer>>,
}

impl Supervisor {
    pub fn new(board: StatusBoard, consumers: Vec<Box<dyn Consumer>>) -> Supervisor {
        Supervisor {
            cameras: BTreeMap::new(),
            board,
            consumers,
        }
    }

    /// Brings the running cameras in line with `wanted`.
    pub fn apply(&mut self, wanted: &[CameraConfig]) -> Plan {
        let running = self
            .cameras
            .iter()
            .map(|(id, h)| (id.clone(), h.config.clone()))
            .collect();
        let plan = plan(&running, wanted);
        let leaving: Vec<&String> = plan.stop.iter().chain(&plan.restart).collect();
        self.stop_all(leaving.iter().map(|s| s.as_str()));
        for stream in wanted.iter().flat_map(|c| c.streams()) {
            let key = stream.stream_key();
            if plan.start.contains(&key) || plan.restart.contains(&key) {
                self.start(stream);
            }
        }
        plan
    }

    /// Stops every camera; each blocked open or read is cancelled, so this is quick.
    pub fn shutdown(&mut self) {
        let ids: Vec<String> = self.cameras.keys().cloned().collect();
        self.stop_all(ids.iter().map(|s| s.as_str()));
    }

    fn start(&mut self, cam: CameraConfig) {
        let id = cam.stream_key();
        let status = CameraHandle::new_status(&cam);
        let sinks = self
            .consumers
            .iter_mut()
            .filter_map(|c| c.attach(&cam, &status))
            .collect();
        match CameraHandle::spawn(cam.clone(), status, sinks) {
            Ok(handle) => {
                self.board
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.clone(), handle.status.clone());
                self.cameras.insert(id, handle);
            }
            Err(e) => {
                log::error!(target: &cam.thread_name(), "cannot start the camera thread: {e}");
                self.consumers.iter_mut().for_each(|c| c.detach(&cam));
            }
        }
    }

    /// Raises every stop first and joins after, so cameras stop in parallel.
    fn stop_all<'a>(&mut self, ids: impl Iterator<Item = &'a str>) {
        let handles: Vec<CameraHandle> = ids.filter_map(|id| self.cameras.remove(id)).collect();
        for h in &handles {
            h.request_stop();
        }
        let mut board = self.board.write().unwrap_or_else(|e| e.into_inner());
        for h in &handles {
            board.remove(&h.config.stream_key());
        }
        drop(board);
        for h in handles {
            let cam = h.config.clone();
            h.join();
            self.consumers.iter_mut().for_each(|c| c.detach(&cam));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn cams(text: &str) -> Vec<CameraConfig> {
        Config::parse(Path::new("t.toml"), text, None)
            .unwrap()
            .cameras
    }

    #[test]
    fn reload_plan() {
        let old = cams(
            "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/a\"\n\
             [[camera]]\nid = \"b\"\nurl = \"rtsp://h/b\"\n\
             [[camera]]\nid = \"c\"\nurl = \"rtsp://h/c\"\n",
        );
        let running = old.iter().map(|c| (c.id.clone(), c.clone())).collect();
        // a: untouched, b: url changed, c: removed, d: added
        let new = cams(
            "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/a\"\n\
             [[camera]]\nid = \"b\"\nurl = \"rtsp://h/b2\"\n\
             [[camera]]\nid = \"d\"\nurl = \"rtsp://h/d\"\n",
        );
        assert_eq!(
            plan(&running, &new),
            Plan {
                start: vec!["d".into()],
                stop: vec!["c".into()],
                restart: vec!["b".into()],
                keep: vec!["a".into()],
            }
        );
    }

    #[test]
    fn a_change_to_one_stream_restarts_only_that_stream() {
        let two = |main: &str, sub: &str| {
            cams(&format!(
                "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/{main}\"\nrecord = true\n\
                 [camera.substream]\nurl = \"rtsp://h/{sub}\"\nroles = [\"live\"]\n"
            ))
        };
        let running = |c: &[CameraConfig]| {
            c.iter()
                .flat_map(|c| c.streams())
                .map(|s| (s.stream_key(), s))
                .collect::<BTreeMap<_, _>>()
        };
        let old = running(&two("main", "sub"));
        // (new config, restarted streams, kept streams)
        let table: [(Vec<CameraConfig>, &[&str], &[&str]); 3] = [
            (two("main", "sub2"), &["a/sub"], &["a"]),
            (two("main2", "sub"), &["a"], &["a/sub"]),
            (two("main", "sub"), &[], &["a", "a/sub"]),
        ];
        for (new, restart, keep) in table {
            let p = plan(&old, &new);
            assert_eq!(p.restart, restart, "{p:?}");
            assert_eq!(p.keep, keep, "{p:?}");
        }
    }

    #[test]
    fn a_global_change_restarts_only_the_cameras_it_affects() {
        let old = cams(
            "[[camera]]\nid = \"a\"\nurl = \"rtsp://h/a\"\n\
             [[camera]]\nid = \"b\"\nurl = \"rtsp://h/b\"\nreconnect = { io_timeout_ms = 3000 }\n",
        );
        let running = old.iter().map(|c| (c.id.clone(), c.clone())).collect();
        let new = cams(
            "[reconnect]\nio_timeout_ms = 9000\n\
             [[camera]]\nid = \"a\"\nurl = \"rtsp://h/a\"\n\
             [[camera]]\nid = \"b\"\nurl = \"rtsp://h/b\"\nreconnect = { io_timeout_ms = 3000 }\n",
        );
        let p = plan(&running, &new);
        assert_eq!(p.restart, vec!["a".to_string()]);
        assert_eq!(p.keep, vec!["b".to_string()]);
    }
}
