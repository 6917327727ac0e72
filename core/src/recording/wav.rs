//! A 16-bit PCM WAV file that is valid after every flush, so a crash of the process leaves
//! a playable file holding everything up to the last flush.
//!
//! Samples are kept in memory between flushes; a flush appends them to the file and then
//! rewrites the RIFF and data sizes in the header, in that order, so the header never
//! claims bytes that are not there yet.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use super::WriteError;
use crate::audio::wav::{header, riff_size, DATA_SIZE_AT, RIFF_SIZE_AT};

/// The data chunk's size field is 32 bits and the RIFF size counts 36 more bytes.
const MAX_DATA: u64 = u32::MAX as u64 - 36;

pub struct WavFile {
    file: File,
    channels: u16,
    /// Little-endian sample bytes not written yet.
    pending: Vec<u8>,
    /// Data bytes in the file (and in its header).
    written: u64,
    /// Set once the 4 GiB limit is reached: later samples are not recorded.
    full: bool,
}

impl WavFile {
    /// Creates `path` (it must not exist) with an empty, valid header.
    pub fn create(path: &Path, rate: u32, channels: u16) -> Result<Self, WriteError> {
        let mut file = File::options().write(true).create_new(true).open(path)?;
        file.write_all(&header(rate, channels, 0))?;
        Ok(Self {
            file,
            channels,
            pending: Vec::new(),
            written: 0,
            full: false,
        })
    }

    /// Queues interleaved samples (whole frames) for the next flush. Returns false when the
    /// WAV size limit was reached and the samples were not kept.
    pub fn write(&mut self, samples: &[i16]) -> bool {
        let frame_bytes = 2 * u64::from(self.channels.max(1));
        let room = MAX_DATA.saturating_sub(self.written + self.pending.len() as u64);
        let fits = (room / frame_bytes * frame_bytes / 2) as usize;
        let take = samples.len().min(fits);
        self.pending.reserve(2 * take);
        for s in &samples[..take] {
            self.pending.extend_from_slice(&s.to_le_bytes());
        }
        if take < samples.len() {
            self.full = true;
        }
        take == samples.len()
    }

    /// Appends what was queued, then updates the header to cover it.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.pending)?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        self.file.seek(SeekFrom::Start(RIFF_SIZE_AT))?;
        self.file
            .write_all(&riff_size(self.written).to_le_bytes())?;
        self.file.seek(SeekFrom::Start(DATA_SIZE_AT))?;
        self.file.write_all(&(self.written as u32).to_le_bytes())?;
        self.file.seek(SeekFrom::End(0))?;
        Ok(())
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> Result<(), WriteError> {
        self.flush()
    }

    /// Data bytes in the file so far (not counting what is queued).
    pub fn data_bytes(&self) -> u64 {
        self.written
    }

    /// Whether the WAV size limit cut the recording short.
    pub fn is_full(&self) -> bool {
        self.full
    }
}
