//! Strict checks of the model's scorecard answer against the template. The totals are ours.

use serde::Deserialize;
use serde_json::Value;

use super::validate::json_object;
use crate::calls::model::{Scorecard, ScorecardTemplate, ScoredItem};

#[derive(Deserialize)]
struct RawScorecard {
    items: Vec<RawItem>,
}

#[derive(Deserialize)]
struct RawItem {
    item: String,
    score: f64,
    #[serde(default)]
    reason: String,
}

/// Exactly the template's items (by name, any case), each 0 ..= weight; any total the model
/// sends is ignored.
pub fn scorecard(answer: &str, template: &ScorecardTemplate) -> Result<Scorecard, String> {
    let object = json_object(answer)?;
    let raw: RawScorecard = serde_json::from_value(Value::Object(object))
        .map_err(|e| format!("the JSON does not match the schema: {e}"))?;
    let mut scored: Vec<Option<ScoredItem>> = vec![None; template.items.len()];
    for got in raw.items {
        let name = got.item.trim();
        let Some(i) = template
            .items
            .iter()
            .position(|t| t.item.trim().to_lowercase() == name.to_lowercase())
        else {
            return Err(format!("item {name:?} is not in the template"));
        };
        let want = &template.items[i];
        if scored[i].is_some() {
            return Err(format!("item {:?} is scored twice", want.item));
        }
        if !got.score.is_finite() || got.score < 0.0 || got.score > want.weight {
            return Err(format!(
                "item {:?}: score {} must be between 0 and its weight {}",
                want.item, got.score, want.weight
            ));
        }
        scored[i] = Some(ScoredItem {
            item: want.item.clone(),
            weight: want.weight,
            score: got.score,
            reason: got.reason.trim().to_string(),
        });
    }
    let missing: Vec<&str> = template
        .items
        .iter()
        .zip(&scored)
        .filter(|(_, s)| s.is_none())
        .map(|(t, _)| t.item.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(format!("items missing: {}", missing.join(", ")));
    }
    let items: Vec<ScoredItem> = scored.into_iter().flatten().collect();
    Ok(Scorecard {
        template_id: template.id,
        template_key: template.key.clone(),
        total_score: items.iter().map(|i| i.score).sum(),
        max_score: template.items.iter().map(|i| i.weight).sum(),
        items,
    })
}
