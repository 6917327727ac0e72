//! Phonemes → model ids (providers.md §7.3 steps 4–5).
//!
//! The layout is piper1-gpl's and the C++ runtime's: `^ _ p1 _ p2 _ … pn _ $` (BOS, PAD,
//! each phoneme's ids followed by PAD, EOS). The old Python runtime left out the PAD after
//! BOS; the voices were trained with it.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

use super::voice::single_char;

const PAD: char = '_';
const BOS: char = '^';
const EOS: char = '$';

/// A voice's `phoneme_id_map` and `phoneme_map`, checked.
#[derive(Debug, Clone)]
pub struct IdMap {
    ids: HashMap<char, Vec<i64>>,
    substitutions: HashMap<char, Vec<char>>,
    pad: Vec<i64>,
    bos: Vec<i64>,
    eos: Vec<i64>,
}

impl IdMap {
    /// Checks that every key is one codepoint, PAD/BOS/EOS are there, and every id is
    /// below `num_symbols` (the model's embedding size) when the file gives it.
    pub fn new(
        raw: HashMap<String, Vec<i64>>,
        substitutions: HashMap<char, Vec<char>>,
        num_symbols: Option<u32>,
    ) -> Result<Self, String> {
        let mut ids = HashMap::with_capacity(raw.len());
        for (key, values) in raw {
            let phoneme = single_char(&key).map_err(|e| format!("phoneme_id_map key {e}"))?;
            if values.is_empty() {
                return Err(format!("phoneme_id_map {key:?} has no id"));
            }
            if let Some(bad) = values
                .iter()
                .find(|&&id| id < 0 || num_symbols.is_some_and(|n| id >= i64::from(n)))
            {
                return Err(format!(
                    "phoneme_id_map {key:?} has id {bad}, outside 0..{}",
                    num_symbols.map_or("∞".to_string(), |n| n.to_string())
                ));
            }
            ids.insert(phoneme, values);
        }
        let special = |c: char| {
            ids.get(&c)
                .cloned()
                .ok_or_else(|| format!("phoneme_id_map has no {c:?} (PAD/BOS/EOS)"))
        };
        Ok(Self {
            pad: special(PAD)?,
            bos: special(BOS)?,
            eos: special(EOS)?,
            ids,
            substitutions,
        })
    }

    /// Ids of one sentence's phoneme string: NFD, split into single codepoints (combining
    /// marks such as U+0303 are phonemes of their own), `phoneme_map` applied, then the
    /// canonical layout. Phonemes the voice does not know are skipped and passed to
    /// `missing`.
    pub fn sentence_ids(&self, phonemes: &str, missing: &mut dyn FnMut(char)) -> Vec<i64> {
        let mut out = Vec::with_capacity(2 * phonemes.len() + 3);
        out.extend_from_slice(&self.bos);
        out.extend_from_slice(&self.pad);
        for phoneme in phonemes.nfd() {
            match self.substitutions.get(&phoneme) {
                Some(replacements) => {
                    for &p in replacements {
                        self.push(p, &mut out, missing);
                    }
                }
                None => self.push(phoneme, &mut out, missing),
            }
        }
        out.extend_from_slice(&self.eos);
        out
    }

    fn push(&self, phoneme: char, out: &mut Vec<i64>, missing: &mut dyn FnMut(char)) {
        match self.ids.get(&phoneme) {
            Some(ids) => {
                out.extend_from_slice(ids);
                out.extend_from_slice(&self.pad);
            }
            None => missing(phoneme),
        }
    }

    /// Ids of `phoneme` (tests and diagnostics).
    pub fn get(&self, phoneme: char) -> Option<&[i64]> {
        self.ids.get(&phoneme).map(Vec::as_slice)
    }
}
