//! The running agents and subscriptions, and how a config becomes them. At start and on each
//! SIGHUP, [`Registry::apply`] compares the wanted subscriptions with the running ones:
//! added ones connect and take the next frame, removed ones stop at once with their request
//! in flight dropped (no draining), and one whose only change is `fps` keeps its connection.
//! Cameras that gain their first subscription get an agent, cameras that lose their last one
//! lose it. Nothing here waits on a camera or a model.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Instant;

use crate::agent::Agent;
use crate::config::{Config, SubscriptionConfig};
use crate::events::Events;
use crate::subscription::Subscription;
use crate::waker::Waker;

/// What the replies thread and the status server read: the current agents and
/// subscriptions. Replaced as a whole by the registry, so readers take a consistent copy.
pub struct Board {
    pub started: Instant,
    pub config_file: PathBuf,
    pub export_root: PathBuf,
    pub events: Arc<Events>,
    inner: RwLock<Contents>,
}

#[derive(Default)]
struct Contents {
    agents: Vec<Arc<Agent>>,
    subscriptions: Vec<Arc<Subscription>>,
    reloads: u64,
}

impl Board {
    pub fn new(config: &Config, events: Arc<Events>) -> Board {
        Board {
            started: Instant::now(),
            config_file: config.file.clone(),
            export_root: config.export_root.clone(),
            events,
            inner: RwLock::new(Contents::default()),
        }
    }

    /// A copy of the list (Arcs only): the replies thread takes one per wake.
    pub fn subscriptions(&self) -> Vec<Arc<Subscription>> {
        self.read().subscriptions.clone()
    }

    pub fn agents(&self) -> Vec<Arc<Agent>> {
        self.read().agents.clone()
    }

    pub fn reloads(&self) -> u64 {
        self.read().reloads
    }

    fn read(&self) -> RwLockReadGuard<'_, Contents> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a reload changed, by subscription name ("camera/model").
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// Only `fps` changed: applied in place.
    pub retune: Vec<String>,
    pub keep: usize,
}

/// Compares running subscriptions with wanted ones. A change of the model's settings (its
/// socket, deadline, limits) is a remove and an add: a new connection with the new settings.
pub fn plan(running: &BTreeMap<String, SubscriptionConfig>, wanted: &[SubscriptionConfig]) -> Plan {
    let mut p = Plan::default();
    for sub in wanted {
        let name = sub.name();
        match running.get(&name) {
            None => p.add.push(name),
            Some(old) if old.model != sub.model => {
                p.remove.push(name.clone());
                p.add.push(name);
            }
            Some(old) if old.fps != sub.fps => p.retune.push(name),
            Some(_) => p.keep += 1,
        }
    }
    for name in running.keys() {
        if !wanted.iter().any(|s| &s.name() == name) {
            p.remove.push(name.clone());
        }
    }
    p
}

pub struct Registry {
    board: Arc<Board>,
    waker: Arc<Waker>,
    agents: BTreeMap<String, Arc<Agent>>,
    /// Agents retired by a reload whose thread may still be on its way out (it notices
    /// within 500 ms). A camera subscribed again in the meantime takes its agent back, so
    /// there is never a second agent thread for a camera.
    retiring: BTreeMap<String, Arc<Agent>>,
    subscriptions: BTreeMap<String, (SubscriptionConfig, Arc<Subscription>)>,
}

impl Registry {
    pub fn new(board: Arc<Board>, waker: Arc<Waker>) -> Registry {
        Registry {
            board,
            waker,
            agents: BTreeMap::new(),
            retiring: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
        }
    }

    /// Brings the running subscriptions and agents in line with `config`.
    pub fn apply(&mut self, config: &Config) -> Plan {
        let running = self
            .subscriptions
            .iter()
            .map(|(name, (cfg, _))| (name.clone(), cfg.clone()))
            .collect();
        let plan = plan(&running, &config.subscriptions);
        let now = Instant::now();
        for name in &plan.remove {
            if let Some((_, sub)) = self.subscriptions.remove(name) {
                sub.remove();
            }
        }
        for wanted in &config.subscriptions {
            let name = wanted.name();
            if plan.add.contains(&name) {
                let sub = Arc::new(Subscription::new(
                    &wanted.camera,
                    &wanted.model,
                    wanted.fps,
                    &self.board.export_root,
                    now,
                ));
                // Connect now, so status shows the model up before the first frame.
                sub.try_connect(now);
                self.subscriptions.insert(name, (wanted.clone(), sub));
            } else if plan.retune.contains(&name) {
                if let Some((cfg, sub)) = self.subscriptions.get_mut(&name) {
                    sub.set_fps(wanted.fps);
                    cfg.fps = wanted.fps;
                }
            }
        }
        self.update_agents();
        let mut contents = self.board.inner.write().unwrap_or_else(|e| e.into_inner());
        contents.agents = self.agents.values().cloned().collect();
        contents.subscriptions = self
            .subscriptions
            .values()
            .map(|(_, s)| s.clone())
            .collect();
        drop(contents);
        self.waker.wake();
        plan
    }

    /// Counts a reload that was applied (for status: tests and operators can see it took).
    pub fn count_reload(&self) {
        self.board
            .inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .reloads += 1;
    }

    fn update_agents(&mut self) {
        let mut by_camera: BTreeMap<String, Vec<Arc<Subscription>>> = BTreeMap::new();
        for (cfg, sub) in self.subscriptions.values() {
            by_camera
                .entry(cfg.camera.clone())
                .or_default()
                .push(sub.clone());
        }
        let gone: Vec<String> = self
            .agents
            .keys()
            .filter(|c| !by_camera.contains_key(*c))
            .cloned()
            .collect();
        for camera in gone {
            if let Some(agent) = self.agents.remove(&camera) {
                agent.retire();
                self.retiring.insert(camera, agent);
            }
        }
        self.retiring.retain(|_, agent| agent.is_running());
        for (camera, subs) in by_camera {
            let agent = self.agents.entry(camera.clone()).or_insert_with(|| {
                self.retiring
                    .remove(&camera)
                    .unwrap_or_else(|| Agent::new(&camera))
            });
            agent.set_subscriptions(subs);
            // Starts a new agent, revives a retiring one, or restarts one that panicked (a
            // reload is the operator's restart).
            agent.ensure_running(&self.board.export_root, &self.waker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn subs(text: &str) -> Vec<SubscriptionConfig> {
        let models = "[[model]]\nid = \"a\"\nsocket = \"/a.sock\"\n\
                      [[model]]\nid = \"b\"\nsocket = \"/b.sock\"\n";
        Config::parse(Path::new("t.toml"), &format!("{models}{text}"))
            .unwrap()
            .subscriptions
    }

    fn sub(camera: &str, model: &str, fps: u32) -> String {
        format!("[[subscription]]\ncamera = \"{camera}\"\nmodel = \"{model}\"\nfps = {fps}\n")
    }

    #[test]
    fn reload_plan() {
        let old = subs(
            &[
                sub("x", "a", 5),
                sub("x", "b", 5),
                sub("y", "a", 5),
                sub("z", "a", 1),
            ]
            .concat(),
        );
        let running = old.iter().map(|s| (s.name(), s.clone())).collect();
        // x/a untouched, x/b fps changed, y/a removed, w/b added, z/a untouched
        let new = subs(
            &[
                sub("x", "a", 5),
                sub("x", "b", 10),
                sub("w", "b", 5),
                sub("z", "a", 1),
            ]
            .concat(),
        );
        assert_eq!(
            plan(&running, &new),
            Plan {
                add: vec!["w/b".into()],
                remove: vec!["y/a".into()],
                retune: vec!["x/b".into()],
                keep: 2,
            }
        );
    }

    #[test]
    fn a_changed_model_reconnects_its_subscriptions() {
        let old = subs(&sub("x", "a", 5));
        let running = old.iter().map(|s| (s.name(), s.clone())).collect();
        let text =
            "[[model]]\nid = \"a\"\nsocket = \"/a2.sock\"\n[[subscription]]\ncamera = \"x\"\n\
                    model = \"a\"\nfps = 5\n";
        let new = Config::parse(Path::new("t.toml"), text)
            .unwrap()
            .subscriptions;
        let p = plan(&running, &new);
        assert_eq!(
            (p.add, p.remove),
            (vec!["x/a".to_string()], vec!["x/a".to_string()])
        );
    }
}
