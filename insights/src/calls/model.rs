//! What the pipeline makes of a call, shared by its stages, the store, the API and the panel.
//!
//! Times are seconds from the start of the recording. JSON names are camelCase, as the
//! API of seed 000 shows them (`dueDate`, `templateKey`, `totalScore`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One recognised word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Word {
    pub word: String,
    pub start: f64,
    pub end: f64,
    /// Diarized speaker (or channel, for stereo recordings); `None`: not diarized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

/// One speaker's stretch of speech.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Utterance {
    /// 0, 1, …: diarized speaker, or the channel of a stereo recording (our bridge records
    /// the caller on channel 0 and the agent on channel 1).
    pub speaker: u32,
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// A whole call's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transcription {
    /// BCP-47, `pt-BR` by default.
    pub language: String,
    /// Which transcriber made it: `deepgram`, `openai`.
    pub provider: String,
    pub text: String,
    pub words: Vec<Word>,
    /// By speaker, in time order.
    pub utterances: Vec<Utterance>,
}

/// A part of the conversation: abertura, descoberta, apresentação, objeções, fechamento …
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentPart {
    pub label: String,
    pub start_sec: f64,
    pub end_sec: f64,
    pub excerpt: String,
}

/// Something to do after the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NextAction {
    pub title: String,
    /// `YYYY-MM-DD`; `None` when the call set no date.
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
}

/// What the LLM made of the call, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallInsights {
    pub summary: String,
    pub pain_points: Vec<String>,
    pub objections: Vec<String>,
    pub next_actions: Vec<NextAction>,
    pub tags: Vec<String>,
}

/// The analysis stage's result: segments and insights, and what produced them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    pub segments: Vec<SegmentPart>,
    pub insights: CallInsights,
    /// The model that answered.
    pub model: String,
    /// The prompt file's version (`analysis@3`).
    pub prompt_version: String,
}

/// One item of a scorecard template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateItem {
    /// Its name, shown and matched (`Dor`, `Próximos passos`).
    pub item: String,
    /// Points it is worth; a score is between 0 and this.
    pub weight: f64,
    /// What earns the points, for the model and for people.
    #[serde(default)]
    pub criteria: String,
}

/// A tenant's scorecard template (table `scorecard_templates`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScorecardTemplate {
    /// `None` for the built-in template (no row).
    pub id: Option<Uuid>,
    pub key: String,
    pub name: String,
    pub items: Vec<TemplateItem>,
}

/// One scored item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoredItem {
    pub item: String,
    pub weight: f64,
    /// 0 ..= weight.
    pub score: f64,
    #[serde(default)]
    pub reason: String,
}

/// A call's score against one template: the items' scores and their sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scorecard {
    pub template_id: Option<Uuid>,
    pub template_key: String,
    pub items: Vec<ScoredItem>,
    /// Sum of the scores.
    pub total_score: f64,
    /// Sum of the weights.
    pub max_score: f64,
}
