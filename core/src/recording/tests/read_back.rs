//! Minimal readers for what the recorder writes: a WAV parsed by hand, and Ogg/Opus
//! parsed with the `ogg` crate and decoded with libopus.

use std::fs::File;
use std::path::Path;

use crate::recording::opus_streams::TwoMonoDecoder;

#[derive(Debug)]
pub struct Wav {
    pub channels: u16,
    pub rate: u32,
    pub riff_size: u32,
    pub data_size: u32,
    pub file_len: u64,
    /// Interleaved samples of the data chunk, as far as the header says.
    pub samples: Vec<i16>,
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Reads a canonical 44-byte-header PCM WAV, checking every header field.
pub fn read_wav(path: &Path) -> Wav {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    assert!(bytes.len() >= 44, "{path:?}: {} bytes", bytes.len());
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    assert_eq!(&bytes[12..16], b"fmt ");
    assert_eq!(u32_at(&bytes, 16), 16, "fmt chunk size");
    assert_eq!(u16_at(&bytes, 20), 1, "PCM");
    let channels = u16_at(&bytes, 22);
    let rate = u32_at(&bytes, 24);
    assert_eq!(
        u32_at(&bytes, 28),
        rate * 2 * u32::from(channels),
        "byte rate"
    );
    assert_eq!(u16_at(&bytes, 32), 2 * channels, "block align");
    assert_eq!(u16_at(&bytes, 34), 16, "bits per sample");
    assert_eq!(&bytes[36..40], b"data");
    let data_size = u32_at(&bytes, 40);
    let riff_size = u32_at(&bytes, 4);
    assert!(
        44 + data_size as usize <= bytes.len(),
        "header claims more than the file holds"
    );
    let samples = bytes[44..44 + data_size as usize]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    Wav {
        channels,
        rate,
        riff_size,
        data_size,
        file_len: bytes.len() as u64,
        samples,
    }
}

#[derive(Debug)]
pub struct OggOpus {
    pub channels: u8,
    pub pre_skip: u64,
    pub input_rate: u32,
    /// Granule position of the last page read, and whether it ended the stream.
    pub last_granule: u64,
    pub end_of_stream: bool,
    pub audio_packets: usize,
    /// Every audio packet decoded at 48 kHz stereo, pre-skip included.
    pub decoded: Vec<i16>,
}

impl OggOpus {
    /// The audio after the pre-skip, trimmed to the last granule position.
    pub fn audio(&self) -> &[i16] {
        let start = (2 * self.pre_skip as usize).min(self.decoded.len());
        let end = (2 * self.last_granule as usize).min(self.decoded.len());
        &self.decoded[start..end.max(start)]
    }
}

/// Parses every page (the `ogg` crate checks each page's CRC) and decodes every packet.
pub fn read_ogg_opus(path: &Path) -> OggOpus {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {path:?}: {e}"));
    let mut reader = ogg::PacketReader::new(file);
    let head = reader.read_packet_expected().expect("OpusHead packet");
    assert!(head.first_in_stream());
    assert_eq!(&head.data[0..8], b"OpusHead");
    assert_eq!(head.data[8], 1, "version");
    let channels = head.data[9];
    let pre_skip = u64::from(u16_at(&head.data, 10));
    let input_rate = u32_at(&head.data, 12);
    // Family 1, two streams, none coupled, channel i in stream i.
    assert_eq!(&head.data[18..], &[1, 2, 0, 0, 1], "channel mapping");
    let tags = reader.read_packet_expected().expect("OpusTags packet");
    assert_eq!(&tags.data[0..8], b"OpusTags");

    let mut decoder = TwoMonoDecoder::new().expect("decoder");
    let mut out = vec![0i16; 5760 * 2];
    let mut decoded = Vec::new();
    let (mut last_granule, mut end_of_stream, mut audio_packets) = (0, false, 0);
    while let Some(packet) = reader.read_packet().expect("valid Ogg page") {
        assert!(!end_of_stream, "packet after the end of stream");
        let n = decoder
            .decode(&packet.data, &mut out)
            .expect("valid Opus packet");
        decoded.extend_from_slice(&out[..2 * n]);
        audio_packets += 1;
        if packet.last_in_page() {
            assert!(packet.absgp_page() >= last_granule, "granule went back");
            last_granule = packet.absgp_page();
        }
        end_of_stream = packet.last_in_stream();
    }
    OggOpus {
        channels,
        pre_skip,
        input_rate,
        last_granule,
        end_of_stream,
        audio_packets,
        decoded,
    }
}
