//! Stereo Opus in an Ogg container (RFC 7845), readable after every flush.
//!
//! The two channels are coded as two mono streams (channel mapping family 1, no coupled
//! stream; see `recording::opus_streams`), so no caller audio leaks into the agent's channel
//! or back.
//!
//! Audio is encoded in 20 ms frames as it comes. A flush ends the Ogg page on the last
//! packet and writes it out, so a crash leaves a stream that decoders play up to the last
//! flush (without the end-of-stream flag). [`OggOpusFile::finish`] pads the encoder's
//! look-ahead, sets the final granule position to the exact length and marks the end of
//! the stream.
//!
//! Opus takes 8, 12, 16, 24 or 48 kHz. Other call rates (32 kHz wideband SIP, 22.05 or
//! 44.1 kHz) are resampled to the next Opus rate up, so the file is Opus whatever the rate;
//! the resampler's group delay (about a millisecond) shifts both channels alike.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use ogg::{PacketWriteEndInfo, PacketWriter};

use super::opus_streams::TwoMonoEncoder;
use super::WriteError;
use crate::audio::Resampler;

/// Opus granule positions count 48 kHz samples whatever the coded rate.
const GRANULE_RATE: u64 = 48_000;
const FRAME_MS: u32 = 20;
/// Largest Opus packet is 1275 bytes per frame; leave room.
const MAX_PACKET: usize = 4000;

pub struct OggOpusFile {
    pages: PacketWriter<'static, BufWriter<File>>,
    serial: u32,
    encoder: TwoMonoEncoder,
    /// Per-channel resamplers when the call rate is not an Opus rate.
    resample: Option<Box<StereoResampler>>,
    call_rate: u32,
    opus_rate: u32,
    /// Samples per channel in one 20 ms frame at the Opus rate.
    frame_len: usize,
    /// Interleaved samples at the Opus rate waiting for a whole frame.
    pcm: Vec<i16>,
    /// The newest packet and its granule position, held back until we know whether it
    /// ends a page (a flush) or the stream (finish).
    held: Option<(Vec<u8>, u64)>,
    frames_encoded: u64,
    /// Stereo frames received at the call rate.
    call_frames: u64,
    /// Encoder look-ahead at the Opus rate, and as pre-skip at 48 kHz.
    lookahead: u64,
    pre_skip: u64,
    packet: Vec<u8>,
}

struct StereoResampler {
    left: Resampler,
    right: Resampler,
    left_in: Vec<i16>,
    right_in: Vec<i16>,
    left_out: Vec<i16>,
    right_out: Vec<i16>,
}

/// The Opus rate a call at `rate` is coded at: itself when Opus takes it, else the next one
/// up (48 kHz at most).
pub fn opus_rate_for(rate: u32) -> u32 {
    [8000, 12000, 16000, 24000, 48000]
        .into_iter()
        .find(|&r| r >= rate)
        .unwrap_or(48000)
}

/// Whether a call at `rate` can be recorded as Opus.
pub fn supports_rate(rate: u32) -> bool {
    Resampler::new(rate, opus_rate_for(rate)).is_ok()
}

impl OggOpusFile {
    /// Creates `path` (it must not exist) and writes the Opus headers to it.
    pub fn create(
        path: &Path,
        call_rate: u32,
        bitrate: u32,
        complexity: u8,
        serial: u32,
    ) -> Result<Self, WriteError> {
        let opus_rate = opus_rate_for(call_rate);
        let resample = if opus_rate == call_rate {
            None
        } else {
            Some(Box::new(StereoResampler {
                left: Resampler::new(call_rate, opus_rate)?,
                right: Resampler::new(call_rate, opus_rate)?,
                left_in: Vec::new(),
                right_in: Vec::new(),
                left_out: Vec::new(),
                right_out: Vec::new(),
            }))
        };
        let encoder = TwoMonoEncoder::new(opus_rate, bitrate, complexity)?;
        let lookahead = u64::from(encoder.lookahead()?);
        let pre_skip = lookahead * GRANULE_RATE / u64::from(opus_rate);

        let file = File::options().write(true).create_new(true).open(path)?;
        let mut pages = PacketWriter::new(BufWriter::new(file));
        pages.write_packet(
            opus_head(pre_skip as u16, call_rate),
            serial,
            PacketWriteEndInfo::EndPage,
            0,
        )?;
        pages.write_packet(opus_tags(), serial, PacketWriteEndInfo::EndPage, 0)?;
        pages.inner_mut().flush()?;
        Ok(Self {
            pages,
            serial,
            encoder,
            resample,
            call_rate,
            opus_rate,
            frame_len: (opus_rate / 1000 * FRAME_MS) as usize,
            pcm: Vec::new(),
            held: None,
            frames_encoded: 0,
            call_frames: 0,
            lookahead,
            pre_skip,
            packet: vec![0; MAX_PACKET],
        })
    }

    /// Encodes interleaved stereo samples at the call rate, 20 ms at a time.
    pub fn write(&mut self, stereo: &[i16]) -> Result<(), WriteError> {
        self.call_frames += stereo.len() as u64 / 2;
        match self.resample.as_deref_mut() {
            None => self.pcm.extend_from_slice(stereo),
            Some(r) => r.process(stereo, &mut self.pcm),
        }
        self.encode_whole_frames()
    }

    /// Ends the current Ogg page and writes it out.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        if let Some((packet, granule)) = self.held.take() {
            self.pages
                .write_packet(packet, self.serial, PacketWriteEndInfo::EndPage, granule)?;
        }
        self.pages.inner_mut().flush()?;
        Ok(())
    }

    /// Encodes what is left (padded to cover the encoder's look-ahead), sets the final
    /// granule position to the exact length and ends the stream.
    pub fn finish(mut self) -> Result<(), WriteError> {
        if let Some(r) = self.resample.as_deref_mut() {
            r.flush(&mut self.pcm);
        }
        let total = self.call_frames * u64::from(self.opus_rate) / u64::from(self.call_rate);
        let frame = self.frame_len as u64;
        // Every real sample must come out after the decoder drops the pre-skip.
        let frames_needed = (self.lookahead + total).div_ceil(frame).max(1);
        let to_encode = frames_needed.saturating_sub(self.frames_encoded);
        self.pcm.resize((to_encode * frame * 2) as usize, 0);
        self.encode_whole_frames()?;
        if self.held.is_none() {
            // Nothing at all was encoded (cannot happen with a look-ahead): one silent frame
            // so the stream has a packet to end on.
            self.pcm.resize(self.frame_len * 2, 0);
            self.encode_whole_frames()?;
        }
        let end_granule = self.pre_skip + total * GRANULE_RATE / u64::from(self.opus_rate);
        if let Some((packet, granule)) = self.held.take() {
            self.pages.write_packet(
                packet,
                self.serial,
                PacketWriteEndInfo::EndStream,
                end_granule.min(granule),
            )?;
        }
        self.pages.inner_mut().flush()?;
        Ok(())
    }

    /// The rate the audio is coded at.
    pub fn opus_rate(&self) -> u32 {
        self.opus_rate
    }

    fn encode_whole_frames(&mut self) -> Result<(), WriteError> {
        let step = self.frame_len * 2;
        let mut start = 0;
        while self.pcm.len() - start >= step {
            let len = self
                .encoder
                .encode(&self.pcm[start..start + step], &mut self.packet)?;
            start += step;
            self.frames_encoded += 1;
            let granule = self.frames_encoded * FRAME_MS as u64 * GRANULE_RATE / 1000;
            let packet = self.packet[..len].to_vec();
            if let Some((previous, previous_granule)) = self.held.replace((packet, granule)) {
                self.pages.write_packet(
                    previous,
                    self.serial,
                    PacketWriteEndInfo::NormalPacket,
                    previous_granule,
                )?;
            }
        }
        self.pcm.drain(..start);
        Ok(())
    }
}

impl StereoResampler {
    fn process(&mut self, stereo: &[i16], out: &mut Vec<i16>) {
        self.left_in.clear();
        self.right_in.clear();
        for frame in stereo.chunks_exact(2) {
            self.left_in.push(frame[0]);
            self.right_in.push(frame[1]);
        }
        self.left.process(&self.left_in, &mut self.left_out);
        self.right.process(&self.right_in, &mut self.right_out);
        self.interleave(out);
    }

    fn flush(&mut self, out: &mut Vec<i16>) {
        self.left.flush(&mut self.left_out);
        self.right.flush(&mut self.right_out);
        self.interleave(out);
    }

    /// Moves the resampled samples to `out`; both channels see the same input count, so
    /// they always have the same output count.
    fn interleave(&mut self, out: &mut Vec<i16>) {
        let n = self.left_out.len().min(self.right_out.len());
        out.reserve(2 * n);
        for (&l, &r) in self.left_out[..n].iter().zip(&self.right_out[..n]) {
            out.push(l);
            out.push(r);
        }
        self.left_out.drain(..n);
        self.right_out.drain(..n);
    }
}

/// The identification header (RFC 7845 §5.1): two channels in two uncoupled streams
/// (mapping family 1, channel i in stream i).
fn opus_head(pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(21);
    h.extend_from_slice(b"OpusHead");
    h.push(1); // version
    h.push(2); // channels
    h.extend_from_slice(&pre_skip.to_le_bytes());
    h.extend_from_slice(&input_rate.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes()); // output gain
    h.push(1); // mapping family 1: a table follows
    h.push(2); // streams
    h.push(0); // of which coupled (stereo)
    h.extend_from_slice(&[0, 1]); // left in stream 0, right in stream 1
    h
}

/// The comment header (RFC 7845 §5.2): a vendor string and no comments.
fn opus_tags() -> Vec<u8> {
    let vendor = concat!("voice-core ", env!("CARGO_PKG_VERSION"), " (libopus)");
    let mut t = Vec::with_capacity(16 + vendor.len());
    t.extend_from_slice(b"OpusTags");
    t.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    t.extend_from_slice(vendor.as_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}
