//! Reading our own recordings at the box level: the fragmented MP4 segments `record` writes
//! (FFmpeg's `frag_keyframe+empty_moov+default_base_moof`: `ftyp`, a `moov` without samples,
//! then one `moof`+`mdat` per GOP, and an `mfra` index at the end of a closed file).
//!
//! Playback never decodes or demuxes: it reads the `moov` once, finds fragments through
//! `mfra` (or by walking the top-level boxes of a file still being written), and copies
//! fragments with their decode times shifted. Only the boxes that serve that are parsed.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// A malformed or foreign file: the message says what was wrong and where.
#[derive(Debug)]
pub struct Mp4Error(pub String);

impl std::fmt::Display for Mp4Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for Mp4Error {
    fn from(e: std::io::Error) -> Mp4Error {
        Mp4Error(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Mp4Error>;

fn bad(what: impl Into<String>) -> Mp4Error {
    Mp4Error(what.into())
}

/// One box inside a buffer: its type, where its payload is, and its total size.
#[derive(Debug, Clone, Copy)]
pub struct BoxRef {
    pub kind: [u8; 4],
    /// Offset of the box's first byte.
    pub start: usize,
    /// Offset of the payload (after the 8- or 16-byte header).
    pub body: usize,
    pub end: usize,
}

/// The boxes directly inside `buf[from..to]`. A box that runs past `to` ends the walk.
pub fn children(buf: &[u8], from: usize, to: usize) -> Vec<BoxRef> {
    let mut out = Vec::new();
    let mut at = from;
    while at + 8 <= to {
        let size32 = be32(&buf[at..]) as u64;
        let kind = [buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]];
        let (size, header) = match size32 {
            1 if at + 16 <= to => (be64(&buf[at + 8..]), 16),
            0 => ((to - at) as u64, 8),
            n => (n, 8),
        };
        if size < header as u64 || at as u64 + size > to as u64 {
            break;
        }
        let end = at + size as usize;
        out.push(BoxRef {
            kind,
            start: at,
            body: at + header,
            end,
        });
        at = end;
    }
    out
}

fn child<'a>(boxes: &'a [BoxRef], kind: &[u8; 4]) -> Option<&'a BoxRef> {
    boxes.iter().find(|b| &b.kind == kind)
}

pub fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

pub fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Reads `len` bytes at `offset`, fewer only at the end of the file.
pub fn read_at(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// The header of the top-level box at `offset`: (type, header length, total size).
pub fn top_box_at(file: &File, offset: u64, file_len: u64) -> Result<Option<([u8; 4], u64, u64)>> {
    if offset + 8 > file_len {
        return Ok(None);
    }
    let h = read_at(file, offset, 16)?;
    if h.len() < 8 {
        return Ok(None);
    }
    let kind = [h[4], h[5], h[6], h[7]];
    let (size, header) = match be32(&h) {
        1 if h.len() >= 16 => (be64(&h[8..]), 16),
        0 => (file_len - offset, 8),
        n => (u64::from(n), 8),
    };
    if size < header || offset + size > file_len {
        // A box still being written, or a truncated file: nothing more to read.
        return Ok(None);
    }
    Ok(Some((kind, header, size)))
}

/// What a track of a segment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub id: u32,
    pub video: bool,
    pub timescale: u32,
    /// trex defaults: duration, size, flags.
    pub defaults: (u32, u32, u32),
}

/// The start of a segment: `ftyp` and `moov`, as bytes, and what they say.
#[derive(Debug, Clone)]
pub struct Init {
    /// `ftyp` + `moov` exactly as in the file: the init segment of a fragmented stream.
    pub bytes: Vec<u8>,
    /// Offset of `moov` within `bytes`.
    pub moov: usize,
    /// Where the first fragment starts in the file.
    pub end: u64,
    pub tracks: Vec<Track>,
    /// A digest of every track's sample description and time scale: two segments with the
    /// same setup can be played as one stream.
    pub setup: u64,
}

impl Init {
    pub fn video(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.video)
    }

    pub fn track(&self, id: u32) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }

    pub fn read(file: &File, file_len: u64) -> Result<Init> {
        let mut offset = 0u64;
        let mut moov_at = None;
        while let Some((kind, _, size)) = top_box_at(file, offset, file_len)? {
            match &kind {
                b"ftyp" | b"free" | b"skip" => {}
                b"moov" => {
                    moov_at = Some((offset, size));
                    break;
                }
                _ => return Err(bad("no moov box before the first fragment")),
            }
            offset += size;
        }
        let (moov_offset, moov_size) = moov_at.ok_or_else(|| bad("no moov box"))?;
        if moov_size > 16 << 20 {
            return Err(bad("moov box over 16 MiB: not a segment of ours"));
        }
        let end = moov_offset + moov_size;
        let bytes = read_at(file, 0, end as usize)?;
        if (bytes.len() as u64) < end {
            return Err(bad("file shorter than its moov box"));
        }
        let moov = moov_offset as usize;
        let (tracks, setup) = parse_moov(&bytes, moov)?;
        Ok(Init {
            bytes,
            moov,
            end,
            tracks,
            setup,
        })
    }
}

fn parse_moov(buf: &[u8], moov: usize) -> Result<(Vec<Track>, u64)> {
    use std::hash::{Hash, Hasher};
    let top = children(buf, moov, buf.len());
    let moov_box = top.first().ok_or_else(|| bad("empty moov"))?;
    let inner = children(buf, moov_box.body, moov_box.end);
    let mut defaults = std::collections::BTreeMap::new();
    if let Some(mvex) = child(&inner, b"mvex") {
        for trex in children(buf, mvex.body, mvex.end)
            .iter()
            .filter(|b| &b.kind == b"trex")
        {
            let p = &buf[trex.body..trex.end];
            if p.len() >= 24 {
                defaults.insert(
                    be32(&p[4..]),
                    (be32(&p[12..]), be32(&p[16..]), be32(&p[20..])),
                );
            }
        }
    }
    let mut tracks = Vec::new();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for trak in inner.iter().filter(|b| &b.kind == b"trak") {
        let t = children(buf, trak.body, trak.end);
        let tkhd = child(&t, b"tkhd").ok_or_else(|| bad("trak without tkhd"))?;
        let p = &buf[tkhd.body..tkhd.end];
        let id_at = if p.first() == Some(&1) { 20 } else { 12 };
        if p.len() < id_at + 4 {
            return Err(bad("short tkhd"));
        }
        let id = be32(&p[id_at..]);
        let mdia = child(&t, b"mdia").ok_or_else(|| bad("trak without mdia"))?;
        let m = children(buf, mdia.body, mdia.end);
        let mdhd = child(&m, b"mdhd").ok_or_else(|| bad("mdia without mdhd"))?;
        let p = &buf[mdhd.body..mdhd.end];
        let ts_at = if p.first() == Some(&1) { 20 } else { 12 };
        if p.len() < ts_at + 4 {
            return Err(bad("short mdhd"));
        }
        let timescale = be32(&p[ts_at..]);
        let hdlr = child(&m, b"hdlr").ok_or_else(|| bad("mdia without hdlr"))?;
        let handler = buf.get(hdlr.body + 8..hdlr.body + 12).unwrap_or(&[]);
        let video = handler == b"vide";
        if !video && handler != b"soun" {
            continue;
        }
        let minf = child(&m, b"minf").ok_or_else(|| bad("mdia without minf"))?;
        let stbl = children(buf, minf.body, minf.end)
            .into_iter()
            .find(|b| &b.kind == b"stbl")
            .ok_or_else(|| bad("minf without stbl"))?;
        let stsd = children(buf, stbl.body, stbl.end)
            .into_iter()
            .find(|b| &b.kind == b"stsd")
            .ok_or_else(|| bad("stbl without stsd"))?;
        if timescale == 0 {
            return Err(bad("a track with time scale 0"));
        }
        (video, timescale).hash(&mut hasher);
        buf[stsd.start..stsd.end].hash(&mut hasher);
        tracks.push(Track {
            id,
            video,
            timescale,
            defaults: defaults.get(&id).copied().unwrap_or((0, 0, 0)),
        });
    }
    if !tracks.iter().any(|t| t.video) {
        return Err(bad("no video track"));
    }
    Ok((tracks, hasher.finish()))
}

/// Where a fragment starts in its file, and the decode time of its first video sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentStart {
    pub offset: u64,
    pub video_time: u64,
}

/// The fragments of a closed segment from its `mfra` index, or `None` when it has none (a
/// file still being written, or one a crash left without its trailer).
pub fn fragments_from_mfra(
    file: &File,
    file_len: u64,
    video: u32,
) -> Result<Option<Vec<FragmentStart>>> {
    if file_len < 16 {
        return Ok(None);
    }
    let tail = read_at(file, file_len - 16, 16)?;
    if &tail[4..8] != b"mfro" {
        return Ok(None);
    }
    let size = u64::from(be32(&tail[12..]));
    if size < 16 || size > file_len || size > 64 << 20 {
        return Ok(None);
    }
    let buf = read_at(file, file_len - size, size as usize)?;
    let top = children(&buf, 0, buf.len());
    let Some(mfra) = top.first().filter(|b| &b.kind == b"mfra") else {
        return Ok(None);
    };
    for tfra in children(&buf, mfra.body, mfra.end)
        .iter()
        .filter(|b| &b.kind == b"tfra")
    {
        let p = &buf[tfra.body..tfra.end];
        if p.len() < 16 || be32(&p[4..]) != video {
            continue;
        }
        let v1 = p[0] == 1;
        let sizes = be32(&p[8..]);
        let skip = ((sizes >> 4 & 3) + 1 + (sizes >> 2 & 3) + 1 + (sizes & 3) + 1) as usize;
        let count = be32(&p[12..]) as usize;
        let entry = if v1 { 16 } else { 8 } + skip;
        if p.len() < 16 + count * entry {
            return Err(bad("tfra shorter than its entry count"));
        }
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let e = &p[16 + i * entry..];
            let (time, offset) = if v1 {
                (be64(e), be64(&e[8..]))
            } else {
                (u64::from(be32(e)), u64::from(be32(&e[4..])))
            };
            out.push(FragmentStart {
                offset,
                video_time: time,
            });
        }
        return Ok(Some(out));
    }
    Ok(None)
}

/// The first `max` fragments of a segment, found by walking its top-level boxes from the end
/// of its `moov`: two small reads per fragment.
pub fn fragments_by_walking(
    file: &File,
    file_len: u64,
    init: &Init,
    max: usize,
) -> Result<Vec<FragmentStart>> {
    let mut out = Vec::new();
    let mut offset = init.end;
    while out.len() < max {
        let Some((kind, _, size)) = top_box_at(file, offset, file_len)? else {
            break;
        };
        if &kind == b"moof" {
            let moof = read_moof(file, offset, size)?;
            let frag = Fragment::parse(&moof, init)?;
            if let Some(t) = frag.video_time(init) {
                out.push(FragmentStart {
                    offset,
                    video_time: t,
                });
            }
        }
        offset += size;
    }
    Ok(out)
}

pub fn read_moof(file: &File, offset: u64, size: u64) -> Result<Vec<u8>> {
    if size > 16 << 20 {
        return Err(bad(format!("moof at {offset} over 16 MiB")));
    }
    let buf = read_at(file, offset, size as usize)?;
    if (buf.len() as u64) < size {
        return Err(bad(format!("moof at {offset} cut short")));
    }
    Ok(buf)
}

/// One sample of a run: its duration, size, flags and composition offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
    pub cto: i32,
}

impl Sample {
    pub fn is_sync(&self) -> bool {
        self.flags & 0x0001_0000 == 0
    }
}

/// A run of samples stored together, at `data` bytes from the start of the `moof`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub data: u64,
    pub samples: Vec<Sample>,
}

/// One track's part of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFragment {
    pub track: u32,
    pub base_time: u64,
    /// Where the `tfdt` time field is in the `moof`, and whether it is 64-bit.
    pub tfdt_at: usize,
    pub tfdt_wide: bool,
    pub runs: Vec<Run>,
}

impl TrackFragment {
    pub fn duration(&self) -> u64 {
        self.runs
            .iter()
            .flat_map(|r| r.samples.iter())
            .map(|s| u64::from(s.duration))
            .sum()
    }
}

/// A parsed `moof`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    pub tracks: Vec<TrackFragment>,
    /// Where the `mfhd` sequence number is in the `moof`.
    pub sequence_at: Option<usize>,
}

impl Fragment {
    /// Parses a whole `moof` box (`buf` starts with its header).
    pub fn parse(buf: &[u8], init: &Init) -> Result<Fragment> {
        let top = children(buf, 0, buf.len());
        let moof = top
            .first()
            .filter(|b| &b.kind == b"moof")
            .ok_or_else(|| bad("not a moof"))?;
        let mut sequence_at = None;
        let mut tracks = Vec::new();
        for b in children(buf, moof.body, moof.end) {
            match &b.kind {
                b"mfhd" if b.end - b.body >= 8 => sequence_at = Some(b.body + 4),
                b"traf" => tracks.push(parse_traf(buf, &b, init)?),
                _ => {}
            }
        }
        Ok(Fragment {
            tracks,
            sequence_at,
        })
    }

    pub fn video_time(&self, init: &Init) -> Option<u64> {
        let video = init.video()?.id;
        self.tracks
            .iter()
            .find(|t| t.track == video)
            .map(|t| t.base_time)
    }
}

fn parse_traf(buf: &[u8], traf: &BoxRef, init: &Init) -> Result<TrackFragment> {
    let inner = children(buf, traf.body, traf.end);
    let tfhd = child(&inner, b"tfhd").ok_or_else(|| bad("traf without tfhd"))?;
    let p = &buf[tfhd.body..tfhd.end];
    if p.len() < 8 {
        return Err(bad("short tfhd"));
    }
    let flags = be32(p) & 0x00ff_ffff;
    let track = be32(&p[4..]);
    let t = init
        .track(track)
        .ok_or_else(|| bad(format!("fragment of unknown track {track}")))?;
    let (mut duration, mut size, mut sflags) = t.defaults;
    let mut at = 8;
    let mut field = |present: bool, wide: bool| -> Result<Option<u64>> {
        if !present {
            return Ok(None);
        }
        let n = if wide { 8 } else { 4 };
        let v = p.get(at..at + n).ok_or_else(|| bad("short tfhd"))?;
        at += n;
        Ok(Some(if wide { be64(v) } else { u64::from(be32(v)) }))
    };
    if field(flags & 0x1 != 0, true)?.is_some() {
        // Our segments use default-base-is-moof; an explicit base offset is not ours.
        return Err(bad("tfhd with an explicit base data offset"));
    }
    field(flags & 0x2 != 0, false)?;
    if let Some(v) = field(flags & 0x8 != 0, false)? {
        duration = v as u32;
    }
    if let Some(v) = field(flags & 0x10 != 0, false)? {
        size = v as u32;
    }
    if let Some(v) = field(flags & 0x20 != 0, false)? {
        sflags = v as u32;
    }
    let tfdt = child(&inner, b"tfdt").ok_or_else(|| bad("traf without tfdt"))?;
    let p = &buf[tfdt.body..tfdt.end];
    let tfdt_wide = p.first() == Some(&1);
    let base_time = match (tfdt_wide, p.len()) {
        (true, 12..) => be64(&p[4..]),
        (false, 8..) => u64::from(be32(&p[4..])),
        _ => return Err(bad("short tfdt")),
    };
    let mut runs = Vec::new();
    let mut next_data = None::<u64>;
    for trun in inner.iter().filter(|b| &b.kind == b"trun") {
        let p = &buf[trun.body..trun.end];
        if p.len() < 8 {
            return Err(bad("short trun"));
        }
        let version = p[0];
        let f = be32(p) & 0x00ff_ffff;
        let count = be32(&p[4..]) as usize;
        let mut at = 8;
        let data = if f & 0x1 != 0 {
            let v = p.get(at..at + 4).ok_or_else(|| bad("short trun"))?;
            at += 4;
            be32(v) as i32 as i64
        } else {
            next_data.map_or(0, |d| d as i64)
        };
        if data < 0 {
            return Err(bad("trun data offset before the moof"));
        }
        let first_flags = if f & 0x4 != 0 {
            let v = p.get(at..at + 4).ok_or_else(|| bad("short trun"))?;
            at += 4;
            Some(be32(v))
        } else {
            None
        };
        let per = [f & 0x100, f & 0x200, f & 0x400, f & 0x800]
            .iter()
            .filter(|&&x| x != 0)
            .count()
            * 4;
        if p.len() < at + count * per {
            return Err(bad("trun shorter than its sample count"));
        }
        let mut samples = Vec::with_capacity(count);
        let mut bytes = 0u64;
        for i in 0..count {
            let mut s = Sample {
                duration,
                size,
                flags: if i == 0 {
                    first_flags.unwrap_or(sflags)
                } else {
                    sflags
                },
                cto: 0,
            };
            let mut take = || {
                let v = be32(&p[at..]);
                at += 4;
                v
            };
            if f & 0x100 != 0 {
                s.duration = take();
            }
            if f & 0x200 != 0 {
                s.size = take();
            }
            if f & 0x400 != 0 {
                s.flags = take();
            }
            if f & 0x800 != 0 {
                let v = take();
                s.cto = if version == 0 {
                    v.min(i32::MAX as u32) as i32
                } else {
                    v as i32
                };
            }
            bytes += u64::from(s.size);
            samples.push(s);
        }
        next_data = Some(data as u64 + bytes);
        runs.push(Run {
            data: data as u64,
            samples,
        });
    }
    Ok(TrackFragment {
        track,
        base_time,
        tfdt_at: tfdt.body + 4,
        tfdt_wide,
        runs,
    })
}

/// Rewrites a fragment's decode times (`time(track, old) -> new`) and sequence number in
/// place; the box sizes do not change, so its data offsets stay right.
pub fn patch_fragment(
    buf: &mut [u8],
    frag: &Fragment,
    sequence: u32,
    time: impl Fn(u32, u64) -> u64,
) -> Result<()> {
    if let Some(at) = frag.sequence_at {
        buf[at..at + 4].copy_from_slice(&sequence.to_be_bytes());
    }
    for t in &frag.tracks {
        let new = time(t.track, t.base_time);
        if t.tfdt_wide {
            buf[t.tfdt_at..t.tfdt_at + 8].copy_from_slice(&new.to_be_bytes());
        } else {
            let v = u32::try_from(new).map_err(|_| bad("decode time over 32 bits"))?;
            buf[t.tfdt_at..t.tfdt_at + 4].copy_from_slice(&v.to_be_bytes());
        }
    }
    Ok(())
}

/// Writes a box: header, then whatever `body` appends.
pub fn put_box(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Writes a full box (version and flags first).
pub fn put_full_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    put_box(out, kind, |o| {
        o.extend_from_slice(&(u32::from(version) << 24 | (flags & 0x00ff_ffff)).to_be_bytes());
        body(o);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moov_with(tracks: &[(u32, &[u8; 4], u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        put_box(&mut out, b"ftyp", |o| {
            o.extend_from_slice(b"isom\0\0\x02\0isom")
        });
        put_box(&mut out, b"moov", |o| {
            for &(id, handler, timescale) in tracks {
                put_box(o, b"trak", |o| {
                    put_full_box(o, b"tkhd", 0, 3, |o| {
                        o.extend_from_slice(&[0; 8]);
                        o.extend_from_slice(&id.to_be_bytes());
                        o.extend_from_slice(&[0; 68]);
                    });
                    put_box(o, b"mdia", |o| {
                        put_full_box(o, b"mdhd", 0, 0, |o| {
                            o.extend_from_slice(&[0; 8]);
                            o.extend_from_slice(&timescale.to_be_bytes());
                            o.extend_from_slice(&[0; 8]);
                        });
                        put_full_box(o, b"hdlr", 0, 0, |o| {
                            o.extend_from_slice(&[0; 4]);
                            o.extend_from_slice(handler);
                            o.extend_from_slice(&[0; 13]);
                        });
                        put_box(o, b"minf", |o| {
                            put_box(o, b"stbl", |o| {
                                put_full_box(o, b"stsd", 0, 0, |o| {
                                    o.extend_from_slice(&0u32.to_be_bytes());
                                    o.extend_from_slice(handler);
                                });
                            });
                        });
                    });
                });
            }
            put_box(o, b"mvex", |o| {
                for &(id, _, _) in tracks {
                    put_full_box(o, b"trex", 0, 0, |o| {
                        o.extend_from_slice(&id.to_be_bytes());
                        o.extend_from_slice(&1u32.to_be_bytes());
                        o.extend_from_slice(&512u32.to_be_bytes());
                        o.extend_from_slice(&100u32.to_be_bytes());
                        o.extend_from_slice(&0x0001_0000u32.to_be_bytes());
                    });
                }
            });
        });
        out
    }

    fn init_of(bytes: &[u8]) -> Init {
        let f = tempfile::tempfile().unwrap();
        f.write_all_at(bytes, 0).unwrap();
        Init::read(&f, bytes.len() as u64).unwrap()
    }

    #[test]
    fn moov_gives_tracks_and_a_setup_digest() {
        let a = init_of(&moov_with(&[(1, b"vide", 90000), (2, b"soun", 8000)]));
        assert_eq!(a.tracks.len(), 2);
        assert_eq!(a.video().unwrap().timescale, 90000);
        assert_eq!(a.track(2).unwrap().defaults, (512, 100, 0x0001_0000));
        let same = init_of(&moov_with(&[(1, b"vide", 90000), (2, b"soun", 8000)]));
        let other = init_of(&moov_with(&[(1, b"vide", 15360), (2, b"soun", 8000)]));
        assert_eq!(a.setup, same.setup);
        assert_ne!(a.setup, other.setup);
        let f = tempfile::tempfile().unwrap();
        let only_audio = moov_with(&[(2, b"soun", 8000)]);
        f.write_all_at(&only_audio, 0).unwrap();
        assert!(Init::read(&f, only_audio.len() as u64).is_err());
    }

    #[test]
    fn fragments_parse_with_defaults_and_patch_in_place() {
        let init = init_of(&moov_with(&[(1, b"vide", 90000)]));
        let mut moof = Vec::new();
        put_box(&mut moof, b"moof", |o| {
            put_full_box(o, b"mfhd", 0, 0, |o| {
                o.extend_from_slice(&7u32.to_be_bytes())
            });
            put_box(o, b"traf", |o| {
                // default-base-is-moof, default duration 3000.
                put_full_box(o, b"tfhd", 0, 0x02_0008, |o| {
                    o.extend_from_slice(&1u32.to_be_bytes());
                    o.extend_from_slice(&3000u32.to_be_bytes());
                });
                put_full_box(o, b"tfdt", 1, 0, |o| {
                    o.extend_from_slice(&90_000u64.to_be_bytes())
                });
                // data offset, first sample flags, sizes.
                put_full_box(o, b"trun", 0, 0x205, |o| {
                    o.extend_from_slice(&2u32.to_be_bytes());
                    o.extend_from_slice(&200u32.to_be_bytes());
                    o.extend_from_slice(&0u32.to_be_bytes());
                    o.extend_from_slice(&1000u32.to_be_bytes());
                    o.extend_from_slice(&10u32.to_be_bytes());
                });
            });
        });
        let frag = Fragment::parse(&moof, &init).unwrap();
        let t = &frag.tracks[0];
        assert_eq!(t.base_time, 90_000);
        assert_eq!(t.duration(), 6000);
        assert_eq!(t.runs[0].data, 200);
        assert!(t.runs[0].samples[0].is_sync());
        assert!(
            !t.runs[0].samples[1].is_sync(),
            "trex default flags: non-sync"
        );
        assert_eq!(t.runs[0].samples[1].size, 10);
        let before = moof.len();
        patch_fragment(&mut moof, &frag, 1, |_, old| old - 90_000).unwrap();
        assert_eq!(moof.len(), before);
        let again = Fragment::parse(&moof, &init).unwrap();
        assert_eq!(again.tracks[0].base_time, 0);
        assert_eq!(be32(&moof[frag.sequence_at.unwrap()..]), 1);
    }

    #[test]
    fn truncated_boxes_end_the_walk() {
        let init = moov_with(&[(1, b"vide", 90000)]);
        let f = tempfile::tempfile().unwrap();
        f.write_all_at(&init, 0).unwrap();
        // A moof header claiming more than the file holds: a fragment still being written.
        f.write_all_at(&[0, 0, 1, 0, b'm', b'o', b'o', b'f'], init.len() as u64)
            .unwrap();
        let len = init.len() as u64 + 8;
        assert!(top_box_at(&f, init.len() as u64, len).unwrap().is_none());
        let parsed = Init::read(&f, len).unwrap();
        assert!(fragments_by_walking(&f, len, &parsed, usize::MAX)
            .unwrap()
            .is_empty());
        assert!(fragments_from_mfra(&f, len, 1).unwrap().is_none());
    }
}
