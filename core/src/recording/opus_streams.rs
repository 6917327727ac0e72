//! A safe wrapper over libopus's multistream encoder, set up as two uncoupled mono
//! streams: one per channel, so caller and agent are coded apart.
//!
//! Opus's coupled stereo narrows the stereo image at speech bitrates: at 24 kbit/s a tone
//! on one channel leaked into the other at -15 dB once both had spoken (and at 16 kbit/s
//! the two became one). Two mono streams at half the bitrate each keep the parties apart
//! exactly, which is what a two-party call recording is for. audiopus 0.2 wraps only the
//! single-stream coder, hence this wrapper.

use std::os::raw::c_int;
use std::ptr::NonNull;

use audiopus::ffi;

/// Channel `i` is coded by stream `i`.
const MAPPING: [u8; 2] = [0, 1];

fn check(code: c_int) -> Result<c_int, audiopus::Error> {
    if code < 0 {
        Err(audiopus::Error::from(audiopus::ErrorCode::from(code)))
    } else {
        Ok(code)
    }
}

/// Encodes interleaved stereo as two mono Opus streams in one multistream packet.
pub(crate) struct TwoMonoEncoder {
    state: NonNull<ffi::OpusMSEncoder>,
}

// SAFETY: the encoder state is plain memory owned by this value; libopus keeps no
// thread-local or shared state for it, so it may move between threads.
unsafe impl Send for TwoMonoEncoder {}

impl TwoMonoEncoder {
    /// `rate` must be an Opus rate (8, 12, 16, 24 or 48 kHz). Tuned for speech.
    pub fn new(rate: u32, bitrate: u32, complexity: u8) -> Result<Self, audiopus::Error> {
        let mut error: c_int = 0;
        // SAFETY: MAPPING has `channels` (2) entries and outlives the call; `error` is a
        // valid out-pointer.
        let state = unsafe {
            ffi::opus_multistream_encoder_create(
                rate as i32,
                2,
                2,
                0,
                MAPPING.as_ptr(),
                ffi::OPUS_APPLICATION_VOIP,
                &mut error,
            )
        };
        check(error)?;
        let state =
            NonNull::new(state).ok_or(audiopus::Error::Opus(audiopus::ErrorCode::AllocFail))?;
        let encoder = Self { state };
        encoder.set(
            ffi::OPUS_SET_BITRATE_REQUEST,
            bitrate.min(i32::MAX as u32) as i32,
        )?;
        encoder.set(ffi::OPUS_SET_COMPLEXITY_REQUEST, i32::from(complexity))?;
        encoder.set(ffi::OPUS_SET_SIGNAL_REQUEST, ffi::OPUS_SIGNAL_VOICE)?;
        Ok(encoder)
    }

    fn set(&self, request: c_int, value: i32) -> Result<(), audiopus::Error> {
        // SAFETY: every request passed here takes one `opus_int32` argument.
        check(unsafe { ffi::opus_multistream_encoder_ctl(self.state.as_ptr(), request, value) })
            .map(|_| ())
    }

    /// Samples (per channel, at the coding rate) the decoder must skip at the start.
    pub fn lookahead(&self) -> Result<u32, audiopus::Error> {
        let mut value: i32 = 0;
        // SAFETY: OPUS_GET_LOOKAHEAD writes one `opus_int32` through the pointer.
        check(unsafe {
            ffi::opus_multistream_encoder_ctl(
                self.state.as_ptr(),
                ffi::OPUS_GET_LOOKAHEAD_REQUEST,
                &mut value as *mut i32,
            )
        })?;
        Ok(value.max(0) as u32)
    }

    /// Encodes one frame of interleaved stereo into `packet`; returns the packet length.
    pub fn encode(&mut self, stereo: &[i16], packet: &mut [u8]) -> Result<usize, audiopus::Error> {
        let len = check(unsafe {
            // SAFETY: the pointers and lengths come from live slices; libopus reads
            // `frame` samples per channel (2 channels) and writes at most `packet.len()`.
            ffi::opus_multistream_encode(
                self.state.as_ptr(),
                stereo.as_ptr(),
                (stereo.len() / 2) as c_int,
                packet.as_mut_ptr(),
                packet.len().min(i32::MAX as usize) as i32,
            )
        })?;
        Ok(len as usize)
    }
}

impl Drop for TwoMonoEncoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_multistream_encoder_create and destroyed once.
        unsafe { ffi::opus_multistream_encoder_destroy(self.state.as_ptr()) }
    }
}

/// Decodes what [`TwoMonoEncoder`] makes, at 48 kHz (for the tests that read files back).
#[cfg(test)]
pub(crate) struct TwoMonoDecoder {
    state: NonNull<ffi::OpusMSDecoder>,
}

#[cfg(test)]
impl TwoMonoDecoder {
    pub fn new() -> Result<Self, audiopus::Error> {
        let mut error: c_int = 0;
        // SAFETY: as for the encoder.
        let state = unsafe {
            ffi::opus_multistream_decoder_create(48000, 2, 2, 0, MAPPING.as_ptr(), &mut error)
        };
        check(error)?;
        let state =
            NonNull::new(state).ok_or(audiopus::Error::Opus(audiopus::ErrorCode::AllocFail))?;
        Ok(Self { state })
    }

    /// Decodes one packet into `out` (interleaved stereo); returns samples per channel.
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<usize, audiopus::Error> {
        let n = check(unsafe {
            // SAFETY: live slices; libopus writes at most `out.len() / 2` frames.
            ffi::opus_multistream_decode(
                self.state.as_ptr(),
                packet.as_ptr(),
                packet.len() as i32,
                out.as_mut_ptr(),
                (out.len() / 2) as c_int,
                0,
            )
        })?;
        Ok(n as usize)
    }
}

#[cfg(test)]
impl Drop for TwoMonoDecoder {
    fn drop(&mut self) {
        // SAFETY: created by opus_multistream_decoder_create and destroyed once.
        unsafe { ffi::opus_multistream_decoder_destroy(self.state.as_ptr()) }
    }
}
