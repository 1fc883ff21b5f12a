//! The ruth command line without a running system: --check-config, status of a ruth that
//! is not running, a start refused for a bad config or a busy socket. The man pages are
//! checked for every page at once in tests/man_pages.rs of the workspace root.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;

fn ruth() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ruth"));
    cmd.env_remove("RUTH_LOG");
    cmd
}

const GOOD: &str = "[[model]]\nid = \"motion\"\nsocket = \"/run/vas/motion.sock\"\n\
                    [[subscription]]\ncamera = \"front\"\nmodel = \"motion\"\nfps = 5\n\
                    [[subscription]]\ncamera = \"yard\"\nmodel = \"motion\"\nfps = 2.5\n";

#[test]
fn check_config_exits_zero_or_one_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, GOOD).unwrap();
    let out = ruth().arg("--check-config").arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ok (1 model(s), 2 subscription(s) on 2 camera(s))"),
        "{text}"
    );

    // (config, error on stderr)
    let table = [
        (
            GOOD.replace("fps = 5", "fps = 0"),
            "bad.toml:7:7: subscription[0].fps: 0 is out of range",
        ),
        (
            GOOD.replace("fps = 2.5", "fps = 500"),
            "bad.toml:11:7: subscription[1].fps: 500 is out of range",
        ),
        (
            GOOD.replace("model = \"motion\"\nfps = 5", "model = \"motoin\"\nfps = 5"),
            "bad.toml:6:9: subscription[0].model: no [[model]] has the id \"motoin\"",
        ),
        (
            GOOD.replace("socket", "sockett"),
            "bad.toml:3:1: model[0].sockett: unknown field `sockett`",
        ),
    ];
    for (text, want) in table {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, &text).unwrap();
        let out = ruth().arg("--check-config").arg(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "want {want}\ngot {err}");
    }
    let out = ruth()
        .arg("--check-config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml: cannot read"));
}

#[test]
fn the_shipped_config_checks() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/vas/ruth.toml");
    let out = ruth().arg("--check-config").arg(&shipped).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn status_of_a_ruth_that_is_not_running_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = ruth()
        .args(["status", "--socket"])
        .arg(dir.path().join("status.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is ruth running with this config?"), "{err}");
}

/// A bad config, or an events socket another process listens on, stops ruth at start with
/// status 1 and the reason.
#[test]
fn a_start_that_cannot_work_exits_one_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ruth.toml");
    std::fs::write(
        &config,
        "[[subscription]]\ncamera = \"a\"\nmodel = \"m\"\nfps = 1\n",
    )
    .unwrap();
    let out = ruth().arg("--config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("subscription[0].model: no [[model]] has the id \"m\""),
        "{err}"
    );

    let events = dir.path().join("events.sock");
    let _other = UnixListener::bind(&events).unwrap();
    std::fs::write(
        &config,
        format!(
            "[events]\nsocket = \"{}\"\n[status]\nsocket = \"{}\"\n",
            events.display(),
            dir.path().join("status.sock").display()
        ),
    )
    .unwrap();
    let out = ruth().arg("--config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another process listens on it"), "{err}");
}
