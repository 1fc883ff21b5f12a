//! The replies thread: polls the connection of every subscription that is up, reads what
//! the models answer, turns results into events, and marks down a subscription whose request
//! outlives the model's deadline. One thread for all models: it only ever does non-blocking
//! reads, so a model that floods, hangs or dies holds up nobody.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::registry::Board;
use crate::waker::Waker;

/// Longest sleep with nothing in flight and no subscription at all.
const IDLE_WAIT: Duration = Duration::from_secs(1);

pub fn spawn(board: Arc<Board>, waker: Arc<Waker>) -> Result<()> {
    std::thread::Builder::new()
        .name("replies".into())
        .spawn(move || run(&board, &waker))
        .map(|_| ())
        .map_err(|e| Error::Io {
            what: "starting the replies thread".into(),
            source: e,
        })
}

fn run(board: &Board, waker: &Waker) -> ! {
    let mut fds: Vec<libc::pollfd> = Vec::new();
    loop {
        let now = Instant::now();
        let subs = board.subscriptions();
        fds.clear();
        fds.push(pollfd(waker.raw_fd()));
        let mut owners = Vec::with_capacity(subs.len());
        // Sleep no longer than the shortest model deadline even with nothing in flight: a
        // request dispatched after this scan then has its deadline no earlier than the wake
        // (dispatch + its deadline >= now + the shortest), so no agent needs to wake us for
        // a new request; only a new connection or a reload does (through the waker).
        let mut wake_at = now
            + subs
                .iter()
                .map(|s| s.model.deadline)
                .min()
                .unwrap_or(IDLE_WAIT);
        for sub in &subs {
            let (fd, deadline) = sub.poll_entry(now);
            if let Some((fd, epoch)) = fd {
                fds.push(pollfd(fd));
                owners.push((sub, epoch));
            }
            if let Some(d) = deadline {
                wake_at = wake_at.min(d);
            }
        }
        // Round up, so we never wake just before a deadline and spin.
        let timeout_ms = wake_at
            .saturating_duration_since(now)
            .as_micros()
            .div_ceil(1000)
            .min(i32::MAX as u128) as i32;
        // SAFETY: fds is a live array of fds.len() pollfd structures.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n <= 0 {
            continue; // timeout (deadlines are checked at the next scan) or EINTR
        }
        if fds[0].revents != 0 {
            waker.drain();
        }
        let now = Instant::now();
        for (pfd, (sub, epoch)) in fds[1..].iter().zip(&owners) {
            if pfd.revents == 0 {
                continue;
            }
            // A bug while handling one model's reply must not end the thread for all.
            match catch_unwind(AssertUnwindSafe(|| sub.on_readable(*epoch, now))) {
                Ok(events) => {
                    for line in events {
                        board.events.publish(&line);
                    }
                }
                Err(_) => log::error!(target: &sub.name, "panic while reading a reply"),
            }
        }
    }
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}
