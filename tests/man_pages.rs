//! Every page in man/ renders cleanly with man-db, at the 80 columns lintian uses: no warning
//! from groff or tbl, and the page title exactly twice, as the header on the first line and
//! the footer on the last.
//!
//! A `.TH` inside a page is taken by the man macros as a new title: a `.TS H` ... `.TH`
//! table header did that in vas-frames(7), which printed a `()` title in the middle of the
//! page and a `()` footer at its end, without a single warning. So the title lines are
//! checked as well as stderr.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The pages, sorted: every file of man/ named like `name.N`.
fn pages() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.len() == 1 && e.as_bytes()[0].is_ascii_digit())
        })
        .collect();
    pages.sort();
    pages
}

/// The arguments of a request line such as `.TH VAS-FRAMES 7 "2026-12-01" "VAS 0.1.0"`, with
/// double-quoted arguments unquoted.
fn request_args(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            args.push(quoted[..end].to_string());
            rest = quoted.get(end + 1..).unwrap_or("").trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            args.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    args
}

/// What is wrong with the rendering of a page whose `.TH` gives `title` (`VAS-FRAMES(7)`)
/// and `date`: one message per problem, empty when it is clean.
fn title_problems(rendered: &str, title: &str, date: &str) -> Vec<String> {
    let lines: Vec<(usize, &str)> = rendered
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let mut problems = Vec::new();
    let (Some(&(_, header)), Some(&(_, footer))) = (lines.first(), lines.last()) else {
        return vec!["renders to nothing".into()];
    };
    if !(header.starts_with(title) && header.ends_with(title)) {
        problems.push(format!(
            "the first line is not the header {title}: {header:?}"
        ));
    }
    if !(footer.ends_with(title) && footer.contains(date)) {
        problems.push(format!(
            "the last line is not the footer with {date} and {title}: {footer:?}"
        ));
    }
    for &(number, line) in &lines[1..lines.len() - 1] {
        // An empty title renders as "()" at both ends of the line; a repeated header or
        // footer is the real one printed again.
        let empty_title = line.split_whitespace().all(|word| word == "()");
        if empty_title || line == header || line == footer {
            problems.push(format!("line {number} is a stray title line: {line:?}"));
        }
    }
    problems
}

#[test]
fn title_check_table() {
    let title = "VAS-FRAMES(7)";
    let date = "2026-12-01";
    let header = "VAS-FRAMES(7)      VAS Manual      VAS-FRAMES(7)";
    let footer = "VAS 0.1.0          2026-12-01      VAS-FRAMES(7)";
    // (rendered page, number of problems)
    let table = [
        (format!("{header}\n\nNAME\n  text\n\n{footer}\n"), 0),
        (format!("{header}\nNAME\n  a()\n{footer}\n"), 0),
        (format!("{header}\n  ()        ()\n  text\n{footer}\n"), 1),
        (format!("{header}\n  text\n      ()\n"), 1),
        (format!("{header}\n  text\n{header}\n  text\n{footer}\n"), 1),
        (format!("{header}\n  text\n{footer}\n  text\n{footer}\n"), 1),
        (
            format!("{header}\n  text\nVAS 0.1.0   2025-11-25   VAS-FRAMES(7)\n"),
            1,
        ),
        ("".to_string(), 1),
    ];
    for (rendered, expected) in table {
        let problems = title_problems(&rendered, title, date);
        assert_eq!(problems.len(), expected, "{rendered:?}: {problems:?}");
    }
    assert_eq!(
        request_args(r#".TH VAS-FRAMES 7 "2026-12-01" "VAS 0.1.0" "VAS Manual""#),
        [
            ".TH",
            "VAS-FRAMES",
            "7",
            "2026-12-01",
            "VAS 0.1.0",
            "VAS Manual"
        ]
    );
}

/// `MANWIDTH=80 man -l --warnings=w PAGE`: nothing on stderr, and the title only where it
/// belongs.
#[test]
fn every_man_page_renders_without_warnings_or_stray_titles() {
    if Command::new("man").arg("--version").output().is_err() {
        eprintln!("skipped: man is not installed (apt install man-db groff-base)");
        return;
    }
    let pages = pages();
    assert!(pages.len() >= 7, "man/ has only {pages:?}");
    let mut failures = Vec::new();
    for page in &pages {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(page).unwrap();
        let th: Vec<&str> = source.lines().filter(|l| l.starts_with(".TH")).collect();
        if th.len() != 1 {
            // Rendered all the same, to show what the extra ones do.
            failures.push(format!("{name}: {} .TH lines, not one: {th:?}", th.len()));
        }
        let args = request_args(th.first().copied().unwrap_or(""));
        let (Some(title), Some(section), Some(date)) = (args.get(1), args.get(2), args.get(3))
        else {
            failures.push(format!("{name}: a .TH without title, section and date"));
            continue;
        };
        let out = Command::new("man")
            .arg("-l")
            .arg("--warnings=w")
            .arg(page)
            .env("MANWIDTH", "80")
            .env("LC_ALL", "C.UTF-8")
            // man-db drops the formatter's stderr unless told to keep it.
            .env("MAN_KEEP_STDERR", "1")
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!("{name}: man exited with {}", out.status));
        }
        let warnings = String::from_utf8_lossy(&out.stderr);
        if !warnings.trim().is_empty() {
            failures.push(format!("{name}: warnings:\n{warnings}"));
        }
        let rendered = String::from_utf8_lossy(&out.stdout);
        if rendered.len() < 1000 {
            failures.push(format!("{name}: renders to almost nothing"));
        }
        let title = format!("{title}({section})");
        for problem in title_problems(&rendered, &title, date) {
            failures.push(format!("{name}: {problem}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
