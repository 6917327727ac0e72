//! What the fake answers: the scripted reply, a rule's tool calls, or a reply quoting
//! tool results; cut into word-ish tokens and capped at the request's `max_tokens`.

use super::stats::RecordedRequest;
use super::{FakeLlmConfig, ScriptedCall};

/// What the answer responds to: the conversation's last message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Last {
    User(String),
    /// The outputs of the tool results that end the conversation.
    ToolResults(Vec<String>),
    Assistant,
}

/// A request that passed the checks.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub record: RecordedRequest,
    pub last: Last,
    /// Send the usage chunk (OpenAI `stream_options.include_usage`).
    pub include_usage: bool,
}

/// Why the answer stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Done,
    ToolCalls,
    /// `max_tokens` cut it.
    Length,
}

/// A tool call with the id the fake gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Text deltas, in order.
    pub tokens: Vec<String>,
    pub calls: Vec<Call>,
    pub stop: Stop,
}

/// The answer to `parsed`; tool call ids start with `id_prefix` (`call_`, `toolu_`).
pub(crate) fn answer(cfg: &FakeLlmConfig, parsed: &Parsed, id_prefix: &str) -> Answer {
    let (text, calls): (String, &[ScriptedCall]) = match &parsed.last {
        Last::ToolResults(outputs) => (
            cfg.after_tool_result
                .replace("{result}", &outputs.join("; ")),
            &[],
        ),
        Last::User(said) => {
            let said = said.to_lowercase();
            let declared = &parsed.record.tools;
            let rule = cfg.tool_rules.iter().find(|r| {
                said.contains(&r.when_user_says.to_lowercase())
                    && r.calls.iter().all(|c| declared.contains(&c.name))
            });
            match rule {
                Some(rule) => (rule.say_first.clone(), &rule.calls),
                None => (scripted_reply(cfg, parsed), &[]),
            }
        }
        Last::Assistant => (scripted_reply(cfg, parsed), &[]),
    };
    let mut tokens = tokens(&text, cfg.wire.words_per_chunk);
    let mut calls: Vec<Call> = calls
        .iter()
        .map(|c| Call {
            id: format!(
                "{id_prefix}{}",
                &uuid::Uuid::new_v4().simple().to_string()[..24]
            ),
            name: c.name.clone(),
            arguments: c.arguments.clone(),
        })
        .collect();
    let mut stop = if calls.is_empty() {
        Stop::Done
    } else {
        Stop::ToolCalls
    };
    if let Some(max) = parsed.record.max_tokens {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        if tokens.len() > max {
            tokens.truncate(max);
            calls.clear();
            stop = Stop::Length;
        }
    }
    Answer {
        tokens,
        calls,
        stop,
    }
}

/// The first matching reply rule's next reply, or the default reply.
fn scripted_reply(cfg: &FakeLlmConfig, parsed: &Parsed) -> String {
    let system = parsed.record.system.to_lowercase();
    cfg.reply_rules
        .iter()
        .find(|r| system.contains(&r.when_system_contains.to_lowercase()))
        .map_or_else(|| cfg.reply_text.clone(), |r| r.next_reply())
}

/// `text` in pieces of `words` words, each word with its trailing space.
pub(crate) fn tokens(text: &str, words: usize) -> Vec<String> {
    let all: Vec<&str> = text.split_inclusive(' ').collect();
    all.chunks(words.max(1)).map(|c| c.concat()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_llm::stats::Api;
    use crate::fake_llm::ToolRule;

    fn parsed(last: Last, tools: &[&str], max_tokens: Option<u64>) -> Parsed {
        Parsed {
            record: RecordedRequest {
                api: Api::ChatCompletions,
                model: "m".into(),
                system: String::new(),
                messages: vec![],
                tools: tools.iter().map(|t| t.to_string()).collect(),
                max_tokens,
            },
            last,
            include_usage: false,
        }
    }

    fn cfg() -> FakeLlmConfig {
        FakeLlmConfig {
            reply_text: "Olá, tudo bem?".into(),
            tool_rules: vec![ToolRule {
                when_user_says: "TELEFONE".into(),
                say_first: "Vou ver.".into(),
                calls: vec![ScriptedCall::new("lookup", "{\"phone\":\"11\"}")],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn rules_apply_only_to_declared_tools() {
        let said = Last::User("meu telefone é 11".into());
        let a = answer(&cfg(), &parsed(said.clone(), &["lookup"], None), "call_");
        assert_eq!(a.tokens.concat(), "Vou ver.");
        assert_eq!((a.calls.len(), a.stop), (1, Stop::ToolCalls));
        assert!(a.calls[0].id.starts_with("call_") && a.calls[0].id.len() == 29);
        let undeclared = answer(&cfg(), &parsed(said, &[], None), "call_");
        assert_eq!(undeclared.tokens, ["Olá, ", "tudo ", "bem?"]);
        assert_eq!((undeclared.calls.len(), undeclared.stop), (0, Stop::Done));
    }

    #[test]
    fn tool_results_are_quoted_and_max_tokens_cuts() {
        let results = Last::ToolResults(vec!["Ana".into(), "ok".into()]);
        let a = answer(&cfg(), &parsed(results, &[], None), "toolu_");
        assert_eq!(a.tokens.concat(), "Pronto, encontrei: Ana; ok.");
        let said = Last::User("meu telefone".into());
        let cut = answer(&cfg(), &parsed(said, &["lookup"], Some(1)), "call_");
        assert_eq!(
            (cut.tokens.len(), cut.calls.len(), cut.stop),
            (1, 0, Stop::Length)
        );
        assert_eq!(tokens("a b c d e", 2), ["a b ", "c d ", "e"]);
    }

    #[test]
    fn reply_rules_go_in_turn_and_json_survives_chunking() {
        let json = "{\"a\": [1,  2],\n \"b\": \"x y\"}";
        let cfg = FakeLlmConfig {
            reply_rules: vec![crate::fake_llm::ReplyRule::new(
                "ANALISE",
                vec!["primeira".into(), json.into()],
            )],
            ..cfg()
        };
        let mut p = parsed(Last::User("oi".into()), &[], None);
        p.record.system = "Faça a análise: analise".into();
        let texts: Vec<String> = (0..3)
            .map(|_| answer(&cfg, &p, "call_").tokens.concat())
            .collect();
        assert_eq!(texts, ["primeira", json, json]);
        p.record.system = "outro".into();
        assert_eq!(answer(&cfg, &p, "call_").tokens.concat(), "Olá, tudo bem?");
    }
}
