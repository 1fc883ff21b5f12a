//! Owns the camera threads and applies config changes as a diff: added cameras start, removed
//! ones stop, changed ones restart, untouched ones keep streaming without a reconnect.

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
    /// The camera's thread has ended; the queue's sender is gone.
    fn detach(&mut self, camera_id: &str);
}

/// Status of every running camera, by id, for the API.
pub type StatusBoard = Arc<RwLock<BTreeMap<String, Arc<CameraStatus>>>>;

/// What a reload does, by camera id.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub start: Vec<String>,
    pub stop: Vec<String>,
    pub restart: Vec<String>,
    pub keep: Vec<String>,
}

/// Compares running cameras with the wanted ones.
pub fn plan(running: &BTreeMap<String, CameraConfig>, wanted: &[CameraConfig]) -> Plan {
    let mut p = Plan::default();
    for cam in wanted {
        match running.get(&cam.id) {
            None => p.start.push(cam.id.clone()),
            Some(old) if old != cam => p.restart.push(cam.id.clone()),
            Some(_) => p.keep.push(cam.id.clone()),
        }
    }
    for id in running.keys() {
        if !wanted.iter().any(|c| &c.id == id) {
            p.stop.push(id.clone());
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
        for cam in wanted {
            if plan.start.contains(&cam.id) || plan.restart.contains(&cam.id) {
                self.start(cam.clone());
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
        let id = cam.id.clone();
        let status = CameraHandle::new_status(&cam);
        let sinks = self
            .consumers
            .iter_mut()
            .filter_map(|c| c.attach(&cam, &status))
            .collect();
        match CameraHandle::spawn(cam, status, sinks) {
            Ok(handle) => {
                self.board
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.clone(), handle.status.clone());
                self.cameras.insert(id, handle);
            }
            Err(e) => {
                log::error!(
                    target: &crate::camera::log_target(&id),
                    "cannot start the camera thread: {e}"
                );
                self.consumers.iter_mut().for_each(|c| c.detach(&id));
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
            board.remove(&h.config.id);
        }
        drop(board);
        for h in handles {
            let id = h.config.id.clone();
            h.join();
            self.consumers.iter_mut().for_each(|c| c.detach(&id));
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
