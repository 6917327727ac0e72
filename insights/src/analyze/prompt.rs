//! The prompt files (insights/prompts/*.md), compiled in, and the user message they go with.

use chrono::NaiveDate;

use crate::calls::model::{ScorecardTemplate, Transcription};

/// A prompt file: its version (from the `<!-- version: N -->` first line) and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub version: String,
    pub body: String,
}

const ANALYSIS_FILE: &str = include_str!("../../prompts/analysis.md");
const SCORECARD_FILE: &str = include_str!("../../prompts/scorecard.md");

pub fn analysis_prompt() -> Result<Prompt, String> {
    parse("analysis", ANALYSIS_FILE)
}

pub fn scorecard_prompt() -> Result<Prompt, String> {
    parse("scorecard", SCORECARD_FILE)
}

/// Splits the version header from the body; `name@version` is what results record.
fn parse(name: &str, file: &str) -> Result<Prompt, String> {
    let (first, body) = file.split_once('\n').unwrap_or((file, ""));
    let version = first
        .trim()
        .strip_prefix("<!-- version:")
        .and_then(|v| v.strip_suffix("-->"))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("prompt {name}: first line must be `<!-- version: N -->`"))?;
    Ok(Prompt {
        version: format!("{name}@{version}"),
        body: body.trim().to_string(),
    })
}

/// The analysis request: the call date (for relative due dates) and the transcript.
pub fn analysis_message(t: &Transcription, call_date: NaiveDate, max_chars: usize) -> String {
    format!(
        "Data da ligação: {} ({})\nDuração: {:.1} s\n\nTranscrição:\n{}",
        call_date.format("%Y-%m-%d"),
        weekday_pt(call_date),
        duration(t),
        transcript(t, max_chars)
    )
}

/// The scorecard request: the template's items and the transcript.
pub fn scorecard_message(
    t: &Transcription,
    template: &ScorecardTemplate,
    max_chars: usize,
) -> String {
    let items: String = template
        .items
        .iter()
        .map(|i| format!("- {} (peso {}): {}\n", i.item, i.weight, i.criteria))
        .collect();
    format!(
        "Modelo de avaliação: {}\nItens:\n{items}\nTranscrição:\n{}",
        template.name,
        transcript(t, max_chars)
    )
}

/// The call's length: the last utterance or word end.
pub fn duration(t: &Transcription) -> f64 {
    let u = t.utterances.iter().map(|u| u.end);
    let w = t.words.iter().map(|w| w.end);
    u.chain(w).fold(0.0, f64::max)
}

/// One line per utterance, `[12.3s] Falante 1: …`; the plain text when not diarized.
/// Too long: the beginning and end are kept and the middle replaced by a marker.
pub fn transcript(t: &Transcription, max_chars: usize) -> String {
    let full = if t.utterances.is_empty() {
        t.text.clone()
    } else {
        t.utterances
            .iter()
            .map(|u| format!("[{:.1}s] Falante {}: {}", u.start, u.speaker, u.text.trim()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let count = full.chars().count();
    if max_chars == 0 || count <= max_chars {
        return full;
    }
    let half = max_chars / 2;
    let head: String = full.chars().take(half).collect();
    let tail: String = full.chars().skip(count - half).collect();
    format!("{head}\n[… trecho do meio omitido por tamanho …]\n{tail}")
}

fn weekday_pt(d: NaiveDate) -> &'static str {
    use chrono::Datelike;
    match d.weekday() {
        chrono::Weekday::Mon => "segunda-feira",
        chrono::Weekday::Tue => "terça-feira",
        chrono::Weekday::Wed => "quarta-feira",
        chrono::Weekday::Thu => "quinta-feira",
        chrono::Weekday::Fri => "sexta-feira",
        chrono::Weekday::Sat => "sábado",
        chrono::Weekday::Sun => "domingo",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_files_have_versions() {
        assert_eq!(analysis_prompt().unwrap().version, "analysis@1");
        assert_eq!(scorecard_prompt().unwrap().version, "scorecard@1");
        assert!(parse("x", "no header\nbody").is_err());
    }

    #[test]
    fn long_transcripts_lose_their_middle() {
        let t = Transcription {
            language: "pt-BR".into(),
            provider: "x".into(),
            text: "a".repeat(50) + &"b".repeat(50),
            words: vec![],
            utterances: vec![],
        };
        let cut = transcript(&t, 20);
        assert!(cut.starts_with(&"a".repeat(10)) && cut.ends_with(&"b".repeat(10)));
        assert!(cut.contains("omitido"));
    }
}
