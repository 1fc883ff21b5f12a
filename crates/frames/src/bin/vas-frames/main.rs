//! vas-frames: look at the VAS frame export from a shell.

mod args;
mod rgb;
mod snapshot;
mod stats;

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = match args::parse(&argv) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("vas-frames: {message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let result = match command {
        args::Command::Help => {
            println!("{}", args::USAGE);
            Ok(())
        }
        args::Command::Snapshot {
            root,
            camera,
            output,
            timeout,
        } => snapshot::run(&root, &camera, &output, timeout),
        args::Command::Stats {
            root,
            cameras,
            once,
        } => stats::run(&root, &cameras, once),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("vas-frames: {message}");
            ExitCode::FAILURE
        }
    }
}
