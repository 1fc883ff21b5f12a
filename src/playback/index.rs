//! The recordings index: every camera's segments, in memory, built at start from the files
//! and kept current by the recorders (a segment opens, grows, closes) and the janitor (a
//! segment goes). Nothing is stored elsewhere: a restart or a crash rebuilds it from the
//! files, whose names carry the UTC start and whose `moov` and `mfra` give the rest.
//!
//! Reading one segment costs four small reads (`ftyp`+`moov`, `mfro`, `mfra`, the last
//! `moof`); see `benches/playback.py` for 10^5 segments.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use super::mp4::{self, Init};

/// Temporary name of a segment being written; the recorder renames it when it closes.
pub const PART_SUFFIX: &str = ".part";

/// Two segments closer than this are one continuous span (a segment ends at the key frame
/// the next one starts with; what is left is the rounding of the wall clock).
pub const SPAN_GAP_MS: i64 = 1000;

/// What is known of a segment's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Media {
    pub duration_ms: u64,
    /// `Init::setup`: segments with the same value can be played as one stream.
    pub setup: u64,
}

/// How far a segment being written has reached, told by its recorder.
#[derive(Debug, Default)]
pub struct Progress {
    /// Milliseconds from the segment's start to its last complete fragment.
    durable_ms: AtomicU64,
    bytes: AtomicU64,
}

impl Progress {
    pub fn advance(&self, durable_ms: u64, bytes: u64) {
        // Relaxed: figures for listings; the file itself is read with its own length.
        self.durable_ms.store(durable_ms, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone)]
struct Entry {
    start_ms: i64,
    bytes: u64,
    /// `None`: not a segment vasd can play (foreign or damaged); retention still sees it.
    media: Option<Media>,
    /// Set while the segment is being written (its file is then `<path>.part`).
    open: Option<Arc<Progress>>,
}

/// One segment as the API sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub path: PathBuf,
    pub start_ms: i64,
    pub duration_ms: u64,
    pub bytes: u64,
    pub setup: u64,
    pub open: bool,
}

impl Segment {
    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.duration_ms as i64
    }

    /// The file to read now: the temporary name while the segment is written.
    pub fn file(&self) -> PathBuf {
        if self.open {
            part_of(&self.path)
        } else {
            self.path.clone()
        }
    }
}

/// A finished segment on disk, as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub camera: String,
    pub path: PathBuf,
    /// UTC start time from the file name, seconds since the epoch.
    pub start_unix_s: i64,
    pub bytes: u64,
}

type Cameras = BTreeMap<String, BTreeMap<PathBuf, Entry>>;

/// Shared by the recorders, the janitor and the API.
#[derive(Clone, Default)]
pub struct Index {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    dir: PathBuf,
    cameras: Cameras,
}

impl Index {
    /// Reads every segment under `dir` (`<camera>/<YYYY-MM-DD>/<name>.mp4`).
    pub fn build(dir: &Path) -> Index {
        let index = Index::default();
        index.rebuild(dir);
        index
    }

    /// Forgets everything and reads `dir` again (at start, and when `[record] dir` changes).
    pub fn rebuild(&self, dir: &Path) {
        let started = Instant::now();
        let cameras = scan(dir);
        let count: usize = cameras.values().map(BTreeMap::len).sum();
        let unreadable = cameras
            .values()
            .flat_map(BTreeMap::values)
            .filter(|e| e.media.is_none())
            .count();
        log::info!(
            target: "vasd",
            "recordings index: {count} segment(s) of {} camera(s) in {} read in {} ms{}",
            cameras.len(),
            dir.display(),
            started.elapsed().as_millis(),
            if unreadable > 0 {
                format!("; {unreadable} file(s) are not playable segments")
            } else {
                String::new()
            }
        );
        let mut inner = self.write();
        inner.dir = dir.to_path_buf();
        inner.cameras = cameras;
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn dir(&self) -> PathBuf {
        self.read().dir.clone()
    }

    /// A recorder started `path` (written as `<path>.part`) at `start_ms`; `setup` is
    /// `setup_of` its header.
    pub fn opened(
        &self,
        camera: &str,
        path: &Path,
        start_ms: i64,
        setup: Option<u64>,
    ) -> Arc<Progress> {
        let progress = Arc::new(Progress::default());
        let entry = Entry {
            start_ms,
            bytes: 0,
            media: setup.map(|setup| Media {
                duration_ms: 0,
                setup,
            }),
            open: Some(progress.clone()),
        };
        self.write()
            .cameras
            .entry(camera.to_string())
            .or_default()
            .insert(path.to_path_buf(), entry);
        progress
    }

    /// A recorder closed `path`: its final figures are read from the file.
    pub fn closed(&self, camera: &str, path: &Path) {
        let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        let media = probe(path);
        let mut inner = self.write();
        if let Some(e) = inner.cameras.get_mut(camera).and_then(|c| c.get_mut(path)) {
            e.open = None;
            e.bytes = bytes;
            e.media = media;
        }
    }

    /// A segment left no file (nothing of it reached the disk), or the janitor deleted it.
    pub fn removed(&self, camera: &str, path: &Path) {
        let mut inner = self.write();
        if let Some(c) = inner.cameras.get_mut(camera) {
            c.remove(path);
            if c.is_empty() {
                inner.cameras.remove(camera);
            }
        }
    }

    /// The finished segments, for retention.
    pub fn files(&self) -> Vec<SegmentFile> {
        let inner = self.read();
        let mut out = Vec::new();
        for (camera, entries) in &inner.cameras {
            for (path, e) in entries.iter().filter(|(_, e)| e.open.is_none()) {
                out.push(SegmentFile {
                    camera: camera.clone(),
                    path: path.clone(),
                    start_unix_s: e.start_ms.div_euclid(1000),
                    bytes: e.bytes,
                });
            }
        }
        out
    }

    pub fn cameras(&self) -> Vec<String> {
        self.read().cameras.keys().cloned().collect()
    }

    /// The playable segments of `camera`, oldest first; `None` for a camera with none on disk.
    pub fn segments(&self, camera: &str) -> Option<Vec<Segment>> {
        let inner = self.read();
        let entries = inner.cameras.get(camera)?;
        let mut out: Vec<Segment> = entries
            .iter()
            .filter_map(|(path, e)| {
                let media = e.media?;
                let (duration_ms, bytes) = match &e.open {
                    Some(p) => (
                        p.durable_ms.load(Ordering::Relaxed),
                        p.bytes.load(Ordering::Relaxed),
                    ),
                    None => (media.duration_ms, e.bytes),
                };
                Some(Segment {
                    path: path.clone(),
                    start_ms: e.start_ms,
                    duration_ms,
                    bytes,
                    setup: media.setup,
                    open: e.open.is_some(),
                })
            })
            .filter(|s| s.duration_ms > 0)
            .collect();
        out.sort_by(|a, b| (a.start_ms, &a.path).cmp(&(b.start_ms, &b.path)));
        Some(out)
    }
}

/// Continuous recording: segments that follow each other without a gap and with the same
/// setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub segments: Vec<Segment>,
}

impl Span {
    pub fn start_ms(&self) -> i64 {
        self.segments[0].start_ms
    }

    pub fn end_ms(&self) -> i64 {
        self.segments[self.segments.len() - 1].end_ms()
    }

    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    pub fn recording(&self) -> bool {
        self.segments.last().is_some_and(|s| s.open)
    }
}

/// Groups sorted segments into spans.
pub fn spans(segments: Vec<Segment>) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for s in segments {
        if let Some(last) = out.last_mut() {
            let prev = &last.segments[last.segments.len() - 1];
            let gap = s.start_ms - prev.end_ms();
            if gap.abs() < SPAN_GAP_MS && s.setup == prev.setup {
                last.segments.push(s);
                continue;
            }
        }
        out.push(Span { segments: vec![s] });
    }
    out
}

/// The temporary name of `path` while it is written.
pub fn part_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(PART_SUFFIX);
    PathBuf::from(s)
}

fn scan(dir: &Path) -> Cameras {
    let mut out = Cameras::new();
    let Ok(cameras) = std::fs::read_dir(dir) else {
        return out;
    };
    for cam in cameras.flatten() {
        let camera = cam.file_name().to_string_lossy().into_owned();
        let Ok(days) = std::fs::read_dir(cam.path()) else {
            continue;
        };
        let mut entries = BTreeMap::new();
        for day in days.flatten() {
            let Ok(files) = std::fs::read_dir(day.path()) else {
                continue;
            };
            let day_name = day.file_name().to_string_lossy().into_owned();
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                let Some(start_ms) = start_time_ms(&day_name, &name) else {
                    continue;
                };
                let path = f.path();
                let (bytes, media) = match File::open(&path) {
                    Ok(file) => {
                        let len = file.metadata().map_or(0, |m| m.len());
                        (len, probe_file(&file, len).ok())
                    }
                    Err(_) => (0, None),
                };
                entries.insert(
                    path,
                    Entry {
                        start_ms,
                        bytes,
                        media,
                        open: None,
                    },
                );
            }
        }
        if !entries.is_empty() {
            out.insert(camera, entries);
        }
    }
    out
}

/// The setup digest of a segment's header (`Init::setup`), read from the file.
pub fn setup_of(path: &Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    Init::read(&file, len).ok().map(|i| i.setup)
}

/// Duration and setup of a closed segment; `None` when it is not one vasd can play.
pub fn probe(path: &Path) -> Option<Media> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    probe_file(&file, len).ok()
}

fn probe_file(file: &File, len: u64) -> mp4::Result<Media> {
    let init = Init::read(file, len)?;
    let video = init
        .video()
        .cloned()
        .ok_or_else(|| mp4::Mp4Error("no video".into()))?;
    let fragments = match mp4::fragments_from_mfra(file, len, video.id)? {
        Some(f) => f,
        None => mp4::fragments_by_walking(file, len, &init, usize::MAX)?,
    };
    let Some(last) = fragments.last() else {
        return Ok(Media {
            duration_ms: 0,
            setup: init.setup,
        });
    };
    let first = fragments[0].video_time;
    let (_, _, size) = mp4::top_box_at(file, last.offset, len)?
        .ok_or_else(|| mp4::Mp4Error("the last fragment is cut short".into()))?;
    let moof = mp4::read_moof(file, last.offset, size)?;
    let frag = mp4::Fragment::parse(&moof, &init)?;
    let last_len = frag
        .tracks
        .iter()
        .find(|t| t.track == video.id)
        .map_or(0, |t| t.duration());
    let ticks = (last.video_time + last_len).saturating_sub(first);
    Ok(Media {
        duration_ms: ticks * 1000 / u64::from(video.timescale),
        setup: init.setup,
    })
}

/// Start time in Unix milliseconds of a segment from its day directory and file name
/// (`HH-MM-SS[.mmm][-n].mp4`, as `record::segment::segment_path` writes them; names without
/// milliseconds are those of older versions); `None` if the file is not a segment.
pub fn start_time_ms(day: &str, file: &str) -> Option<i64> {
    let stem = file.strip_suffix(".mp4")?;
    let hms = stem.get(..8)?;
    let mut rest = &stem[8..];
    let mut ms = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.get(..3)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        ms = digits.parse::<i64>().ok()?;
        rest = &r[3..];
    }
    if !(rest.is_empty() || rest.strip_prefix('-')?.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let num = |s: &str| s.parse::<u32>().ok();
    let d: Vec<&str> = day.split('-').collect();
    let t: Vec<&str> = hms.split('-').collect();
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    let month = time::Month::try_from(num(d[1])? as u8).ok()?;
    let date = time::Date::from_calendar_date(num(d[0])? as i32, month, num(d[2])? as u8).ok()?;
    let tod = time::Time::from_hms(num(t[0])? as u8, num(t[1])? as u8, num(t[2])? as u8).ok()?;
    Some(date.with_time(tod).assume_utc().unix_timestamp() * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_to_utc_start_times() {
        // (day dir, file, start) ; 2026-11-25 00:00:00 UTC = 1795564800
        let day = 1_795_564_800_000i64;
        let t = day + (17 * 3600 + 4 * 60 + 9) * 1000;
        let table = [
            ("2026-11-25", "00-00-00.mp4", Some(day)),
            ("2026-11-25", "17-04-09.mp4", Some(t)),
            ("2026-11-25", "17-04-09-2.mp4", Some(t)),
            ("2026-11-25", "17-04-09.250.mp4", Some(t + 250)),
            ("2026-11-25", "17-04-09.250-1.mp4", Some(t + 250)),
            ("2026-11-25", "17-04-09.25.mp4", None),
            ("2026-11-25", "17-04-09.2x0.mp4", None),
            ("2026-11-25", "17-04-09.mp4.part", None),
            ("2026-11-25", "notes.txt", None),
            ("2026-11-25", "17-04-09-x.mp4", None),
            ("2026-13-25", "00-00-00.mp4", None),
            ("2026-11-25", "25-00-00.mp4", None),
        ];
        for (day, file, want) in table {
            assert_eq!(start_time_ms(day, file), want, "{day}/{file}");
        }
    }

    fn seg(start_ms: i64, duration_ms: u64, setup: u64) -> Segment {
        Segment {
            path: PathBuf::from(format!("/r/c/{start_ms}.mp4")),
            start_ms,
            duration_ms,
            bytes: 10,
            setup,
            open: false,
        }
    }

    #[test]
    fn spans_merge_adjacent_segments_of_one_setup() {
        let segments = vec![
            seg(0, 10_000, 1),
            seg(10_040, 10_000, 1), // 40 ms of clock rounding: same span
            seg(20_000, 5_000, 1),  // 40 ms overlap: same span
            seg(27_000, 5_000, 1),  // 2 s gap: a new span
            seg(32_000, 5_000, 2),  // new setup (resolution change): a new span
        ];
        let got: Vec<(i64, i64, usize)> = spans(segments)
            .iter()
            .map(|s| (s.start_ms(), s.end_ms(), s.segments.len()))
            .collect();
        assert_eq!(
            got,
            vec![(0, 25_000, 3), (27_000, 32_000, 1), (32_000, 37_000, 1)]
        );
    }
}
