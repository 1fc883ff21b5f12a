//! The one place that notices a stream changing under a session: new parameter sets in band
//! (an edited encoder setting: size, profile) and timestamp discontinuities (a camera clock
//! reset or a jump). The camera thread runs every video access unit through [`ChangeDetector`]
//! and carries the verdict on the unit; consumers act on the flags (the recorder cuts a
//! segment, the export starts a generation, status counts) instead of guessing on their own.

use std::sync::Arc;

use ffmpeg::{Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::fanout::StreamParams;
use crate::bitstream::{Codec, ParameterSets};

/// A video clock step forward by more than this is a discontinuity, not a late frame. Five
/// seconds is longer than any GOP or network hiccup a session survives (the I/O timeout is
/// 5 s by default) and far shorter than the clock resets seen on cameras (hours, days).
pub const MAX_FORWARD_STEP_NS: i64 = 5_000_000_000;

/// What the detector saw in one access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// The unit carries new parameter sets: a new [`StreamParams`] describes it and what
    /// follows.
    pub params_changed: bool,
    /// The unit's timestamp does not continue the previous unit's.
    pub discontinuity: bool,
}

pub struct ChangeDetector {
    codec: Option<Codec>,
    sets: Option<ParameterSets>,
    last_dts_ns: Option<i64>,
    params: Arc<StreamParams>,
    /// Parameter sets were seen in band in this session.
    seen_in_band: bool,
}

impl ChangeDetector {
    /// Starts a session described by `params` (from the SDP and probing).
    pub fn new(params: Arc<StreamParams>) -> ChangeDetector {
        let codec = Codec::from_ffmpeg(params.parameters().id());
        let sets = codec.map(|c| {
            let mut sets = ParameterSets::new(c);
            sets.learn_extradata(&params.extradata);
            sets
        });
        ChangeDetector {
            codec,
            sets,
            last_dts_ns: None,
            params,
            seen_in_band: false,
        }
    }

    /// The description of the stream as of the last unit observed.
    pub fn params(&self) -> &Arc<StreamParams> {
        &self.params
    }

    /// Looks at one video unit. Only a changed SPS or VPS is a change of parameters (see
    /// `ParameterSets::learn_access_unit`).
    pub fn observe(&mut self, packet: &Packet, time_base: Rational) -> Verdict {
        let mut verdict = Verdict::default();
        if let Some(dts_ns) = packet.dts().or(packet.pts()).map(|t| to_ns(t, time_base)) {
            if let Some(last) = self.last_dts_ns {
                let step = dts_ns - last;
                verdict.discontinuity = !(0..=MAX_FORWARD_STEP_NS).contains(&step);
            }
            self.last_dts_ns = Some(dts_ns);
        }
        let (Some(codec), Some(sets)) = (self.codec, self.sets.as_mut()) else {
            return verdict;
        };
        let data = packet.data().unwrap_or(&[]);
        // Nothing is copied unless an SPS or VPS changed: this runs for every video unit.
        if !sets.learn_access_unit(data) || !sets.is_complete() {
            return verdict;
        }
        let geometry = probe_geometry(codec, data);
        let old_size = self.params.size();
        // The first sets in band may differ from the SDP's in bytes only (a VUI the SDP left
        // out) or fill in an SDP that had none: then the stream already probed goes on, and
        // only a different size is a change.
        let first_in_band = !std::mem::replace(&mut self.seen_in_band, true);
        let resized = geometry.is_some_and(|g| (g.width, g.height) != old_size);
        self.params = Arc::new(self.params.with_sets(&sets.to_annex_b(), geometry));
        verdict.params_changed = !first_in_band || resized;
        verdict
    }
}

/// A timestamp in `tb` units as nanoseconds.
pub fn to_ns(ts: i64, tb: Rational) -> i64 {
    (ts as i128 * tb.numerator() as i128 * 1_000_000_000 / tb.denominator().max(1) as i128) as i64
}

/// What FFmpeg's parser reads from the parameter sets of a key frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
    pub format: i32,
    pub profile: i32,
}

/// Runs FFmpeg's own H.264/H.265 parser over one access unit for the size, pixel format and
/// profile of its SPS (cropping applied). Called only when the sets changed, so its cost (a
/// parser allocated and freed) does not matter.
pub fn probe_geometry(codec: Codec, data: &[u8]) -> Option<Geometry> {
    use ffmpeg::ffi;
    let id = match codec {
        Codec::H264 => ffi::AVCodecID::AV_CODEC_ID_H264,
        Codec::H265 => ffi::AVCodecID::AV_CODEC_ID_HEVC,
    };
    // The parser may read up to AV_INPUT_BUFFER_PADDING_SIZE bytes past the end.
    let mut padded = data.to_vec();
    padded.resize(data.len() + ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize, 0);
    // SAFETY: parser and context are allocated here, used only with each other and freed
    // before returning; the input buffer is padded as FFmpeg requires and outlives the call.
    unsafe {
        let parser = ffi::av_parser_init(id as i32);
        if parser.is_null() {
            return None;
        }
        let ctx = ffi::avcodec_alloc_context3(std::ptr::null());
        if ctx.is_null() {
            ffi::av_parser_close(parser);
            return None;
        }
        // One complete access unit per call: no need to find frame boundaries.
        (*parser).flags |= ffi::PARSER_FLAG_COMPLETE_FRAMES;
        let mut out: *mut u8 = std::ptr::null_mut();
        let mut out_size = 0;
        ffi::av_parser_parse2(
            parser,
            ctx,
            &mut out,
            &mut out_size,
            padded.as_ptr(),
            data.len() as i32,
            ffi::AV_NOPTS_VALUE,
            ffi::AV_NOPTS_VALUE,
            0,
        );
        let g = Geometry {
            width: (*parser).width.max(0) as u32,
            height: (*parser).height.max(0) as u32,
            format: (*parser).format,
            profile: (*ctx).profile,
        };
        ffi::av_parser_close(parser);
        let mut ctx = ctx;
        ffi::avcodec_free_context(&mut ctx);
        (g.width > 0 && g.height > 0).then_some(g)
    }
}
