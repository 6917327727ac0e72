//! Cuts the LLM's streaming text into pieces worth speaking: whole sentences, or clauses
//! when a sentence runs long, so the first audio starts after the first clause rather
//! than the whole answer. The first piece of an answer is cut at its first clause already
//! (a model writes a 12-word sentence in about 200 ms; the caller waits for all of it). Portuguese abbreviations ("Sr.", "Dra.", "Av.") and numbers
//! ("1.500", "R$ 2,50") do not end a piece.

/// Words that end with a period without ending the sentence (folded, without the period).
const ABBREVIATIONS: &[&str] = &[
    "sr", "sra", "srta", "dr", "dra", "prof", "profa", "av", "r", "n", "no", "nº", "pág", "pag",
    "tel", "etc", "ex", "obs", "aprox", "min", "máx", "max", "mr", "mrs", "ms", "st", "vs", "jr",
];

/// The shortest first piece cut at a clause: "Claro," alone is too short to say well.
const FIRST_CLAUSE_MIN_CHARS: usize = 12;

/// Splits streaming text into speakable pieces.
#[derive(Debug)]
pub struct SentenceSplitter {
    buf: String,
    /// A clause (`,` `;` `:`) ends a piece once the piece is at least this long…
    clause_min_chars: usize,
    /// …or this long, for the answer's first piece.
    first_clause_min_chars: usize,
    /// Pieces given out so far.
    pieces_out: usize,
    /// With no boundary at all, a piece is cut at a space past this length.
    max_chars: usize,
}

impl Default for SentenceSplitter {
    fn default() -> Self {
        Self::new(60, 250)
    }
}

impl SentenceSplitter {
    pub fn new(clause_min_chars: usize, max_chars: usize) -> Self {
        Self {
            buf: String::new(),
            clause_min_chars,
            first_clause_min_chars: clause_min_chars.min(FIRST_CLAUSE_MIN_CHARS),
            pieces_out: 0,
            max_chars: max_chars.max(clause_min_chars + 1),
        }
    }

    /// Adds streamed text; returns the pieces it completed, in order.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buf.push_str(text);
        let mut pieces = Vec::new();
        while let Some(end) = self.boundary() {
            let rest = self.buf.split_off(end);
            let piece = std::mem::replace(&mut self.buf, rest.trim_start().to_string());
            let piece = piece.trim().to_string();
            if piece.chars().any(char::is_alphanumeric) {
                pieces.push(piece);
                self.pieces_out += 1;
            }
        }
        pieces
    }

    /// The text left when the stream ends.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        let rest = rest.trim();
        (!rest.is_empty()).then(|| rest.to_string())
    }

    /// Byte index just past the first piece in `buf`, if one is complete. A boundary needs
    /// the character after it (a space), so "1." followed by "500" is not cut early.
    fn boundary(&self) -> Option<usize> {
        let chars: Vec<(usize, char)> = self.buf.char_indices().collect();
        let clause_min = if self.pieces_out == 0 {
            self.first_clause_min_chars
        } else {
            self.clause_min_chars
        };
        let mut last_space = None;
        for (i, &(at, c)) in chars.iter().enumerate() {
            let next = chars.get(i + 1).map(|&(_, n)| n);
            if c.is_whitespace() {
                if c == '\n' && at > 0 {
                    return Some(at + 1);
                }
                // Just past it: a no-break space (U+00A0, "R$ 150") is more than a byte.
                last_space = Some(at + c.len_utf8());
            }
            let Some(next) = next else {
                // "!" and "?" end a sentence with nothing after them; "." waits for what
                // follows ("1." may be "1.500").
                if matches!(c, '!' | '?' | '…') {
                    return Some(at + c.len_utf8());
                }
                break;
            };
            let ends = |n: char| n.is_whitespace() || n == '"' || n == '”' || n == ')';
            match c {
                '.' | '!' | '?' | '…' if ends(next) => {
                    if c == '.' && self.is_abbreviation(at) {
                        continue;
                    }
                    return Some(at + c.len_utf8());
                }
                ',' | ';' | ':'
                    if next.is_whitespace() && self.buf[..at].chars().count() >= clause_min =>
                {
                    return Some(at + 1);
                }
                _ => {}
            }
            if at >= self.max_chars {
                if let Some(after_space) = last_space {
                    return Some(after_space);
                }
            }
        }
        None
    }

    /// The word before the period at `dot` is a known abbreviation or a lone digit/letter.
    fn is_abbreviation(&self, dot: usize) -> bool {
        let word = self.buf[..dot]
            .rsplit(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("");
        let word = crate::text::fold(word);
        ABBREVIATIONS.contains(&word.as_str())
            || (word.chars().count() == 1 && word.chars().all(char::is_alphabetic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&str]) -> Vec<String> {
        let mut s = SentenceSplitter::default();
        let mut out: Vec<String> = chunks.iter().flat_map(|c| s.push(c)).collect();
        out.extend(s.finish());
        out
    }

    #[test]
    fn sentences_come_out_as_soon_as_they_end() {
        let mut s = SentenceSplitter::default();
        assert!(s.push("Olá, tudo").is_empty());
        assert_eq!(
            s.push(" bem?"),
            vec!["Olá, tudo bem?"],
            "? needs nothing after it"
        );
        assert!(
            s.push(" Posso ajudar.").is_empty(),
            "a period waits for what follows"
        );
        assert_eq!(s.push("\n"), vec!["Posso ajudar."]);
        assert_eq!(s.push("Sério?!"), vec!["Sério?!"]);
        // Streamed apart, the "!" after a cut "?" is no piece of its own.
        assert_eq!(s.push("Mesmo?"), vec!["Mesmo?"]);
        assert!(s.push("! ").is_empty(), "a lone \"!\" is not a piece");
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn abbreviations_and_numbers_do_not_cut() {
        assert_eq!(
            split_all(&[
                "O Dr. Silva atende na Av. Paulista, ",
                "nº 1.500. Custa R$ 2,50. Ok!"
            ]),
            vec![
                "O Dr. Silva atende na Av. Paulista,",
                "nº 1.500.",
                "Custa R$ 2,50.",
                "Ok!"
            ]
        );
    }

    #[test]
    fn long_sentences_are_cut_at_clauses_and_spaces() {
        let long = "Nosso horário de atendimento é de segunda a sexta-feira, das oito às dezoito horas, e aos sábados até o meio-dia";
        let pieces = split_all(&[long]);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        // The first piece is cut at its first clause, to start speaking sooner…
        assert!(pieces[0].ends_with("sexta-feira,"), "{pieces:?}");
        // …later ones only once they are long enough.
        let pieces = split_all(&["Claro. ", long]);
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        assert!(pieces[1].ends_with("horas,"), "{pieces:?}");
        let words = "palavra ".repeat(60);
        let pieces = split_all(&[&words]);
        assert!(pieces.len() >= 2, "{pieces:?}");
        assert!(pieces.iter().all(|p| p.len() <= 260), "{pieces:?}");
        assert_eq!(pieces.join(" "), words.trim());
    }

    #[test]
    fn a_long_piece_cut_at_a_no_break_space_does_not_split_a_character() {
        let text = "preço\u{a0}R$\u{a0}150 ".repeat(30);
        let pieces = split_all(&[&text]);
        assert!(pieces.len() >= 2, "{pieces:?}");
        assert_eq!(
            pieces
                .concat()
                .chars()
                .filter(|c| c.is_alphanumeric())
                .count(),
            text.chars().filter(|c| c.is_alphanumeric()).count()
        );
    }

    #[test]
    fn token_by_token_gives_the_same_pieces() {
        let text = "Claro! O Sr. João pode ligar amanhã. Obrigado.";
        let tokens: Vec<String> = text.chars().map(String::from).collect();
        let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
        assert_eq!(split_all(&refs), split_all(&[text]));
        assert_eq!(
            split_all(&[text]),
            vec!["Claro!", "O Sr. João pode ligar amanhã.", "Obrigado."]
        );
    }
}
