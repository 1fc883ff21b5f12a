//! A clip: the fragments of one span from the key frame at or before a start time, for a
//! duration, with a timeline starting at zero. It is served either as a fragmented MP4 (the
//! first segment's `ftyp`+`moov`, then each `moof`+`mdat` with its decode times shifted) or
//! as a progressive MP4 (sample tables built from the `moof`s, then one `mdat` holding the
//! fragments' data in the same order). Either way the media bytes are copied from the
//! segment files a piece at a time: memory stays bounded whatever the clip's length.

use std::fs::File;
use std::io::Read;

use super::index::Segment;
use super::mp4::{self, put_box, put_full_box, Fragment, Init, Mp4Error};

/// Bytes copied from a segment file per read.
const COPY_CHUNK: usize = 256 * 1024;

/// Where a clip starts and ends, resolved against the span's segments.
pub struct Clip {
    segments: Vec<Segment>,
    /// The first segment: its header and the fragment the clip starts with.
    init: Init,
    first_offset: u64,
    first_origin: u64,
    /// Wall time of the clip's first frame.
    pub start_ms: i64,
    /// The clip ends before the first fragment at or after this (output video ticks).
    end_ticks: u64,
}

fn open(segment: &Segment) -> mp4::Result<(File, u64)> {
    let path = segment.file();
    // A segment listed while open may have been closed (renamed) since.
    let file = File::open(&path)
        .or_else(|e| {
            if segment.open {
                File::open(&segment.path)
            } else {
                Err(e)
            }
        })
        .map_err(|e| Mp4Error(format!("{}: {e}", path.display())))?;
    let len = file.metadata()?.len();
    Ok((file, len))
}

impl Clip {
    /// `segments` are one span's, oldest first, the first holding `start_ms`.
    pub fn new(segments: Vec<Segment>, start_ms: i64, duration_ms: u64) -> mp4::Result<Clip> {
        let first = segments
            .first()
            .ok_or_else(|| Mp4Error("no segment".into()))?;
        let (file, len) = open(first)?;
        let init = Init::read(&file, len)?;
        let video = init
            .video()
            .cloned()
            .ok_or_else(|| Mp4Error("no video".into()))?;
        let fragments = match (first.open, mp4::fragments_from_mfra(&file, len, video.id)?) {
            (false, Some(f)) => f,
            _ => mp4::fragments_by_walking(&file, len, &init, usize::MAX)?,
        };
        let zero = fragments
            .first()
            .ok_or_else(|| Mp4Error("a segment without fragments".into()))?
            .video_time;
        let ts = u64::from(video.timescale);
        let want = (start_ms - first.start_ms).max(0) as u64 * ts / 1000 + zero;
        let chosen = fragments
            .iter()
            .rev()
            .find(|f| f.video_time <= want)
            .unwrap_or(&fragments[0]);
        let clip_start_ms = first.start_ms + ((chosen.video_time - zero) * 1000 / ts) as i64;
        let end_ms = start_ms + duration_ms as i64;
        let end_ticks = (end_ms - clip_start_ms).max(1) as u64 * ts / 1000;
        Ok(Clip {
            first_offset: chosen.offset,
            first_origin: chosen.video_time,
            start_ms: clip_start_ms,
            end_ticks,
            init,
            segments,
        })
    }

    fn walker(&self) -> Walker {
        Walker {
            init: self.init.clone(),
            segments: self.segments.clone(),
            next_segment: 0,
            part: None,
            first: Some((self.first_offset, self.first_origin)),
            out_video: 0,
            track_end: std::collections::BTreeMap::new(),
            sequence: 0,
            end_ticks: self.end_ticks,
            done: false,
        }
    }

    /// The clip as a fragmented MP4; its length is not known in advance.
    pub fn fragmented(&self) -> Body {
        Body {
            pending: self.init.bytes.clone(),
            pending_at: 0,
            copy: None,
            source: Source::Fragmented(Box::new(self.walker())),
        }
    }

    /// The clip as a progressive MP4 (`moov` first) and its exact length. The `moof`s are
    /// read first (two small reads per fragment) to build the sample tables.
    pub fn progressive(&self) -> mp4::Result<(Body, u64)> {
        let mut walker = self.walker();
        let mut tables: Vec<Tables> = self
            .init
            .tracks
            .iter()
            .map(|t| Tables::new(t.id, t.timescale))
            .collect();
        let mut pieces = Vec::new();
        let mut payload = 0u64;
        while let Some(item) = walker.next_fragment()? {
            for t in &item.fragment.tracks {
                let Some(table) = tables.iter_mut().find(|x| x.track == t.track) else {
                    continue;
                };
                table.start_run(item.out_times[&t.track]);
                for run in &t.runs {
                    let at = run
                        .data
                        .checked_sub(item.moof_len + item.mdat_header)
                        .ok_or_else(|| Mp4Error("sample data before its mdat".into()))?;
                    let bytes: u64 = run.samples.iter().map(|s| u64::from(s.size)).sum();
                    if at + bytes > item.payload_len {
                        return Err(Mp4Error("sample data past its mdat".into()));
                    }
                    table.add_chunk(payload + at, &run.samples);
                }
            }
            pieces.push((item.file.clone(), item.payload_offset, item.payload_len));
            payload += item.payload_len;
        }
        tables.retain(|t| !t.sizes.is_empty());
        if !tables
            .iter()
            .any(|t| t.track == self.init.video().map_or(0, |v| v.id))
        {
            return Err(Mp4Error("no video in the clip".into()));
        }
        let ftyp = ftyp();
        let probe = progressive_moov(&self.init, &tables, 0)?;
        let base = (ftyp.len() + probe.len() + 16) as u64;
        let moov = progressive_moov(&self.init, &tables, base)?;
        let mut head = ftyp;
        head.extend_from_slice(&moov);
        head.extend_from_slice(&1u32.to_be_bytes());
        head.extend_from_slice(b"mdat");
        head.extend_from_slice(&(16 + payload).to_be_bytes());
        let total = head.len() as u64 + payload;
        Ok((
            Body {
                pending: head,
                pending_at: 0,
                copy: None,
                source: Source::Pieces(pieces.into_iter()),
            },
            total,
        ))
    }
}

/// The segment being read.
struct Part {
    file: std::sync::Arc<File>,
    len: u64,
    init: Init,
    offset: u64,
    /// Source video time that maps to `base` in the output.
    origin: u64,
    base: u64,
}

/// One fragment ready to send.
struct Item {
    /// The `moof` with its times rewritten, and the header of its `mdat`.
    head: Vec<u8>,
    fragment: Fragment,
    out_times: std::collections::BTreeMap<u32, u64>,
    moof_len: u64,
    mdat_header: u64,
    file: std::sync::Arc<File>,
    payload_offset: u64,
    payload_len: u64,
}

/// Walks the clip's fragments across its segments.
struct Walker {
    init: Init,
    segments: Vec<Segment>,
    next_segment: usize,
    part: Option<Part>,
    first: Option<(u64, u64)>,
    /// Output video time reached: the end of the last fragment sent.
    out_video: u64,
    /// Per track, the output decode time reached.
    track_end: std::collections::BTreeMap<u32, u64>,
    sequence: u32,
    end_ticks: u64,
    done: bool,
}

impl Walker {
    fn open_next(&mut self) -> mp4::Result<bool> {
        let Some(segment) = self.segments.get(self.next_segment) else {
            return Ok(false);
        };
        self.next_segment += 1;
        let (file, len) = match open(segment) {
            Ok(x) => x,
            // Deleted by retention since the clip was planned: the clip ends here.
            Err(_) => return Ok(false),
        };
        let init = Init::read(&file, len)?;
        if init.setup != self.init.setup {
            return Ok(false);
        }
        let (offset, origin) = match self.first.take() {
            Some(x) => x,
            None => {
                let Some(first) = mp4::fragments_by_walking(&file, len, &init, 1)?.pop() else {
                    return Ok(false);
                };
                (first.offset, first.video_time)
            }
        };
        self.part = Some(Part {
            file: std::sync::Arc::new(file),
            len,
            init,
            offset,
            origin,
            base: self.out_video,
        });
        Ok(true)
    }

    fn next_fragment(&mut self) -> mp4::Result<Option<Item>> {
        while !self.done {
            if self.part.is_none() && !self.open_next()? {
                self.done = true;
                break;
            }
            let part = self.part.as_mut().expect("opened above");
            let Some((kind, _, size)) = mp4::top_box_at(&part.file, part.offset, part.len)? else {
                self.part = None;
                continue;
            };
            let at = part.offset;
            part.offset += size;
            if &kind != b"moof" {
                continue;
            }
            let Some((mdat_kind, mdat_header, mdat_size)) =
                mp4::top_box_at(&part.file, part.offset, part.len)?
            else {
                // A fragment whose data is not all written yet.
                self.part = None;
                continue;
            };
            if &mdat_kind != b"mdat" {
                return Err(Mp4Error(format!("moof at {at} not followed by mdat")));
            }
            let payload_offset = part.offset + mdat_header;
            part.offset += mdat_size;
            let mut moof = mp4::read_moof(&part.file, at, size)?;
            let fragment = Fragment::parse(&moof, &part.init)?;
            let video = part
                .init
                .video()
                .cloned()
                .ok_or_else(|| Mp4Error("no video".into()))?;
            // Where the fragment starts on the video clock. A fragment may hold audio only
            // (the audio after a segment's last frame, as some muxers write it): it is sent
            // too, placed by its audio time.
            let scale_of =
                |track: u32| part.init.track(track).map_or(1, |x| u64::from(x.timescale));
            let vts = u64::from(video.timescale);
            let vt = fragment.tracks.iter().find(|t| t.track == video.id);
            let Some(first) = vt.or(fragment.tracks.first()) else {
                continue;
            };
            let in_start = first.base_time * vts / scale_of(first.track);
            let out_start = in_start.saturating_sub(part.origin) + part.base;
            if out_start >= self.end_ticks {
                self.done = true;
                break;
            }
            let (origin, base) = (part.origin, part.base);
            let mut out_times = std::collections::BTreeMap::new();
            for t in &fragment.tracks {
                let scale = scale_of(t.track);
                let rescale = |v: u64| v * scale / vts;
                let mapped = (t.base_time + rescale(base)).saturating_sub(rescale(origin));
                // Never before the end of the track's previous fragment: with B-frames,
                // FFmpeg writes a segment's first fragment at 0 and the later ones earlier by
                // the first frame's composition offset, so the first two overlap; players
                // then drop a frame there.
                let end = self.track_end.entry(t.track).or_insert(0);
                let out = mapped.max(*end);
                *end = out + t.duration();
                out_times.insert(t.track, out);
            }
            self.sequence += 1;
            mp4::patch_fragment(&mut moof, &fragment, self.sequence, |track, _| {
                out_times[&track]
            })?;
            if let Some(end) = self.track_end.get(&video.id) {
                self.out_video = self.out_video.max(*end);
            }
            let payload_len = mdat_size - mdat_header;
            let mut head = moof;
            let moof_len = head.len() as u64;
            head.extend_from_slice(&((8 + payload_len) as u32).to_be_bytes());
            head.extend_from_slice(b"mdat");
            if payload_len + 8 > u64::from(u32::MAX) {
                return Err(Mp4Error("a fragment over 4 GiB".into()));
            }
            return Ok(Some(Item {
                head,
                fragment,
                out_times,
                moof_len,
                mdat_header,
                file: part.file.clone(),
                payload_offset,
                payload_len,
            }));
        }
        Ok(None)
    }
}

enum Source {
    Fragmented(Box<Walker>),
    Pieces(std::vec::IntoIter<(std::sync::Arc<File>, u64, u64)>),
}

/// A clip's bytes, produced as they are read.
pub struct Body {
    pending: Vec<u8>,
    pending_at: usize,
    copy: Option<(std::sync::Arc<File>, u64, u64)>,
    source: Source,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        loop {
            if self.pending_at < self.pending.len() {
                let n = buf.len().min(self.pending.len() - self.pending_at);
                buf[..n].copy_from_slice(&self.pending[self.pending_at..self.pending_at + n]);
                self.pending_at += n;
                return Ok(n);
            }
            if let Some((file, offset, left)) = self.copy.as_mut() {
                if *left > 0 {
                    let want = buf.len().min(COPY_CHUNK).min(*left as usize);
                    let n = file.read_at(&mut buf[..want], *offset)?;
                    if n == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "a segment file became shorter while it was read",
                        ));
                    }
                    *offset += n as u64;
                    *left -= n as u64;
                    return Ok(n);
                }
                self.copy = None;
            }
            self.pending.clear();
            self.pending_at = 0;
            let next = match &mut self.source {
                Source::Fragmented(w) => match w.next_fragment() {
                    Ok(Some(item)) => {
                        self.pending = item.head;
                        Some((item.file, item.payload_offset, item.payload_len))
                    }
                    Ok(None) => None,
                    Err(e) => return Err(std::io::Error::other(e.0)),
                },
                Source::Pieces(p) => p.next(),
            };
            match next {
                Some(c) => self.copy = Some(c),
                None => return Ok(0),
            }
        }
    }
}

fn ftyp() -> Vec<u8> {
    let mut out = Vec::new();
    put_box(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"isom");
        o.extend_from_slice(&0x200u32.to_be_bytes());
        o.extend_from_slice(b"isomiso2mp41");
    });
    out
}

/// Sample tables of one track of a progressive clip, built fragment by fragment.
struct Tables {
    track: u32,
    timescale: u32,
    sizes: Vec<u32>,
    stts: Vec<(u32, u32)>,
    ctts: Vec<(u32, i32)>,
    sync: Vec<u32>,
    all_sync: bool,
    /// Chunk offsets relative to the start of the `mdat` payload.
    chunks: Vec<u64>,
    stsc: Vec<(u32, u32)>,
    /// Decode time reached (end of the last sample).
    dts: u64,
}

impl Tables {
    fn new(track: u32, timescale: u32) -> Tables {
        Tables {
            track,
            timescale,
            sizes: Vec::new(),
            stts: Vec::new(),
            ctts: Vec::new(),
            sync: Vec::new(),
            all_sync: true,
            chunks: Vec::new(),
            stsc: Vec::new(),
            dts: 0,
        }
    }

    /// A fragment of this track starts at `time`: a gap since the last sample (audio lost at
    /// the queue) is added to that sample's duration, so later samples keep their times.
    fn start_run(&mut self, time: u64) {
        if self.sizes.is_empty() {
            self.dts = time;
            return;
        }
        if time > self.dts {
            let gap = (time - self.dts).min(u64::from(u32::MAX / 2)) as u32;
            if let Some(last) = self.stts.last_mut() {
                let delta = last.1;
                last.0 -= 1;
                if last.0 == 0 {
                    self.stts.pop();
                }
                self.stts.push((1, delta + gap));
            }
            self.dts = time;
        }
    }

    fn add_chunk(&mut self, offset: u64, samples: &[mp4::Sample]) {
        if samples.is_empty() {
            return;
        }
        self.chunks.push(offset);
        let n = samples.len() as u32;
        if self.stsc.last().is_none_or(|&(_, per)| per != n) {
            self.stsc.push((self.chunks.len() as u32, n));
        }
        for s in samples {
            self.sizes.push(s.size);
            match self.stts.last_mut() {
                Some(last) if last.1 == s.duration => last.0 += 1,
                _ => self.stts.push((1, s.duration)),
            }
            match self.ctts.last_mut() {
                Some(last) if last.1 == s.cto => last.0 += 1,
                _ => self.ctts.push((1, s.cto)),
            }
            if s.is_sync() {
                self.sync.push(self.sizes.len() as u32);
            } else {
                self.all_sync = false;
            }
            self.dts += u64::from(s.duration);
        }
    }

    fn duration(&self) -> u64 {
        self.stts
            .iter()
            .map(|&(n, d)| u64::from(n) * u64::from(d))
            .sum()
    }

    fn write_stbl(&self, o: &mut Vec<u8>, stsd: &[u8], base: u64) {
        put_box(o, b"stbl", |o| {
            o.extend_from_slice(stsd);
            put_full_box(o, b"stts", 0, 0, |o| {
                o.extend_from_slice(&(self.stts.len() as u32).to_be_bytes());
                for &(n, d) in &self.stts {
                    o.extend_from_slice(&n.to_be_bytes());
                    o.extend_from_slice(&d.to_be_bytes());
                }
            });
            if self.ctts.iter().any(|&(_, c)| c != 0) {
                let signed = self.ctts.iter().any(|&(_, c)| c < 0);
                put_full_box(o, b"ctts", u8::from(signed), 0, |o| {
                    o.extend_from_slice(&(self.ctts.len() as u32).to_be_bytes());
                    for &(n, c) in &self.ctts {
                        o.extend_from_slice(&n.to_be_bytes());
                        o.extend_from_slice(&c.to_be_bytes());
                    }
                });
            }
            if !self.all_sync {
                put_full_box(o, b"stss", 0, 0, |o| {
                    o.extend_from_slice(&(self.sync.len() as u32).to_be_bytes());
                    for s in &self.sync {
                        o.extend_from_slice(&s.to_be_bytes());
                    }
                });
            }
            put_full_box(o, b"stsc", 0, 0, |o| {
                o.extend_from_slice(&(self.stsc.len() as u32).to_be_bytes());
                for &(first, per) in &self.stsc {
                    o.extend_from_slice(&first.to_be_bytes());
                    o.extend_from_slice(&per.to_be_bytes());
                    o.extend_from_slice(&1u32.to_be_bytes());
                }
            });
            put_full_box(o, b"stsz", 0, 0, |o| {
                o.extend_from_slice(&0u32.to_be_bytes());
                o.extend_from_slice(&(self.sizes.len() as u32).to_be_bytes());
                for s in &self.sizes {
                    o.extend_from_slice(&s.to_be_bytes());
                }
            });
            // 64-bit offsets always: the moov's size then does not depend on where the
            // data lands, which is computed from that size.
            put_full_box(o, b"co64", 0, 0, |o| {
                o.extend_from_slice(&(self.chunks.len() as u32).to_be_bytes());
                for c in &self.chunks {
                    o.extend_from_slice(&(base + c).to_be_bytes());
                }
            });
        });
    }
}

/// Copies `b` with the duration field of a full box (`mvhd`, `mdhd`: after the time scale;
/// `tkhd`: after the track id) set to `duration`.
fn with_duration(buf: &[u8], b: &mp4::BoxRef, duration: u64, tkhd: bool) -> Vec<u8> {
    let mut out = buf[b.start..b.end].to_vec();
    let body = b.body - b.start;
    let v1 = out.get(body) == Some(&1);
    let at = body
        + match (v1, tkhd) {
            (false, false) => 16,
            (true, false) => 24,
            (false, true) => 20,
            (true, true) => 28,
        };
    if v1 && out.len() >= at + 8 {
        out[at..at + 8].copy_from_slice(&duration.to_be_bytes());
    } else if !v1 && out.len() >= at + 4 {
        let d = u32::try_from(duration).unwrap_or(u32::MAX);
        out[at..at + 4].copy_from_slice(&d.to_be_bytes());
    }
    out
}

/// The first segment's `moov` with real sample tables in place of the empty ones, and
/// without `mvex` (a progressive file has no fragments).
fn progressive_moov(init: &Init, tables: &[Tables], base: u64) -> mp4::Result<Vec<u8>> {
    let buf = &init.bytes;
    let top = mp4::children(buf, init.moov, buf.len());
    let moov = top.first().ok_or_else(|| Mp4Error("no moov".into()))?;
    let inner = mp4::children(buf, moov.body, moov.end);
    let mvhd = inner
        .iter()
        .find(|b| &b.kind == b"mvhd")
        .ok_or_else(|| Mp4Error("no mvhd".into()))?;
    let v1 = buf.get(mvhd.body) == Some(&1);
    let ts_at = mvhd.body + if v1 { 20 } else { 12 };
    let movie_scale = u64::from(mp4::be32(
        buf.get(ts_at..ts_at + 4).unwrap_or(&[0, 0, 3, 0xe8]),
    ))
    .max(1);
    let movie = |t: &Tables| t.duration() * movie_scale / u64::from(t.timescale);
    let longest = tables.iter().map(movie).max().unwrap_or(0);
    let mut out = Vec::new();
    put_box(&mut out, b"moov", |o| {
        o.extend_from_slice(&with_duration(buf, mvhd, longest, false));
        for b in &inner {
            if &b.kind != b"trak" {
                continue;
            }
            let t = mp4::children(buf, b.body, b.end);
            let Some(id) = t.iter().find(|x| &x.kind == b"tkhd").and_then(|x| {
                let at = x.body + if buf.get(x.body) == Some(&1) { 20 } else { 12 };
                buf.get(at..at + 4).map(mp4::be32)
            }) else {
                continue;
            };
            let Some(table) = tables.iter().find(|x| x.track == id) else {
                continue;
            };
            put_box(o, b"trak", |o| {
                for x in &t {
                    match &x.kind {
                        b"tkhd" => o.extend_from_slice(&with_duration(buf, x, movie(table), true)),
                        // Edit lists of the fragmented file describe its empty moov.
                        b"edts" => {}
                        b"mdia" => put_box(o, b"mdia", |o| {
                            for m in mp4::children(buf, x.body, x.end) {
                                match &m.kind {
                                    b"mdhd" => o.extend_from_slice(&with_duration(
                                        buf,
                                        &m,
                                        table.duration(),
                                        false,
                                    )),
                                    b"minf" => put_box(o, b"minf", |o| {
                                        for n in mp4::children(buf, m.body, m.end) {
                                            if &n.kind == b"stbl" {
                                                let stsd = mp4::children(buf, n.body, n.end)
                                                    .into_iter()
                                                    .find(|s| &s.kind == b"stsd");
                                                if let Some(s) = stsd {
                                                    table.write_stbl(o, &buf[s.start..s.end], base);
                                                }
                                            } else {
                                                o.extend_from_slice(&buf[n.start..n.end]);
                                            }
                                        }
                                    }),
                                    _ => o.extend_from_slice(&buf[m.start..m.end]),
                                }
                            }
                        }),
                        _ => o.extend_from_slice(&buf[x.start..x.end]),
                    }
                }
            });
        }
    });
    Ok(out)
}
