//! Text → one phoneme string per sentence (providers.md §7.3 steps 2–3).
//!
//! Clauses are split here, not by espeak-ng: 1.51's `espeak_TextToPhonemes` does not say
//! which punctuation ended a clause, and the voices were trained with it in the phonemes.
//! A clause ends at `. ? ! , : ; …` followed by whitespace or the end of the text (so
//! `3.5` and `e.g.x` stay whole); closing quotes and brackets may follow the punctuation.
//! Its punctuation is appended to its phonemes, plus a space after `, : ;`; `. ? !` end
//! the sentence, and each sentence is synthesized on its own.

/// A piece of text up to and including the punctuation that ended it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause<'a> {
    /// The clause with its punctuation (what espeak-ng is given).
    pub text: &'a str,
    /// The clause without the punctuation run (a `text` voice's phonemes).
    pub words: &'a str,
    /// `.`, `?`, `!`, `,`, `:` or `;`; none for text that ends without punctuation.
    pub end: Option<char>,
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '?' | '!' | ',' | ':' | ';' | '…')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | '”' | '’' | ')' | ']' | '}' | '»')
}

/// The punctuation a run such as `?!` or `..."` stands for: question beats exclamation
/// beats period, which beat the clause marks.
fn classify(run: &str) -> Option<char> {
    let has = |c: char| run.contains(c);
    if has('?') {
        Some('?')
    } else if has('!') {
        Some('!')
    } else if has('.') || has('…') {
        Some('.')
    } else {
        run.chars().find(|&c| matches!(c, ',' | ':' | ';'))
    }
}

pub fn is_sentence_end(c: char) -> bool {
    matches!(c, '.' | '?' | '!')
}

/// Splits `text` into clauses (blank ones left out).
pub fn split_clauses(text: &str) -> Vec<Clause<'_>> {
    let mut clauses = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if !is_terminator(c) {
            continue;
        }
        let mut end = at + c.len_utf8();
        while let Some(&(i, next)) = chars.peek() {
            if !(is_terminator(next) || is_closer(next)) {
                break;
            }
            end = i + next.len_utf8();
            chars.next();
        }
        let at_boundary = chars.peek().is_none_or(|&(_, next)| next.is_whitespace());
        if !at_boundary {
            continue;
        }
        push(&mut clauses, &text[start..end]);
        start = end;
    }
    if start < text.len() {
        push(&mut clauses, &text[start..]);
    }
    clauses
}

/// Adds `piece` as a clause unless it is blank.
fn push<'a>(clauses: &mut Vec<Clause<'a>>, piece: &'a str) {
    let trimmed = piece.trim();
    if trimmed.is_empty() {
        return;
    }
    let words_end = piece
        .trim_end()
        .trim_end_matches(|c: char| is_terminator(c) || is_closer(c))
        .len();
    let run = &piece.trim_end()[words_end..];
    clauses.push(Clause {
        text: trimmed,
        words: piece[..words_end].trim(),
        end: classify(run),
    });
}

/// One phoneme string per sentence: `phonemize` turns a clause into phonemes (espeak-ng
/// for most voices); language-switch marks such as `(en)` are removed and the clause's
/// punctuation appended. Sentences with no phonemes are left out.
pub fn sentences(
    text: &str,
    mut phonemize: impl FnMut(&Clause<'_>) -> Result<String, String>,
) -> Result<Vec<String>, String> {
    let mut sentences = Vec::new();
    let mut current = String::new();
    for clause in split_clauses(text) {
        let phonemes = without_language_flags(&phonemize(&clause)?);
        let phonemes = phonemes.trim();
        if !phonemes.is_empty() {
            if !current.is_empty() && !current.ends_with(' ') {
                current.push(' ');
            }
            current.push_str(phonemes);
            if let Some(end) = clause.end {
                current.push(end);
                if matches!(end, ',' | ':' | ';') {
                    current.push(' ');
                }
            }
        }
        if clause.end.is_some_and(is_sentence_end) {
            finish(&mut sentences, &mut current);
        }
    }
    finish(&mut sentences, &mut current);
    Ok(sentences)
}

fn finish(sentences: &mut Vec<String>, current: &mut String) {
    let sentence = current.trim_end();
    if !sentence.is_empty() {
        sentences.push(sentence.to_string());
    }
    current.clear();
}

/// Removes espeak-ng's language-switch marks: `(en)hˈɛloʊ(pt)` → `hˈɛloʊ`.
pub fn without_language_flags(phonemes: &str) -> String {
    let mut out = String::with_capacity(phonemes.len());
    let mut rest = phonemes;
    while let Some(open) = rest.find('(') {
        match rest[open + 1..].find(')') {
            Some(len) if len > 0 => {
                out.push_str(&rest[..open]);
                rest = &rest[open + 1 + len + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}
