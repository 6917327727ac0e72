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

#[cfg(test)]
mod tests {
    #[test]
    fn case_and_accents_fold_away() {
        assert_eq!(
            super::fold("Tá BOM, Horário, ação, Über"),
            "ta bom, horario, acao, uber"
        );
    }
}
