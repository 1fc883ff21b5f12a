//! Command line of vas-frames, parsed by hand (two subcommands do not need a parser crate).

use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage:
  vas-frames snapshot <camera> [--root DIR] [--timeout-ms MS] -o FILE.png
      write the camera's latest frame as an RGB PNG (BT.601 limited range)
  vas-frames stats [--root DIR] [--once] [camera...]
      live table per camera, refreshed every second (all cameras under the root if none
      named); --once measures for one second, prints one table and exits
  vas-frames help

  --root DIR     export root (default /dev/shm/vas, [export] shm_dir in vas.toml)
  --timeout-ms   how long snapshot waits for a first frame (default 5000)

See vas-frames(7) for the shared-memory layout.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Snapshot {
        root: PathBuf,
        camera: String,
        output: PathBuf,
        timeout: Duration,
    },
    Stats {
        root: PathBuf,
        cameras: Vec<String>,
        once: bool,
    },
    Help,
}

/// Parses the arguments after the program name. The error is the message to print above the
/// usage text.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Err("missing subcommand".into());
    };
    let mut root = PathBuf::from(frames::DEFAULT_ROOT);
    let mut output = None;
    let mut timeout = Duration::from_millis(5000);
    let mut once = false;
    let mut positional = Vec::new();
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--root" => root = PathBuf::from(value("--root")?),
            "-o" | "--output" => output = Some(PathBuf::from(value("-o")?)),
            "--timeout-ms" => {
                let ms = value("--timeout-ms")?;
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| format!("--timeout-ms takes milliseconds, not {ms:?}"))?;
                timeout = Duration::from_millis(ms);
            }
            "--once" => once = true,
            "-h" | "--help" => return Ok(Command::Help),
            flag if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("unknown option {flag}"))
            }
            _ => positional.push(arg.clone()),
        }
    }
    match sub.as_str() {
        "snapshot" => {
            let [camera] = positional.as_slice() else {
                return Err("snapshot takes exactly one camera".into());
            };
            let output = output.ok_or("snapshot needs -o FILE.png")?;
            if once {
                return Err("--once belongs to stats".into());
            }
            Ok(Command::Snapshot {
                root,
                camera: camera.clone(),
                output,
                timeout,
            })
        }
        "stats" => {
            if output.is_some() {
                return Err("-o belongs to snapshot".into());
            }
            Ok(Command::Stats {
                root,
                cameras: positional,
                once,
            })
        }
        "help" | "-h" | "--help" => Ok(Command::Help),
        other => Err(format!("unknown subcommand {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parse_table() {
        let default_root = PathBuf::from(frames::DEFAULT_ROOT);
        let table: Vec<(&str, Result<Command, String>)> = vec![
            (
                "snapshot front -o a.png",
                Ok(Command::Snapshot {
                    root: default_root.clone(),
                    camera: "front".into(),
                    output: "a.png".into(),
                    timeout: Duration::from_millis(5000),
                }),
            ),
            (
                "snapshot --root /r front --output b.png --timeout-ms 10",
                Ok(Command::Snapshot {
                    root: "/r".into(),
                    camera: "front".into(),
                    output: "b.png".into(),
                    timeout: Duration::from_millis(10),
                }),
            ),
            (
                "stats",
                Ok(Command::Stats {
                    root: default_root.clone(),
                    cameras: vec![],
                    once: false,
                }),
            ),
            (
                "stats --once a b --root /x",
                Ok(Command::Stats {
                    root: "/x".into(),
                    cameras: vec!["a".into(), "b".into()],
                    once: true,
                }),
            ),
            ("help", Ok(Command::Help)),
            ("stats --help", Ok(Command::Help)),
            ("", Err("missing subcommand".into())),
            ("snapshot front", Err("snapshot needs -o FILE.png".into())),
            (
                "snapshot -o a.png",
                Err("snapshot takes exactly one camera".into()),
            ),
            (
                "snapshot a b -o x",
                Err("snapshot takes exactly one camera".into()),
            ),
            ("stats --root", Err("--root needs a value".into())),
            ("stats --fast", Err("unknown option --fast".into())),
            ("stats -o x", Err("-o belongs to snapshot".into())),
            (
                "frobnicate",
                Err("unknown subcommand \"frobnicate\"".into()),
            ),
            (
                "snapshot a -o x --timeout-ms soon",
                Err("--timeout-ms takes milliseconds, not \"soon\"".into()),
            ),
        ];
        for (line, expected) in table {
            assert_eq!(parse(&args(line)), expected, "{line:?}");
        }
    }
}
