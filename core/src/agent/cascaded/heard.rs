//! What the caller heard of an interrupted answer, in words. TTS providers do not say
//! which text each audio chunk speaks, so the heard part is estimated from the audio's
//! speaking rate: exact when the whole answer was rendered (its own rate), a typical
//! Portuguese rate before that.

/// Characters per second of typical pt-BR synthetic speech, used before an answer's own
/// rate is known.
const TYPICAL_CHARS_PER_SECOND: f64 = 15.0;

/// The words of `text` heard in `heard_ms`, given `rendered_ms` of audio for it so far and
/// whether that audio is the whole of `text` (`complete`).
pub fn heard_text(text: &str, heard_ms: u64, rendered_ms: u64, complete: bool) -> String {
    let chars = text.chars().count();
    if chars == 0 {
        return String::new();
    }
    let per_ms = if complete && rendered_ms > 0 {
        chars as f64 / rendered_ms as f64
    } else {
        TYPICAL_CHARS_PER_SECOND / 1000.0
    };
    let heard_chars = (heard_ms as f64 * per_ms).round() as usize;
    if heard_chars >= chars {
        return text.to_string();
    }
    // Keep whole words only: a word cut in the middle was not understood.
    let prefix: String = text.chars().take(heard_chars).collect();
    let next_is_space = text
        .chars()
        .nth(heard_chars)
        .is_none_or(char::is_whitespace);
    let kept = if next_is_space {
        prefix.as_str()
    } else {
        prefix
            .rsplit_once(char::is_whitespace)
            .map_or("", |(head, _)| head)
    };
    kept.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_answer_is_cut_by_its_own_rate_at_a_word() {
        let text = "Nosso horário é das oito às dezoito horas.";
        // 42 characters over 4.2 s: 10 characters a second.
        assert_eq!(heard_text(text, 1000, 4200, true), "Nosso");
        assert_eq!(heard_text(text, 1400, 4200, true), "Nosso horário");
        assert_eq!(heard_text(text, 1600, 4200, true), "Nosso horário é");
        assert_eq!(heard_text(text, 5000, 4200, true), text);
        assert_eq!(heard_text(text, 0, 4200, true), "");
    }

    #[test]
    fn an_answer_still_rendering_uses_the_typical_rate() {
        let text = "Um momento, vou verificar para você.";
        // 15 characters a second: 1 s is "Um momento, vou" (15 chars) .
        assert_eq!(heard_text(text, 1000, 800, false), "Um momento, vou");
        assert_eq!(heard_text("", 1000, 800, false), "");
    }
}
