//! The built-in scorecard template and the rules every template follows.

use std::collections::HashSet;

use crate::calls::model::{ScorecardTemplate, TemplateItem};

const MAX_ITEMS: usize = 30;
const MAX_NAME_CHARS: usize = 100;

/// The pt-BR sales discovery template (`diagnostico`), used when a tenant has none.
pub fn default_template() -> ScorecardTemplate {
    let item = |name: &str, weight: f64, criteria: &str| TemplateItem {
        item: name.into(),
        weight,
        criteria: criteria.into(),
    };
    ScorecardTemplate {
        id: None,
        key: "diagnostico".into(),
        name: "Diagnóstico de vendas".into(),
        items: vec![
            item("Abertura", 10.0, "Apresentou-se, confirmou o interlocutor e o objetivo da ligação e pediu permissão para seguir."),
            item("Dor", 25.0, "Investigou com perguntas abertas o problema do cliente, seu impacto e urgência."),
            item("Orçamento", 15.0, "Entendeu se há orçamento disponível, a faixa de investimento e quem aprova."),
            item("Decisão", 15.0, "Mapeou quem decide, o processo de compra e o prazo da decisão."),
            item("Apresentação da solução", 15.0, "Ligou a solução às dores levantadas, sem despejar funcionalidades."),
            item("Próximos passos", 20.0, "Combinou um próximo passo concreto, com data e responsável."),
        ],
    }
}

/// 1 ..= 30 items; names non-empty, unique (any case), at most 100 characters; weights in
/// (0, 100].
pub fn validate_template(items: &[TemplateItem]) -> Result<(), String> {
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(format!(
            "a template has 1 to {MAX_ITEMS} items, not {}",
            items.len()
        ));
    }
    let mut seen = HashSet::new();
    for (i, it) in items.iter().enumerate() {
        let name = it.item.trim();
        if name.is_empty() {
            return Err(format!("items[{i}]: the name is empty"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(format!(
                "items[{i}]: the name is longer than {MAX_NAME_CHARS} characters"
            ));
        }
        if !seen.insert(name.to_lowercase()) {
            return Err(format!("items[{i}]: the name {name:?} is repeated"));
        }
        if !(it.weight > 0.0 && it.weight <= 100.0) {
            return Err(format!(
                "items[{i}] ({name}): the weight must be above 0 and at most 100"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_rules_hold() {
        let d = default_template();
        assert_eq!((d.key.as_str(), d.id), ("diagnostico", None));
        validate_template(&d.items).unwrap();
        assert!(validate_template(&[]).is_err());
        let mut dup = d.items.clone();
        dup[1].item = "ABERTURA".into();
        assert!(validate_template(&dup).unwrap_err().contains("repeated"));
        let mut heavy = d.items.clone();
        heavy[0].weight = 0.0;
        assert!(validate_template(&heavy).is_err());
        heavy[0].weight = 101.0;
        assert!(validate_template(&heavy).is_err());
        let mut long = d.items;
        long[0].item = "x".repeat(101);
        assert!(validate_template(&long).is_err());
    }
}
