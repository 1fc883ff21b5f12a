//! `ruth.toml`: parsing and validation with file/line/key errors.
//!
//! The file is read into `raw` structs that mirror it key by key (unknown keys are errors),
//! then resolved into [`Config`]: defaults applied, every value checked, subscriptions
//! resolved against the models. SIGHUP compares the resolved subscriptions with `==` to find
//! what was added, removed or changed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::gate::{Fps, MAX_FPS};

/// Default location of the config.
pub const DEFAULT_PATH: &str = "/etc/vas/ruth.toml";

/// Longest path a Unix socket address holds (sun_path is 108 bytes with the final NUL).
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub file: PathBuf,
    /// Where vasd exports frames: `<root>/<camera>/frame.meta`.
    pub export_root: PathBuf,
    pub events: EventsConfig,
    pub status: StatusConfig,
    pub models: Vec<ModelConfig>,
    pub subscriptions: Vec<SubscriptionConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    pub socket: PathBuf,
    pub stdout: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusConfig {
    pub socket: PathBuf,
}

/// A model process Ruth sends frames to. Ruth never starts, stops or restarts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    pub id: String,
    /// The socket the model listens on; Ruth connects once per subscription.
    pub socket: PathBuf,
    /// A request unanswered for this long marks the subscription down.
    pub deadline: Duration,
    /// A reply line longer than this marks the subscription down.
    pub max_reply_bytes: usize,
    /// Least time between two connection attempts while the subscription is down.
    pub reconnect: Duration,
}

/// One `(camera, model)` pair, with the model's settings resolved into it.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionConfig {
    pub camera: String,
    pub model: ModelConfig,
    pub fps: Fps,
}

impl SubscriptionConfig {
    /// "camera/model": names the subscription in logs and status.
    pub fn name(&self) -> String {
        format!("{}/{}", self.camera, self.model.id)
    }
}

mod raw {
    use super::*;

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct File {
        #[serde(default)]
        pub export: Export,
        #[serde(default)]
        pub events: Events,
        #[serde(default)]
        pub status: Status,
        #[serde(default)]
        pub model: Vec<Model>,
        #[serde(default)]
        pub subscription: Vec<Subscription>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Export {
        pub root: Option<Spanned<String>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Events {
        pub socket: Option<Spanned<String>>,
        pub stdout: Option<bool>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Status {
        pub socket: Option<Spanned<String>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Model {
        pub id: Spanned<String>,
        pub socket: Spanned<String>,
        pub deadline_ms: Option<Spanned<i64>>,
        pub max_reply_bytes: Option<Spanned<i64>>,
        pub reconnect_ms: Option<Spanned<i64>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Subscription {
        pub camera: Spanned<String>,
        pub model: Spanned<String>,
        pub fps: Spanned<f64>,
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

    fn int_in(
        &self,
        value: &Spanned<i64>,
        key: &str,
        min: i64,
        max: i64,
        unit: &str,
    ) -> Result<u64> {
        let v = *value.get_ref();
        if v < min || v > max {
            return Err(self.error(
                value.span(),
                key,
                format!("{v} is out of range: use {min} to {max} {unit}"),
            ));
        }
        Ok(v as u64)
    }

    fn socket_path(&self, value: &Spanned<String>, key: &str) -> Result<PathBuf> {
        let path = value.get_ref();
        if !Path::new(path).is_absolute() {
            return Err(self.error(
                value.span(),
                key,
                format!("{path:?} is not an absolute path"),
            ));
        }
        if path.len() > MAX_SOCKET_PATH {
            return Err(self.error(
                value.span(),
                key,
                format!(
                    "the path is {} bytes, a Unix socket path holds at most {MAX_SOCKET_PATH}: \
                     use a shorter one",
                    path.len()
                ),
            ));
        }
        Ok(PathBuf::from(path))
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Model ids name log targets and status rows; the same alphabet as camera ids.
fn is_valid_id(id: &str) -> bool {
    frames::validate_camera_id(id).is_ok()
}

impl Config {
    /// Reads and validates `file`.
    pub fn load(file: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::ConfigFile {
            file: file.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(file, &text)
    }

    /// Validates `text` as the contents of `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Config> {
        let src = Source { file, text };
        let de = toml::Deserializer::new(text);
        let raw: raw::File = serde_path_to_error::deserialize(de).map_err(|e| {
            // Spanned values add a private path segment ("$__serde_spanned_private_value"):
            // users know the key without it.
            let key = e
                .path()
                .to_string()
                .split('.')
                .filter(|part| !part.starts_with("$__"))
                .collect::<Vec<_>>()
                .join(".");
            let inner = e.into_inner();
            let span = inner.span().unwrap_or(0..0);
            src.error(span, &key, inner.message().trim_end())
        })?;

        let export_root = match &raw.export.root {
            None => PathBuf::from(frames::DEFAULT_ROOT),
            Some(s) if !Path::new(s.get_ref()).is_absolute() => {
                return Err(src.error(
                    s.span(),
                    "export.root",
                    format!("{:?} is not an absolute path", s.get_ref()),
                ))
            }
            Some(s) => PathBuf::from(s.get_ref()),
        };
        let events = EventsConfig {
            socket: match &raw.events.socket {
                None => PathBuf::from("/run/vas/ruth-events.sock"),
                Some(s) => src.socket_path(s, "events.socket")?,
            },
            stdout: raw.events.stdout.unwrap_or(true),
        };
        let status = StatusConfig {
            socket: match &raw.status.socket {
                None => PathBuf::from("/run/vas/ruth-status.sock"),
                Some(s) => src.socket_path(s, "status.socket")?,
            },
        };
        if events.socket == status.socket {
            let span = raw.status.socket.as_ref().map_or(0..0, |s| s.span());
            return Err(src.error(
                span,
                "status.socket",
                "the status socket and the events socket must differ",
            ));
        }

        let models = resolve_models(&src, &raw.model)?;
        let subscriptions = resolve_subscriptions(&src, &raw.subscription, &models)?;
        Ok(Config {
            file: file.to_path_buf(),
            export_root,
            events,
            status,
            models,
            subscriptions,
        })
    }
}

fn resolve_models(src: &Source, raw: &[raw::Model]) -> Result<Vec<ModelConfig>> {
    let mut seen = BTreeSet::new();
    let mut models = Vec::with_capacity(raw.len());
    for (i, m) in raw.iter().enumerate() {
        let key = |k: &str| format!("model[{i}].{k}");
        let id = m.id.get_ref();
        if !is_valid_id(id) {
            return Err(src.error(
                m.id.span(),
                &key("id"),
                format!(
                    "{id:?} is not a valid model id: use 1 to 64 characters from a-z, 0-9, '_' and '-'"
                ),
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(src.error(
                m.id.span(),
                &key("id"),
                format!("model id {id:?} is used twice: ids must be unique"),
            ));
        }
        let ms = |v: &Option<Spanned<i64>>, k: &str, min, max, default: u64| -> Result<Duration> {
            Ok(Duration::from_millis(match v {
                None => default,
                Some(v) => src.int_in(v, &key(k), min, max, "milliseconds")?,
            }))
        };
        models.push(ModelConfig {
            id: id.clone(),
            socket: src.socket_path(&m.socket, &key("socket"))?,
            deadline: ms(&m.deadline_ms, "deadline_ms", 10, 600_000, 2000)?,
            max_reply_bytes: match &m.max_reply_bytes {
                None => vas_model::protocol::DEFAULT_MAX_REPLY_BYTES,
                Some(v) => {
                    src.int_in(v, &key("max_reply_bytes"), 1024, 64 << 20, "bytes")? as usize
                }
            },
            reconnect: ms(&m.reconnect_ms, "reconnect_ms", 100, 600_000, 1000)?,
        });
    }
    Ok(models)
}

fn resolve_subscriptions(
    src: &Source,
    raw: &[raw::Subscription],
    models: &[ModelConfig],
) -> Result<Vec<SubscriptionConfig>> {
    let mut seen = BTreeSet::new();
    let mut subs = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let key = |k: &str| format!("subscription[{i}].{k}");
        let camera = s.camera.get_ref();
        if !is_valid_id(camera) {
            return Err(src.error(
                s.camera.span(),
                &key("camera"),
                format!(
                    "{camera:?} is not a valid camera id: use the id of the camera in vas.toml \
                     (1 to 64 characters from a-z, 0-9, '_' and '-')"
                ),
            ));
        }
        let model_id = s.model.get_ref();
        let Some(model) = models.iter().find(|m| &m.id == model_id) else {
            let known: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
            return Err(src.error(
                s.model.span(),
                &key("model"),
                format!("no [[model]] has the id {model_id:?}: define it or use one of {known:?}"),
            ));
        };
        let fps_value = *s.fps.get_ref();
        let fps = Fps::new(fps_value).ok_or_else(|| {
            src.error(
                s.fps.span(),
                &key("fps"),
                format!(
                    "{fps_value} is out of range: fps is a maximum frame rate above 0 (at least \
                     0.001) and at most {MAX_FPS}"
                ),
            )
        })?;
        if !seen.insert((camera.clone(), model_id.clone())) {
            return Err(src.error(
                s.model.span(),
                &key("model"),
                format!(
                    "camera {camera:?} is subscribed to model {model_id:?} twice: one \
                     subscription per camera and model"
                ),
            ));
        }
        subs.push(SubscriptionConfig {
            camera: camera.clone(),
            model: model.clone(),
            fps,
        });
    }
    Ok(subs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("ruth.toml"), text)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const MODEL: &str = "[[model]]\nid = \"motion\"\nsocket = \"/run/vas/motion.sock\"\n";

    #[test]
    fn defaults() {
        let c = parse(&format!(
            "{MODEL}[[subscription]]\ncamera = \"front\"\nmodel = \"motion\"\nfps = 5\n"
        ))
        .unwrap();
        assert_eq!(c.export_root, PathBuf::from("/dev/shm/vas"));
        assert_eq!(c.events.socket, PathBuf::from("/run/vas/ruth-events.sock"));
        assert!(c.events.stdout);
        assert_eq!(c.status.socket, PathBuf::from("/run/vas/ruth-status.sock"));
        let m = &c.models[0];
        assert_eq!(m.deadline, Duration::from_secs(2));
        assert_eq!(m.max_reply_bytes, 1 << 20);
        assert_eq!(m.reconnect, Duration::from_secs(1));
        let s = &c.subscriptions[0];
        assert_eq!(
            (s.name(), s.fps.as_f64()),
            ("front/motion".to_string(), 5.0)
        );
        assert_eq!(s.model, *m);
    }

    #[test]
    fn fps_takes_integers_and_fractions() {
        for (text, want) in [("5", 5.0), ("12.5", 12.5), ("240", 240.0), ("0.5", 0.5)] {
            let c = parse(&format!(
                "{MODEL}[[subscription]]\ncamera = \"a\"\nmodel = \"motion\"\nfps = {text}\n"
            ))
            .unwrap();
            assert_eq!(c.subscriptions[0].fps.as_f64(), want, "{text}");
        }
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let sub = |body: &str| format!("{MODEL}[[subscription]]\n{body}");
        // (config text, expected substring of the error)
        let table: Vec<(String, &str)> = vec![
            (
                sub("camera = \"a\"\nmodel = \"motion\"\nfps = 0\n"),
                "ruth.toml:7:7: subscription[0].fps: 0 is out of range: fps is a maximum frame \
                 rate above 0",
            ),
            (
                sub("camera = \"a\"\nmodel = \"motion\"\nfps = 241\n"),
                "ruth.toml:7:7: subscription[0].fps: 241 is out of range",
            ),
            (
                sub("camera = \"a\"\nmodel = \"motion\"\nfps = -3\n"),
                "ruth.toml:7:7: subscription[0].fps: -3 is out of range",
            ),
            (
                sub("camera = \"a\"\nmodel = \"motion\"\nfps = \"fast\"\n"),
                "ruth.toml:7:7: subscription[0].fps: invalid type: string \"fast\", expected f64",
            ),
            (
                sub("camera = \"a\"\nmodel = \"motion\"\n"),
                "subscription[0]: missing field `fps`",
            ),
            (
                sub("camera = \"a\"\nmodel = \"motoin\"\nfps = 5\n"),
                "ruth.toml:6:9: subscription[0].model: no [[model]] has the id \"motoin\": define \
                 it or use one of [\"motion\"]",
            ),
            (
                sub("camera = \"Front\"\nmodel = \"motion\"\nfps = 5\n"),
                "ruth.toml:5:10: subscription[0].camera: \"Front\" is not a valid camera id",
            ),
            (
                sub("camera = \"a\"\nmodel = \"motion\"\nfps = 5\nfsp = 3\n"),
                "ruth.toml:8:1: subscription[0].fsp: unknown field `fsp`",
            ),
            (
                format!(
                    "{}[[subscription]]\ncamera = \"a\"\nmodel = \"motion\"\nfps = 1\n",
                    sub("camera = \"a\"\nmodel = \"motion\"\nfps = 5\n")
                ),
                "ruth.toml:10:9: subscription[1].model: camera \"a\" is subscribed to model \
                 \"motion\" twice",
            ),
            (
                format!("{MODEL}{MODEL}"),
                "ruth.toml:5:6: model[1].id: model id \"motion\" is used twice",
            ),
            (
                "[[model]]\nid = \"m\"\nsocket = \"m.sock\"\n".into(),
                "ruth.toml:3:10: model[0].socket: \"m.sock\" is not an absolute path",
            ),
            (
                format!("[[model]]\nid = \"m\"\nsocket = \"/{}\"\n", "s".repeat(120)),
                "model[0].socket: the path is 121 bytes, a Unix socket path holds at most 107",
            ),
            ("[[model]]\nid = \"m\"\n".into(), "model[0]: missing field `socket`"),
            (
                format!("{MODEL}deadline_ms = 5\n"),
                "ruth.toml:4:15: model[0].deadline_ms: 5 is out of range: use 10 to 600000 \
                 milliseconds",
            ),
            (
                format!("{MODEL}max_reply_bytes = 100\n"),
                "model[0].max_reply_bytes: 100 is out of range: use 1024 to 67108864 bytes",
            ),
            (
                format!("{MODEL}reconnect_ms = 0\n"),
                "model[0].reconnect_ms: 0 is out of range",
            ),
            (
                "[[model]]\nid = \"Motion!\"\nsocket = \"/m.sock\"\n".into(),
                "ruth.toml:2:6: model[0].id: \"Motion!\" is not a valid model id",
            ),
            ("[export]\nroot = \"shm\"\n".into(), "ruth.toml:2:8: export.root: \"shm\" is not an absolute path"),
            ("[exprot]\nroot = \"/x\"\n".into(), "ruth.toml:1:2: exprot: unknown field `exprot`"),
            ("[events]\nstdout = \"yes\"\n".into(), "ruth.toml:2:10: events.stdout: invalid type: string"),
            (
                "[events]\nsocket = \"/run/x.sock\"\n[status]\nsocket = \"/run/x.sock\"\n".into(),
                "ruth.toml:4:10: status.socket: the status socket and the events socket must differ",
            ),
            ("[[subscription]\n".into(), "ruth.toml:1:"),
        ];
        for (text, want) in &table {
            let got = err(text);
            assert!(
                got.contains(want),
                "config:\n{text}\nwant: {want}\ngot:  {got}"
            );
        }
    }

    /// The keys each table accepts, as serde lists them when it meets an unknown one.
    fn accepted_keys(table_header: &str, prefix: &str) -> Vec<String> {
        let text = match table_header {
            "" => "zz_unknown = 1\n".to_string(),
            h => format!("{h}\nzz_unknown = 1\n"),
        };
        let e = err(&text);
        let listed = e
            .split("expected one of ")
            .nth(1)
            .or_else(|| e.split("expected ").nth(1))
            .unwrap_or_else(|| panic!("no key list in {e}"));
        // serde lists "`a`", "`a` or `b`", or "one of `a`, `b`, `c`".
        listed
            .split(", ")
            .flat_map(|k| k.split(" or "))
            .map(|k| format!("{prefix}{}", k.trim().trim_matches('`')))
            .collect()
    }

    /// The keys ruth.toml(5) documents: `.B key` right after `.TP`, under `.SH [table]`.
    fn documented_keys() -> BTreeSet<String> {
        let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../man/ruth.toml.5");
        let text = std::fs::read_to_string(&page).unwrap();
        let mut keys = BTreeSet::new();
        let mut section = String::new();
        let mut after_tp = false;
        for line in text.lines() {
            if let Some(h) = line.strip_prefix(".SH ") {
                section = h.trim_matches('"').to_string();
            } else if after_tp {
                if let Some(k) = line.strip_prefix(".B ") {
                    let prefix = match section.as_str() {
                        "[export]" => "export.",
                        "[events]" => "events.",
                        "[status]" => "status.",
                        "[[model]]" => "model.",
                        "[[subscription]]" => "subscription.",
                        _ => "",
                    };
                    if !prefix.is_empty() {
                        keys.insert(format!("{prefix}{}", k.replace("\\_", "_")));
                    }
                }
            }
            after_tp = line == ".TP";
        }
        keys
    }

    #[test]
    fn every_accepted_key_is_documented_and_the_reverse() {
        let mut code = BTreeSet::new();
        for (header, prefix) in [
            ("[export]", "export."),
            ("[events]", "events."),
            ("[status]", "status."),
            ("[[model]]\nid = \"m\"\nsocket = \"/m.sock\"", "model."),
            (
                "[[subscription]]\ncamera = \"a\"\nmodel = \"m\"\nfps = 1",
                "subscription.",
            ),
        ] {
            code.extend(accepted_keys(header, prefix));
        }
        // The top-level tables themselves.
        let tables: BTreeSet<String> = accepted_keys("", "").into_iter().collect();
        assert_eq!(
            tables,
            ["events", "export", "model", "status", "subscription"]
                .map(String::from)
                .into()
        );
        let documented = documented_keys();
        assert_eq!(
            code, documented,
            "keys the code accepts (left) and keys ruth.toml.5 documents (right) differ"
        );
    }

    #[test]
    fn shipped_default_config_is_valid_and_documented() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/vas/ruth.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        Config::parse(&path, &text).unwrap();
        // Every key it shows, active or commented out, is one the code accepts.
        let documented = documented_keys();
        let mut section = String::new();
        for line in text.lines() {
            let line = line.trim_start_matches('#').trim();
            if line.starts_with('[') {
                section = line.trim_matches(|c| c == '[' || c == ']').to_string();
            } else if let Some((key, _)) = line.split_once(" = ") {
                if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    let full = format!("{section}.{key}");
                    assert!(documented.contains(&full), "{full} in etc/vas/ruth.toml");
                }
            }
        }
    }
}
