//! systemd readiness of the real vasd and ruth: a datagram socket of our own stands in for
//! systemd's (NOTIFY_SOCKET) and receives READY=1 once the config is set up, RELOADING=1 then
//! READY=1 around each SIGHUP (also one that is refused), and STOPPING=1 at SIGTERM, in that
//! order and nothing else.

mod daemon;
mod ruth_support;
mod support;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use daemon::{camera, Vasd};
use ruth_support::{ExportRoot, ModelProcess, Ruth, RuthConfig};
use support::RtspServer;

/// Generous: a notification follows a config load and a few thread starts.
const T: Duration = Duration::from_secs(20);

/// What systemd would listen on.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket.set_read_timeout(Some(T)).unwrap();
        NotifySocket {
            socket,
            path,
            _dir: dir,
        }
    }

    fn env(&self) -> (&'static str, &str) {
        ("NOTIFY_SOCKET", self.path.to_str().unwrap())
    }

    /// The next notification, one entry per `KEY=value` line.
    fn next(&self, after: &str) -> Vec<String> {
        let mut buf = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no notification within {T:?} after {after}: {e}"));
        String::from_utf8(buf[..n].to_vec())
            .expect("UTF-8 notification")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Nothing more arrives within `wait`.
    fn assert_quiet(&self, wait: Duration) {
        self.socket.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 4096];
        if let Ok(n) = self.socket.recv(&mut buf) {
            panic!(
                "unexpected notification: {:?}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
        self.socket.set_read_timeout(Some(T)).unwrap();
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock of MONOTONIC_USEC.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// A RELOADING notification: RELOADING=1, a STATUS, and MONOTONIC_USEC from between `from`
/// and now (what `Type=notify-reload` matches it with).
fn assert_reloading(message: &[String], from: u64) {
    assert_eq!(
        message[..2],
        ["RELOADING=1", "STATUS=reloading"],
        "{message:?}"
    );
    let usec: u64 = message
        .iter()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {message:?}"))
        .parse()
        .expect("MONOTONIC_USEC is a number");
    assert!(
        (from..=monotonic_usec()).contains(&usec),
        "MONOTONIC_USEC={usec} is not from the reload"
    );
}

#[test]
fn vasd_notifies_ready_reloading_and_stopping() {
    let server = RtspServer::start(&[("a", "cam720.mp4"), ("b", "cam720.mp4")]);
    let notify = NotifySocket::bind();
    let mut v = Vasd::start_with_env(&camera("a", &server.url("a")), &[notify.env()]);
    let api = format!("api on 127.0.0.1:{}", v.port);

    let ready = notify.next("start");
    assert_eq!(
        ready,
        ["READY=1".to_string(), format!("STATUS=1 camera(s), {api}")]
    );
    // Ready means configured: the camera is on the board, its thread running.
    assert!(v.camera("a").is_some(), "{:?}", v.cameras());

    // (config written before SIGHUP, the STATUS of the READY that ends the reload, cameras
    // on the board after it)
    let reloads = [
        (
            camera("a", &server.url("a")) + &camera("b", &server.url("b")),
            format!("STATUS=2 camera(s), {api}"),
            vec!["a", "b"],
        ),
        (
            "[[camera]]\nid = \"Bad Id\"\n".to_string(),
            format!("STATUS=2 camera(s), {api}; the last reload was refused, see the log"),
            vec!["a", "b"],
        ),
        (
            camera("b", &server.url("b")),
            format!("STATUS=1 camera(s), {api}"),
            vec!["b"],
        ),
    ];
    for (config, status, cameras) in reloads {
        v.write_config(&config);
        let from = monotonic_usec();
        v.signal(libc::SIGHUP);
        assert_reloading(&notify.next("SIGHUP"), from);
        assert_eq!(notify.next("RELOADING"), ["READY=1".to_string(), status]);
        let on_board: Vec<String> = v.cameras().keys().cloned().collect();
        assert_eq!(on_board, cameras);
    }

    v.signal(libc::SIGTERM);
    assert_eq!(notify.next("SIGTERM"), ["STOPPING=1", "STATUS=stopping"]);
    let (_, status) = v.terminate(T);
    assert!(status.success(), "{status}");
    notify.assert_quiet(Duration::from_millis(200));
}

#[test]
fn ruth_notifies_ready_reloading_and_stopping() {
    let root = ExportRoot::new();
    let models = tempfile::tempdir().unwrap();
    let socket = models.path().join("m.sock");
    let _model = ModelProcess::rust(&socket, &[]);
    let notify = NotifySocket::bind();
    let one = RuthConfig::default()
        .model("m", &socket, "")
        .subscribe("a", "m", "5");
    let mut ruth = Ruth::start_with_env(&root.path, &one, &[notify.env()]);
    let events = ruth.events_socket().display().to_string();

    let ready = notify.next("start");
    assert_eq!(
        ready,
        [
            "READY=1".to_string(),
            format!("STATUS=1 subscription(s) to 1 model(s), events on {events}")
        ]
    );
    // Ready means configured: the agent runs and the subscription has reached its model.
    assert!(ruth.agent("a").is_some(), "{}", ruth.status());
    assert_eq!(ruth.subscription("a", "m")["state"], "up");

    let two = RuthConfig::default()
        .model("m", &socket, "")
        .subscribe("a", "m", "5")
        .subscribe("b", "m", "5");
    ruth.write_config(&two);
    let from = monotonic_usec();
    ruth.signal(libc::SIGHUP);
    assert_reloading(&notify.next("SIGHUP"), from);
    assert_eq!(
        notify.next("RELOADING"),
        [
            "READY=1".to_string(),
            format!("STATUS=2 subscription(s) to 1 model(s), events on {events}")
        ]
    );
    assert_eq!(ruth.subscription("b", "m")["state"], "up");

    std::fs::write(ruth.config_path(), "[[subscription]]\ncamera = 5\n").unwrap();
    let from = monotonic_usec();
    ruth.signal(libc::SIGHUP);
    assert_reloading(&notify.next("SIGHUP"), from);
    assert_eq!(
        notify.next("RELOADING"),
        [
            "READY=1".to_string(),
            format!(
                "STATUS=2 subscription(s) to 1 model(s), events on {events}; \
                 the last reload was refused, see the log"
            )
        ]
    );

    ruth.signal(libc::SIGTERM);
    assert_eq!(notify.next("SIGTERM"), ["STOPPING=1", "STATUS=stopping"]);
    let (_, status) = ruth.terminate(T);
    assert!(status.success(), "{status}");
    notify.assert_quiet(Duration::from_millis(200));
}
