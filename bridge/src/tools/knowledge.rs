//! The tenant's knowledge for `lookup_knowledge`: a small keyword store over entries from
//! the agent's settings. Words are compared without case and accents, so "horario" finds
//! "Horário". The tenancy work replaces it with PostgreSQL full-text search.

use serde::{Deserialize, Serialize};
use voice_core::text::fold;

/// Hits returned per lookup: enough context, little enough to keep the model quick.
const MAX_HITS: usize = 3;

/// One piece of knowledge, e.g. `{ title = "Horário", text = "Seg a sex, 8h às 18h." }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeEntry {
    pub title: String,
    pub text: String,
    /// Extra words that should find this entry (synonyms, common misspellings).
    #[serde(default)]
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnowledgeHit {
    pub title: String,
    pub text: String,
}

/// The best entries for `query`, best first; empty when no word matches.
pub fn search(entries: &[KnowledgeEntry], query: &str) -> Vec<KnowledgeHit> {
    let terms = words(query);
    if terms.is_empty() {
        return Vec::new();
    }
    let mut scored: Vec<(u32, usize)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let title = words(&entry.title);
            let keywords = words(&entry.keywords.join(" "));
            let text = words(&entry.text);
            // A word in the title or keywords says more than one in the body.
            let score: u32 = terms
                .iter()
                .map(|t| {
                    if title.contains(t) || keywords.contains(t) {
                        3
                    } else if text.contains(t) {
                        1
                    } else {
                        0
                    }
                })
                .sum();
            (score > 0).then_some((score, i))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(MAX_HITS)
        .map(|(_, i)| KnowledgeHit {
            title: entries[i].title.clone(),
            text: entries[i].text.clone(),
        })
        .collect()
}

/// Lower-case, accent-free words of 3+ letters that are not Portuguese or English
/// function words.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(fold)
        .filter(|w| w.chars().count() >= 3 && !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

const STOP_WORDS: &[&str] = &[
    "que", "para", "com", "por", "uma", "uns", "umas", "dos", "das", "nos", "nas", "num", "numa",
    "como", "qual", "quais", "quando", "onde", "voces", "voce", "isso", "esse", "essa", "este",
    "esta", "sobre", "mais", "menos", "tem", "ter", "sao", "ser", "estar", "the", "and", "for",
    "what", "when", "where", "your", "you", "are", "how", "with",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<KnowledgeEntry> {
        vec![
            KnowledgeEntry {
                title: "Horário de funcionamento".into(),
                text: "Segunda a sexta, das 8h às 18h; sábado até o meio-dia.".into(),
                keywords: vec!["abre".into(), "fecha".into()],
            },
            KnowledgeEntry {
                title: "Endereço".into(),
                text: "Rua das Flores, 100, Centro. Estacionamento na rua de trás.".into(),
                keywords: vec!["localização".into()],
            },
            KnowledgeEntry {
                title: "Preço da consulta".into(),
                text: "A consulta particular custa R$ 250; aceitamos convênios.".into(),
                keywords: vec!["valor".into(), "custa".into()],
            },
        ]
    }

    #[test]
    fn finds_by_title_keywords_and_text_without_accents() {
        let hits = search(&entries(), "que horario voces abrem? abre sabado?");
        assert_eq!(hits[0].title, "Horário de funcionamento");
        let hits = search(&entries(), "qual o valor da consulta");
        assert_eq!(hits[0].title, "Preço da consulta");
        let hits = search(&entries(), "LOCALIZACAO");
        assert_eq!(hits[0].title, "Endereço");
        let hits = search(&entries(), "estacionamento");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].title, "Endereço");
    }

    #[test]
    fn nothing_matches_nothing() {
        assert!(search(&entries(), "pizza").is_empty());
        assert!(search(&entries(), "que para com").is_empty());
        assert!(search(&[], "horário").is_empty());
    }

    #[test]
    fn the_title_outranks_the_body() {
        let mut list = entries();
        list.push(KnowledgeEntry {
            title: "Convênios".into(),
            text: "Unimed, Amil e Bradesco Saúde.".into(),
            keywords: vec![],
        });
        let hits = search(&list, "convênios");
        assert_eq!(hits[0].title, "Convênios");
        assert_eq!(hits[1].title, "Preço da consulta");
    }
}
