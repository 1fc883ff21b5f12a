//! vasd: the VAS daemon. Reads `vas.toml`, runs one thread per camera, serves the API, and
//! reacts to signals: SIGTERM/SIGINT stop, SIGHUP reloads the config as a diff. Tells systemd
//! when it is ready, reloading and stopping (see `notify`).

mod api;
mod audio;
mod bitstream;
mod camera;
mod config;
mod error;
mod export;
mod live;
mod notify;
mod playback;
mod record;
mod stop;
mod supervisor;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use clap::Parser;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::Config;
use crate::supervisor::Supervisor;

#[derive(Parser)]
#[command(
    version,
    about = "VAS video analytics daemon: RTSP ingest, recording, live view, frame export"
)]
struct Args {
    /// Config file.
    #[arg(long, short, default_value = config::DEFAULT_PATH)]
    config: PathBuf,

    /// Validate FILE and exit: 0 if valid, 1 with the error otherwise.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,

    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info", env = "VAS_LOG")]
    log_level: log::LevelFilter,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(file) = &args.check_config {
        return check_config(file);
    }
    init_logging(args.log_level);
    match run(&args.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!(target: "vasd", "{e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(c) => {
            println!(
                "{}: ok ({} camera(s), export {})",
                file.display(),
                c.cameras.len(),
                if c.export.enabled { "on" } else { "off" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The time on every log line: RFC 3339 in UTC (simplelog's default offset) with always six
/// digits of microseconds, "2026-12-01T03:05:02.945920Z", so the lines keep their columns;
/// simplelog's own rfc3339 drops trailing zeros ("03:05:02.94592Z"). ruth's main.rs sets the
/// same format for its own logger.
const LOG_TIME_FORMAT: time::format_description::StaticFormatDescription = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

fn init_logging(level: log::LevelFilter) {
    let config = |filter: &mut dyn FnMut(&mut simplelog::ConfigBuilder)| {
        let mut b = simplelog::ConfigBuilder::new();
        // Show the target (cam-<id>, api, vasd) on every line: it names the camera.
        b.set_target_level(log::LevelFilter::Error)
            .set_location_level(log::LevelFilter::Off)
            .set_thread_level(log::LevelFilter::Off)
            .set_time_format_custom(LOG_TIME_FORMAT);
        filter(&mut b);
        b.build()
    };
    let term = |level, config| {
        simplelog::TermLogger::new(
            level,
            config,
            simplelog::TerminalMode::Stderr,
            simplelog::ColorChoice::Never,
        ) as Box<dyn simplelog::SharedLogger>
    };
    // mediasoup logs every RTP packet it is handed at debug level: its own lines are kept to
    // warnings and errors whatever --log-level says.
    let _ = simplelog::CombinedLogger::init(vec![
        term(
            level,
            config(&mut |b| {
                b.add_filter_ignore_str("mediasoup");
            }),
        ),
        term(
            level.min(log::LevelFilter::Warn),
            config(&mut |b| {
                b.add_filter_allow_str("mediasoup");
            }),
        ),
    ]);
}

fn run(config_path: &Path) -> error::Result<()> {
    let config = Config::load(config_path)?;
    ffmpeg_next::init().map_err(|e| error::Error::Io {
        what: "initialising FFmpeg".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    // FFmpeg's own warnings go to our log at debug level, redacted and under the camera's
    // name; failures reach the log through the error values.
    camera::ffmpeg_log::install();

    // Register signals before starting threads so none of them inherits default handling
    // while we are still setting up.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(|e| error::Error::Io {
        what: "installing signal handlers".into(),
        source: e,
    })?;

    let board = Arc::new(RwLock::new(BTreeMap::new()));
    // Always started (one idle thread): a reload may turn the live view on for a camera. The
    // mediasoup worker itself starts with the first live camera.
    let live = live::Live::start(&config.live).map_err(|e| error::Error::Io {
        what: "starting the live thread".into(),
        source: e,
    })?;
    let recorders = record::Recorders::start(&config.record).map_err(|e| error::Error::Io {
        what: "starting the recording janitor".into(),
        source: e,
    })?;
    let api = api::Api::start(
        config.server.listen,
        config.server.token.clone(),
        board.clone(),
        vec![
            live.routes(),
            Arc::new(playback::PlaybackRoutes::new(recorders.index())),
        ],
    )?;
    log::info!(
        target: "vasd",
        "{} camera(s) from {}, export {}, api on http://{}",
        config.cameras.len(),
        config_path.display(),
        if config.export.enabled { "on" } else { "off" },
        api.addr
    );

    let record_settings = recorders.settings();
    let consumers: Vec<Box<dyn supervisor::Consumer>> = vec![Box::new(recorders), live.consumer()];
    let mut supervisor = Supervisor::new(board, consumers);
    supervisor.apply(&config.cameras);
    // Ready means configured: every camera thread runs (connecting or streaming) and the API
    // answers. Waiting for the cameras to stream would hold the start hostage to a camera that
    // is down, which vasd handles by itself.
    notify::ready(&status_line(&config, api.addr));
    let mut current = config;

    for signal in signals.forever() {
        match signal {
            SIGHUP => {
                notify::reloading();
                let refused = match reload(config_path, &current, &mut supervisor, &record_settings)
                {
                    Some(new) => {
                        current = new;
                        false
                    }
                    None => true,
                };
                notify::reloaded(&status_line(&current, api.addr), refused);
            }
            _ => {
                log::info!(target: "vasd", "stopping on signal {signal}");
                notify::stopping();
                break;
            }
        }
    }
    supervisor.shutdown();
    api.stop();
    live.stop();
    log::info!(target: "vasd", "stopped");
    Ok(())
}

/// The one-line STATUS systemd shows for the running config.
fn status_line(config: &Config, api: SocketAddr) -> String {
    format!("{} camera(s), api on {api}", config.cameras.len())
}

/// Applies a changed config and returns it; a config that does not validate leaves everything
/// as it is and returns `None`.
fn reload(
    path: &Path,
    current: &Config,
    supervisor: &mut Supervisor,
    record: &record::RecordSettings,
) -> Option<Config> {
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            log::error!(target: "vasd", "reload refused, keeping the running config: {e}");
            return None;
        }
    };
    if new.server != current.server {
        log::warn!(
            target: "vasd",
            "[server] changes take effect at the next start, not on reload"
        );
    }
    if new.live != current.live {
        log::warn!(
            target: "vasd",
            "[live] changes take effect at the next start, not on reload"
        );
    }
    record.update(&new.record);
    let plan = supervisor.apply(&new.cameras);
    log::info!(
        target: "vasd",
        "reloaded: started {:?}, stopped {:?}, restarted {:?}, unchanged {}",
        plan.start,
        plan.stop,
        plan.restart,
        plan.keep.len()
    );
    Some(Config {
        server: current.server.clone(),
        live: current.live.clone(),
        ..new
    })
}

#[cfg(test)]
mod tests {
    use super::LOG_TIME_FORMAT;
    use time::macros::datetime;

    #[test]
    fn log_times_have_a_fixed_width() {
        // (time, as logged): trailing zeros stay, nanoseconds are cut, not rounded.
        let table = [
            (
                datetime!(2026-12-01 03:05:02.945920 UTC),
                "2026-12-01T03:05:02.945920Z",
            ),
            (
                datetime!(2026-12-01 03:05:02 UTC),
                "2026-12-01T03:05:02.000000Z",
            ),
            (
                datetime!(2026-01-09 23:59:59.000001999 UTC),
                "2026-01-09T23:59:59.000001Z",
            ),
        ];
        for (at, text) in table {
            assert_eq!(at.format(LOG_TIME_FORMAT).unwrap(), text);
        }
    }
}
