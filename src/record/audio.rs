//! Audio of a recording. AAC is written as the camera sent it. G.711 (PCMA, PCMU), which the
//! MP4 muxer refuses and no browser plays from MP4, becomes AAC with FFmpeg's own encoder at
//! the camera's sample rate (`crate::audio`, 8 kHz mono: about 1 ms of CPU per second of
//! audio, see benches/cpu.py), on the recorder's thread.

use ffmpeg_next::codec::Id;

/// What a recording does with a camera's audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPlan {
    Copy,
    ToAac,
    /// Neither kept nor transcoded (a codec the MP4 muxer and browsers cannot take).
    Drop,
}

pub fn plan(id: Id) -> AudioPlan {
    match id {
        Id::AAC => AudioPlan::Copy,
        Id::PCM_ALAW | Id::PCM_MULAW => AudioPlan::ToAac,
        _ => AudioPlan::Drop,
    }
}
