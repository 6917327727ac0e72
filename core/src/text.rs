//! Comparing what people say: words match without case or Portuguese accents, so "Tá",
//! "tá" and "ta", or "horário" and "HORARIO", are one word. Used by the barge-in
//! backchannels, the hand-over phrases, the knowledge store and the prompt guard.

/// Lower case without accents.
pub fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            other => other,
        })
        .collect()
}

/// Whether `text` has at least one word and every word is one of `words` (both folded):
/// "Aham, tá." is only backchannels.
pub fn only_words_from(text: &str, words: &[String]) -> bool {
    let normalized = fold(text);
    let mut said = normalized
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .peekable();
    said.peek().is_some() && said.all(|w| words.iter().any(|b| fold(b) == w))
}

#[cfg(test)]
mod tests {
    #[test]
    fn case_and_accents_fold_away() {
        assert_eq!(
            super::fold("Tá BOM, Horário, ação, Über"),
            "ta bom, horario, acao, uber"
        );
    }

    #[test]
    fn only_words_from_a_list() {
        let list = vec!["aham".to_string(), "tá".to_string()];
        assert!(super::only_words_from("Aham, ta.", &list));
        assert!(!super::only_words_from("aham, espera", &list));
        assert!(!super::only_words_from(" ... ", &list));
    }
}
