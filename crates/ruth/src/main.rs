//! ruth: the Ruth AI Core. Reads the frames vasd exports to shared memory, decides per
//! subscription which frame goes to which model and when (at most `fps` a second, by the
//! frames' timestamps), sends each model a reference to the frame over its Unix socket, and
//! turns the models' results into events. It never decodes, copies, stores, queues or
//! retries a frame: it is a control plane, not a video pipeline.
//!
//! Threads: `main` (signals, reloads), `agent-<camera>` (one per subscribed camera, blocked on
//! the export's futex), `replies` (reads model replies, enforces deadlines), `events` and
//! `stdout` (event subscribers and standard output), `status` (the status socket). systemd
//! hears when ruth is ready, reloading and stopping (see `notify`).

mod agent;
mod config;
mod error;
mod events;
mod gate;
mod line_buffer;
mod link;
// The same readiness calls as vasd's (sd_notify), one file for both daemons.
#[path = "../../../src/notify.rs"]
mod notify;
mod rate;
mod registry;
mod replies;
mod socket_file;
mod status;
mod subscription;
mod waker;
mod wall_time;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::Config;
use crate::error::Error;
use crate::registry::{Board, Registry};
use crate::socket_file::SocketFile;

#[derive(Parser)]
#[command(
    version,
    about = "Ruth AI Core: routes exported camera frames to local models at a maximum FPS and emits their results"
)]
struct Args {
    /// Config file.
    #[arg(long, short, default_value = config::DEFAULT_PATH, global = true)]
    config: PathBuf,

    /// Validate FILE and exit: 0 if valid, 1 with the error otherwise.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,

    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info", env = "RUTH_LOG")]
    log_level: log::LevelFilter,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Show the agents, subscriptions and models of the running ruth.
    Status {
        /// Print the status document as JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// The status socket; default: [status] socket of the config file.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(file) = &args.check_config {
        return check_config(file);
    }
    if let Some(Command::Status { json, socket }) = &args.command {
        return show_status(&args.config, socket.as_deref(), *json);
    }
    init_logging(args.log_level);
    match run(&args.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!(target: "ruth", "{e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(c) => {
            let cameras: std::collections::BTreeSet<&str> =
                c.subscriptions.iter().map(|s| s.camera.as_str()).collect();
            println!(
                "{}: ok ({} model(s), {} subscription(s) on {} camera(s))",
                file.display(),
                c.models.len(),
                c.subscriptions.len(),
                cameras.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn show_status(config: &Path, socket: Option<&Path>, json: bool) -> ExitCode {
    let socket = match socket {
        Some(s) => s.to_path_buf(),
        None => match Config::load(config) {
            Ok(c) => c.status.socket,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match status::fetch(&socket) {
        Ok(v) if json => {
            println!("{v:#}");
            ExitCode::SUCCESS
        }
        Ok(v) => {
            print!("{}", status::render(&v));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The time on every log line: RFC 3339 in UTC (simplelog's default offset) with always six
/// digits of microseconds, "2026-12-01T03:05:02.945920Z", like the events' `time`; simplelog's
/// own rfc3339 drops trailing zeros ("03:05:02.94592Z"). vasd's main.rs sets the same format
/// for its own logger.
const LOG_TIME_FORMAT: time::format_description::StaticFormatDescription = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

fn init_logging(level: log::LevelFilter) {
    let config = simplelog::ConfigBuilder::new()
        // Show the target on every line: agent-<camera>, <camera>/<model>, events, ruth.
        .set_target_level(log::LevelFilter::Error)
        .set_location_level(log::LevelFilter::Off)
        .set_thread_level(log::LevelFilter::Off)
        .set_time_format_custom(LOG_TIME_FORMAT)
        .build();
    let _ = simplelog::TermLogger::init(
        level,
        config,
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Never,
    );
}

fn run(config_path: &Path) -> error::Result<()> {
    let config = Config::load(config_path)?;
    // Registered before any thread starts, so none of them inherits default handling.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(|e| Error::Io {
        what: "installing signal handlers".into(),
        source: e,
    })?;
    warn_about_test_hook();

    let events = events::Events::start(&config.events)?;
    let (status_listener, status_socket) =
        SocketFile::bind(&config.status.socket).inspect_err(|_| events.remove_socket())?;
    let waker = Arc::new(waker::Waker::new().map_err(|e| Error::Io {
        what: "creating an eventfd".into(),
        source: e,
    })?);
    let board = Arc::new(Board::new(&config, events.clone()));
    status::serve(board.clone(), status_listener)?;
    replies::spawn(board.clone(), waker.clone())?;
    let mut registry = Registry::new(board.clone(), waker);
    let plan = registry.apply(&config);
    log::info!(
        target: "ruth",
        "{} subscription(s) from {}, export root {}, events on {}, status on {}",
        plan.add.len(),
        config_path.display(),
        config.export_root.display(),
        config.events.socket.display(),
        config.status.socket.display()
    );

    // Ready means configured: the sockets serve, every agent runs and every subscription has
    // tried its model once. A model that is down is not waited for: ruth reconnects by itself.
    notify::ready(&status_line(&config));

    let mut current = config;
    for signal in signals.forever() {
        match signal {
            SIGHUP => {
                notify::reloading();
                let refused = match reload(config_path, &current, &mut registry) {
                    Some(new) => {
                        current = new;
                        false
                    }
                    None => true,
                };
                notify::reloaded(&status_line(&current), refused);
            }
            _ => {
                log::info!(target: "ruth", "stopping on signal {signal}");
                notify::stopping();
                break;
            }
        }
    }
    // Exit at once: nothing is buffered that must be drained, and no agent or model is
    // waited for. Only the socket files are removed.
    events.remove_socket();
    status_socket.remove();
    std::process::exit(0);
}

/// The one-line STATUS systemd shows for the running config.
fn status_line(config: &Config) -> String {
    format!(
        "{} subscription(s) to {} model(s), events on {}",
        config.subscriptions.len(),
        config.models.len(),
        config.events.socket.display()
    )
}

/// Applies a changed config and returns it; one that does not validate leaves everything as
/// it is and returns `None`.
fn reload(path: &Path, current: &Config, registry: &mut Registry) -> Option<Config> {
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            log::error!(target: "ruth", "reload refused, keeping the running config: {e}");
            return None;
        }
    };
    if new.export_root != current.export_root
        || new.events != current.events
        || new.status != current.status
    {
        log::warn!(
            target: "ruth",
            "[export], [events] and [status] changes take effect at the next start, not on reload"
        );
    }
    let plan = registry.apply(&new);
    registry.count_reload();
    log::info!(
        target: "ruth",
        "reloaded: added {:?}, removed {:?}, fps changed {:?}, unchanged {}",
        plan.add,
        plan.remove,
        plan.retune,
        plan.keep
    );
    Some(Config {
        export_root: current.export_root.clone(),
        events: current.events.clone(),
        status: current.status.clone(),
        ..new
    })
}

/// The agent panic hook exists only in debug builds; say so when it is asked for.
fn warn_about_test_hook() {
    if let Ok(camera) = std::env::var(agent::TEST_PANIC_ENV) {
        if cfg!(debug_assertions) {
            log::warn!(
                target: "ruth",
                "{}={camera}: the agent of camera '{camera}' will panic at its first frame (test hook)",
                agent::TEST_PANIC_ENV
            );
        } else {
            log::warn!(
                target: "ruth",
                "{} is ignored: the test hook exists only in debug builds",
                agent::TEST_PANIC_ENV
            );
        }
    }
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
