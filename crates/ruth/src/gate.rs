//! The FPS gate: which frames of a camera are due for one subscription, decided on the frames'
//! own timestamps (pts), never on arrival times or frame counts.
//!
//! Time is cut into cells of one period (1 / fps). A frame is due when it falls in a later
//! cell than the last due frame: at most one frame per cell, so never more than `fps` per
//! second of stream time; never the same frame twice; and no catch-up, since cells without a
//! frame (a gap, a slow model) are simply gone. A timestamp discontinuity (the export's
//! discontinuity flag, or pts going backwards) starts over: the next frame is due and the
//! cells are counted from it.
//!
//! Where the cells start matters when the camera runs at about the wanted rate. With cells
//! at plain multiples of the period, a 30 fps camera gated at 30 fps puts each frame right
//! at a cell edge: vasd's 90 kHz timestamps round 33.33 ms down to 33,333,333 ns, so every
//! third frame lands in its predecessor's cell and only 2 frames in 3 pass; a millisecond of
//! jitter does the same at random. So cells are counted from the first frame after a reset,
//! and begin [`JITTER_TOLERANCE_NS`] (at most half a period) before it: a frame arriving up to
//! that much early for its cell still opens it, and a camera at exactly `fps` passes every
//! frame. The price is that the second frame after a reset may come that much less than a
//! period after the first.

/// How early a frame may be for its cell: the timestamp jitter of real cameras is a few ms
/// around the nominal frame time (RTP's 90 kHz clock adds 11 us of rounding), and 20 ms stays
/// below half the frame period of any camera up to 25 fps. Capped at half a period, so that
/// for fps above 25 the frames of a camera at exactly `fps` sit in the middle of their cells.
pub const JITTER_TOLERANCE_NS: i64 = 20_000_000;

/// Largest accepted `fps`.
pub const MAX_FPS: f64 = 240.0;

const NS_PER_S: i128 = 1_000_000_000;

/// A maximum frame rate, kept in thousandths of a frame per second so that cell arithmetic
/// is exact integer arithmetic (12.5 fps has a period of exactly 80 ms; 7 fps of 142.857...
/// ms, which no integer number of ns expresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fps {
    millihertz: u64,
}

impl Fps {
    /// `None` unless 0 < fps <= [`MAX_FPS`] and at least 0.001. Rounded down to a thousandth,
    /// so the gate never lets through more than asked.
    pub fn new(fps: f64) -> Option<Fps> {
        if !(fps > 0.0 && fps <= MAX_FPS) {
            return None;
        }
        // The epsilon absorbs binary representation (0.57 * 1000 = 569.999...).
        let millihertz = (fps * 1000.0 + 1e-6).floor() as u64;
        (millihertz > 0).then_some(Fps { millihertz })
    }

    pub fn as_f64(&self) -> f64 {
        self.millihertz as f64 / 1000.0
    }

    /// Length of one cell, rounded to whole ns (for display and tolerances only; cells are
    /// computed exactly).
    pub fn period_ns(&self) -> i64 {
        (NS_PER_S * 1000 / self.millihertz as i128) as i64
    }
}

impl std::fmt::Display for Fps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_f64())
    }
}

/// The gate of one subscription. Pure: its only inputs are the frames' timestamps.
#[derive(Debug, Clone)]
pub struct FrameGate {
    fps: Fps,
    /// How far before the first frame cell 0 starts.
    lead_ns: i64,
    /// The first frame after a reset, from which cells are counted; `None` after a reset.
    origin_pts_ns: Option<i64>,
    last_due_cell: i64,
    /// The pts of the last frame offered, due or not: going below it is a discontinuity.
    last_seen_pts_ns: i64,
}

impl FrameGate {
    pub fn new(fps: Fps) -> FrameGate {
        FrameGate {
            fps,
            lead_ns: JITTER_TOLERANCE_NS.min(fps.period_ns() / 2),
            origin_pts_ns: None,
            last_due_cell: 0,
            last_seen_pts_ns: i64::MIN,
        }
    }

    pub fn fps(&self) -> Fps {
        self.fps
    }

    /// Whether the frame with this pts is due, given every frame offered before. A due frame
    /// claims its cell whether it is then dispatched or skipped (model busy or down), so the
    /// gate alone bounds what a model receives and a skipped cell is never made up.
    /// `discontinuity` is the export's flag (first frame after a reconnect or a timestamp
    /// jump).
    pub fn is_due(&mut self, pts_ns: i64, discontinuity: bool) -> bool {
        if discontinuity || pts_ns < self.last_seen_pts_ns {
            self.reset();
        }
        self.last_seen_pts_ns = pts_ns;
        let Some(origin) = self.origin_pts_ns else {
            self.origin_pts_ns = Some(pts_ns);
            self.last_due_cell = 0;
            return true;
        };
        let cell = self.cell(pts_ns - origin);
        if cell > self.last_due_cell {
            self.last_due_cell = cell;
            true
        } else {
            false
        }
    }

    /// Forgets the timeline: the next frame is due. For a new export generation, and for a
    /// change of `fps`.
    pub fn reset(&mut self) {
        self.origin_pts_ns = None;
        self.last_seen_pts_ns = i64::MIN;
    }

    /// Changes the rate; the next frame is due and cells are counted from it.
    pub fn set_fps(&mut self, fps: Fps) {
        *self = FrameGate::new(fps);
    }

    /// floor((since_origin + lead) * fps / 1 s), exact: since_origin >= 0 and lead >= 0, and
    /// i128 holds 2^63 ns * 240,000 mHz with room to spare.
    fn cell(&self, since_origin_ns: i64) -> i64 {
        let scaled = (since_origin_ns as i128 + self.lead_ns as i128) * self.fps.millihertz as i128;
        (scaled / (NS_PER_S * 1000)) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn gate(fps: f64) -> FrameGate {
        FrameGate::new(Fps::new(fps).unwrap())
    }

    #[test]
    fn fps_values_table() {
        // (configured, accepted as, period in ns)
        let table = [
            (30.0, Some(30.0), 33_333_333),
            (12.5, Some(12.5), 80_000_000),
            (7.0, Some(7.0), 142_857_142),
            (0.57, Some(0.57), 1_754_385_964),
            (240.0, Some(240.0), 4_166_666),
            (0.001, Some(0.001), 1_000_000_000_000),
        ];
        for (fps, want, period) in table {
            let f = Fps::new(fps).unwrap();
            assert_eq!(Some(f.as_f64()), want, "{fps}");
            assert_eq!(f.period_ns(), period, "{fps}");
        }
        for bad in [0.0, -1.0, 240.001, 0.0004, f64::NAN, f64::INFINITY] {
            assert_eq!(Fps::new(bad), None, "{bad}");
        }
    }

    /// Frame by frame at 10 fps (cells of 100 ms, starting 20 ms before the first frame):
    /// one frame per cell, no duplicates, no catch-up, resets.
    #[test]
    fn which_frames_pass_table() {
        // (pts in ms, discontinuity flag, due?, why)
        let table: &[(i64, bool, bool, &str)] = &[
            (0, false, true, "first frame: cell 0"),
            (33, false, false, "cell 0 again"),
            (67, false, false, "cell 0 again"),
            (100, false, true, "cell 1"),
            (133, false, false, ""),
            (167, false, false, ""),
            (
                181,
                false,
                true,
                "181 + 20 opens cell 2 early: within the jitter tolerance",
            ),
            (200, false, false, "cell 2 already had its frame"),
            (
                900,
                false,
                true,
                "a gap: cell 9, once; cells 3 to 8 are not made up",
            ),
            (933, false, false, ""),
            (1000, false, true, "cell 10"),
            (1000, false, false, "the same pts again: never a duplicate"),
            (
                500,
                false,
                true,
                "pts went backwards: reset, cells counted from here",
            ),
            (533, false, false, ""),
            (600, false, true, "cell 1 of the new timeline"),
            (650, true, true, "discontinuity flag: reset"),
            (700, false, false, "cell 0 of the newest timeline"),
            (750, false, true, ""),
        ];
        let mut g = gate(10.0);
        for (i, (pts_ms, disc, due, why)) in table.iter().enumerate() {
            assert_eq!(
                g.is_due(pts_ms * MS, *disc),
                *due,
                "row {i}: pts {pts_ms} ms ({why})"
            );
        }
    }

    /// Source timestamps: frame i at i / source_fps seconds, floored to ns as vasd computes
    /// them, plus jitter cycling through 0, +2, -3, +1, -1 ms.
    fn source(source_millihertz: i64, frames: i64) -> Vec<i64> {
        const JITTER_MS: [i64; 5] = [0, 2, -3, 1, -1];
        (0..frames)
            .map(|i| {
                let nominal = (i as i128 * 1_000_000_000_000 / source_millihertz as i128) as i64;
                nominal + JITTER_MS[(i % 5) as usize] * MS
            })
            .collect()
    }

    fn passed(fps: f64, pts: &[i64]) -> usize {
        let mut g = gate(fps);
        pts.iter().filter(|&&p| g.is_due(p, false)).count()
    }

    /// (gate fps, frames passed)
    type Passed = &'static [(f64, usize)];

    /// Ten seconds of each source through gates of 1 to 60 fps. Expected counts, worked out
    /// by hand (the lead L is min(20 ms, period / 2); D the last frame's pts):
    /// - fps <= source / 2: every cell holds at least one frame (the period is longer than
    ///   the largest frame gap, 1/source + 4 ms of jitter), so the count is the number of
    ///   cells up to D: floor((D + L) * fps) + 1. D = 9.9657 s (30 fps), 9.959 s (25),
    ///   9.919 s (12.5); D + L stays below 10 s, so this is 10 * fps.
    /// - fps = source: frame i sits at i periods + jitter (at most 3 ms) from the first, and
    ///   the lead is half a period, so each frame is alone in its cell: all pass.
    /// - fps > source: the period is shorter than the smallest frame gap (1/source - 5 ms),
    ///   so every frame opens a new cell: all pass.
    #[test]
    fn frames_passed_per_source_and_rate_table() {
        // (source fps in mHz, frames in 10 s, [(gate fps, frames passed)])
        let table: &[(i64, i64, Passed)] = &[
            (
                30_000,
                300,
                &[
                    (1.0, 10),
                    (5.0, 50),
                    (7.0, 70),
                    (10.0, 100),
                    (30.0, 300),
                    (60.0, 300),
                ],
            ),
            (
                25_000,
                250,
                &[
                    (1.0, 10),
                    (5.0, 50),
                    (7.0, 70),
                    (10.0, 100),
                    (30.0, 250),
                    (60.0, 250),
                ],
            ),
            (
                12_500,
                125,
                &[
                    (1.0, 10),
                    (5.0, 50),
                    (7.0, 70),
                    (10.0, 100),
                    (30.0, 125),
                    (60.0, 125),
                ],
            ),
        ];
        for (source_mhz, frames, rows) in table {
            let pts = source(*source_mhz, *frames);
            for (fps, want) in *rows {
                assert_eq!(
                    passed(*fps, &pts),
                    *want,
                    "source {} fps, gate {fps} fps",
                    *source_mhz as f64 / 1000.0
                );
            }
        }
    }

    /// A 30 fps camera with exact 90 kHz timestamps (3000 ticks a frame, converted to ns by
    /// flooring as vasd does) at fps = 30: every frame passes. Cells at plain multiples of the
    /// period would pass 2 in 3 here (see the module comment).
    #[test]
    fn a_camera_at_exactly_the_gate_rate_passes_every_frame() {
        for first_tick in [0i64, 1, 1500, 2999, 123_456_789] {
            let pts: Vec<i64> = (0..9000)
                .map(|i| (first_tick + i * 3000) * 1_000_000_000 / 90_000)
                .collect();
            assert_eq!(passed(30.0, &pts), 9000, "first tick {first_tick}");
            // and a 25 fps one at 25
            let pts: Vec<i64> = (0..9000)
                .map(|i| (first_tick + i * 3600) * 1_000_000_000 / 90_000)
                .collect();
            assert_eq!(passed(25.0, &pts), 9000, "first tick {first_tick}");
        }
    }

    /// Over any stretch of stream time the gate passes at most one frame per cell: k + 1 due
    /// frames lie in k + 1 different cells, so they span more than k - 1 periods (the first
    /// may be late in its cell and the last early in its own); and over a whole run the
    /// count is at most the number of cells, floor((D + lead) * fps) + 1.
    #[test]
    fn never_more_than_one_frame_per_period() {
        for (fps, source_mhz) in [(1.0, 30_000), (5.0, 29_970), (7.0, 25_000), (12.5, 30_000)] {
            let pts = source(source_mhz, 3000);
            let mut g = gate(fps);
            let due: Vec<i64> = pts
                .iter()
                .copied()
                .filter(|&p| g.is_due(p, false))
                .collect();
            let period = Fps::new(fps).unwrap().period_ns();
            for (i, first) in due.iter().enumerate() {
                for (k, later) in due[i..].iter().enumerate().skip(1) {
                    assert!(
                        (k as i64 - 1) * period < later - first,
                        "{fps} fps: {} frames in {} ms",
                        k + 1,
                        (later - first) / MS
                    );
                }
            }
            let lead = JITTER_TOLERANCE_NS.min(period / 2);
            let run = pts.last().unwrap() - pts[0] + lead;
            assert!(
                due.len() as i64 <= run / period + 1,
                "{fps} fps: {}",
                due.len()
            );
        }
    }

    #[test]
    fn a_new_rate_starts_over() {
        let mut g = gate(1.0);
        assert!(g.is_due(0, false));
        assert!(!g.is_due(500 * MS, false));
        g.set_fps(Fps::new(10.0).unwrap());
        assert!(g.is_due(510 * MS, false));
        assert!(!g.is_due(540 * MS, false));
        assert!(g.is_due(600 * MS, false));
    }
}
