//! Readiness for systemd (`sd_notify(3)`), so a `Type=notify` unit is started only once the
//! config is set up (vasd: its cameras; ruth, which includes this file too: its agents and
//! subscriptions), and a `Type=notify-reload` one knows when a reload is done. Every call does
//! nothing when `NOTIFY_SOCKET` is unset (not started by systemd).

use sd_notify::NotifyState;

/// Set up (at start, or after a reload): READY=1 and a one-line STATUS for `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A SIGHUP reload begins: RELOADING=1 with MONOTONIC_USEC, which `Type=notify-reload`
/// (systemd 253) requires to tell this reload from an earlier one.
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading, NotifyState::Status("reloading")];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// A reload ended: READY=1 again, with `status` of the running config, which says so when the
/// new file was refused (the old config still runs).
pub fn reloaded(status: &str, refused: bool) {
    if refused {
        ready(&format!(
            "{status}; the last reload was refused, see the log"
        ));
    } else {
        ready(status);
    }
}

/// A stop begins: STOPPING=1, so systemd waits for the exit instead of calling it a crash.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState]) {
    // A failed notification is logged, never fatal: under systemd the unit's start or reload
    // timeout reports it, and outside systemd there is no socket to fail on.
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("cannot notify systemd (NOTIFY_SOCKET): {e}");
    }
}
