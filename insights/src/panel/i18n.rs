//! The panel's words in Brazilian Portuguese (the default) and English. The language comes
//! from `?lang=`, then the `panel_lang` cookie, then `Accept-Language`.

/// A language the panel speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Pt,
    En,
}

impl Lang {
    /// `pt`, `pt-BR`, `en`, `en-US` … (case-insensitive); anything else: `None`.
    pub fn parse(text: &str) -> Option<Lang> {
        let primary = text.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "pt" => Some(Lang::Pt),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Pt => "pt-BR",
            Lang::En => "en",
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::Pt => &PT,
            Lang::En => &EN,
        }
    }
}

/// The first language we speak from `?lang=`, the cookie, then `Accept-Language` (in the
/// order the browser lists them; quality values are ignored: browsers list best first).
pub fn choose(query: Option<&str>, cookie: Option<&str>, accept: Option<&str>) -> Lang {
    if let Some(lang) = query.and_then(Lang::parse) {
        return lang;
    }
    if let Some(lang) = cookie.and_then(Lang::parse) {
        return lang;
    }
    accept
        .into_iter()
        .flat_map(|a| a.split(','))
        .filter_map(|part| Lang::parse(part.split(';').next().unwrap_or("")))
        .next()
        .unwrap_or(Lang::Pt)
}

/// Every word the pages show.
pub struct Text {
    pub title: &'static str,
    pub calls: &'static str,
    pub live: &'static str,
    pub logout: &'static str,
    pub login: &'static str,
    pub login_intro: &'static str,
    pub login_key: &'static str,
    pub login_tenant_only: &'static str,
    pub login_failed: &'static str,
    pub login_platform: &'static str,
    pub date: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub agent: &'static str,
    pub duration: &'static str,
    pub status: &'static str,
    pub tags: &'static str,
    pub tag: &'static str,
    pub score: &'static str,
    pub date_from: &'static str,
    pub date_to: &'static str,
    pub search: &'static str,
    pub search_placeholder: &'static str,
    pub filter: &'static str,
    pub clear: &'static str,
    pub any: &'static str,
    pub no_calls: &'static str,
    pub previous: &'static str,
    pub next: &'static str,
    pub page: &'static str,
    pub of_total: &'static str,
    pub back_to_calls: &'static str,
    pub call: &'static str,
    pub facts: &'static str,
    pub started: &'static str,
    pub ended: &'static str,
    pub consent: &'static str,
    pub source: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub unknown: &'static str,
    pub stages: &'static str,
    pub recording: &'static str,
    pub no_recording: &'static str,
    pub no_listen: &'static str,
    pub transcript: &'static str,
    pub no_transcript: &'static str,
    pub speaker: &'static str,
    pub caller: &'static str,
    pub attendant: &'static str,
    pub segments: &'static str,
    pub insights: &'static str,
    pub no_insights: &'static str,
    pub summary: &'static str,
    pub pain_points: &'static str,
    pub objections: &'static str,
    pub next_actions: &'static str,
    pub due: &'static str,
    pub scorecard: &'static str,
    pub no_scorecard: &'static str,
    pub item: &'static str,
    pub weight: &'static str,
    pub reason: &'static str,
    pub total: &'static str,
    pub crm: &'static str,
    pub no_crm: &'static str,
    pub action: &'static str,
    pub when: &'static str,
    pub error: &'static str,
    pub live_intro: &'static str,
    pub no_live: &'static str,
    pub live_connected: &'static str,
    pub live_reconnecting: &'static str,
    pub elapsed: &'static str,
    pub not_found: &'static str,
    pub language: &'static str,
}

impl Text {
    /// A call status as people read it.
    pub fn status(&self, status: &str) -> &'static str {
        let pt = std::ptr::eq(self, &PT);
        match (status, pt) {
            ("received", true) => "Recebida",
            ("received", false) => "Received",
            ("downloading", true) => "Baixando",
            ("downloading", false) => "Downloading",
            ("transcribing", true) => "Transcrevendo",
            ("transcribing", false) => "Transcribing",
            ("analyzing", true) => "Analisando",
            ("analyzing", false) => "Analyzing",
            ("scoring", true) => "Pontuando",
            ("scoring", false) => "Scoring",
            ("processed", true) => "Processada",
            ("processed", false) => "Processed",
            ("failed", true) => "Falhou",
            ("failed", false) => "Failed",
            ("skipped_no_consent", true) => "Sem consentimento",
            ("skipped_no_consent", false) => "No consent",
            (_, true) => "Desconhecido",
            (_, false) => "Unknown",
        }
    }
}

/// Pipeline stages in order, with their names in each language.
pub const STAGES: [(&str, &str, &str); 5] = [
    ("download", "Download", "Download"),
    ("transcribe", "Transcrição", "Transcription"),
    ("analyze", "Análise", "Analysis"),
    ("score", "Pontuação", "Scoring"),
    ("crm", "CRM", "CRM"),
];

impl Lang {
    /// A pipeline stage's name; unknown stages keep their key.
    pub fn stage(self, key: &str) -> String {
        STAGES
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, pt, en)| if self == Lang::Pt { *pt } else { *en }.to_string())
            .unwrap_or_else(|| key.to_string())
    }
}

/// Every status a call can have, in pipeline order (the filter's choices).
pub const STATUSES: [&str; 8] = [
    "received",
    "downloading",
    "transcribing",
    "analyzing",
    "scoring",
    "processed",
    "failed",
    "skipped_no_consent",
];

pub static PT: Text = Text {
    title: "Insights de chamadas",
    calls: "Chamadas",
    live: "Ao vivo",
    logout: "Sair",
    login: "Entrar",
    login_intro: "Entre com uma chave de API do seu tenant.",
    login_key: "Chave de API",
    login_tenant_only:
        "O painel aceita apenas chaves de tenant; o token da plataforma não serve aqui.",
    login_failed: "Chave desconhecida, revogada ou expirada.",
    login_platform: "O token da plataforma não abre o painel: use uma chave de API do tenant.",
    date: "Data",
    from: "De",
    to: "Para",
    agent: "Agente",
    duration: "Duração",
    status: "Status",
    tags: "Tags",
    tag: "Tag",
    score: "Nota",
    date_from: "De (data)",
    date_to: "Até (data)",
    search: "Busca",
    search_placeholder: "Palavras na transcrição",
    filter: "Filtrar",
    clear: "Limpar",
    any: "Todos",
    no_calls: "Nenhuma chamada encontrada.",
    previous: "Anterior",
    next: "Próxima",
    page: "Página",
    of_total: "chamadas",
    back_to_calls: "Voltar às chamadas",
    call: "Chamada",
    facts: "Dados da chamada",
    started: "Início",
    ended: "Fim",
    consent: "Consentimento",
    source: "Origem",
    yes: "Sim",
    no: "Não",
    unknown: "Não informado",
    stages: "Etapas",
    recording: "Gravação",
    no_recording: "Sem gravação disponível.",
    no_listen: "Ouvir gravações exige o papel supervisor ou admin.",
    transcript: "Transcrição",
    no_transcript: "Sem transcrição.",
    speaker: "Locutor",
    caller: "Cliente",
    attendant: "Atendente",
    segments: "Segmentos",
    insights: "Insights",
    no_insights: "Sem insights ainda.",
    summary: "Resumo",
    pain_points: "Dores",
    objections: "Objeções",
    next_actions: "Próximas ações",
    due: "Prazo",
    scorecard: "Scorecard",
    no_scorecard: "Sem scorecard ainda.",
    item: "Item",
    weight: "Peso",
    reason: "Justificativa",
    total: "Total",
    crm: "CRM",
    no_crm: "Nada enviado ao CRM.",
    action: "Ação",
    when: "Quando",
    error: "Erro",
    live_intro: "Chamadas em andamento na ponte, atualizadas em tempo real.",
    no_live: "Nenhuma chamada em andamento.",
    live_connected: "Conectado",
    live_reconnecting: "Reconectando…",
    elapsed: "Há",
    not_found: "Chamada não encontrada.",
    language: "Idioma",
};

pub static EN: Text = Text {
    title: "Call insights",
    calls: "Calls",
    live: "Live",
    logout: "Log out",
    login: "Log in",
    login_intro: "Log in with one of your tenant's API keys.",
    login_key: "API key",
    login_tenant_only: "The panel takes tenant keys only; the platform token does not work here.",
    login_failed: "Unknown, revoked or expired key.",
    login_platform: "The platform token does not open the panel: use a tenant API key.",
    date: "Date",
    from: "From",
    to: "To",
    agent: "Agent",
    duration: "Duration",
    status: "Status",
    tags: "Tags",
    tag: "Tag",
    score: "Score",
    date_from: "From date",
    date_to: "To date",
    search: "Search",
    search_placeholder: "Words in the transcript",
    filter: "Filter",
    clear: "Clear",
    any: "Any",
    no_calls: "No calls found.",
    previous: "Previous",
    next: "Next",
    page: "Page",
    of_total: "calls",
    back_to_calls: "Back to calls",
    call: "Call",
    facts: "Call facts",
    started: "Started",
    ended: "Ended",
    consent: "Consent",
    source: "Source",
    yes: "Yes",
    no: "No",
    unknown: "Not stated",
    stages: "Stages",
    recording: "Recording",
    no_recording: "No recording available.",
    no_listen: "Listening to recordings needs the supervisor or admin role.",
    transcript: "Transcript",
    no_transcript: "No transcript.",
    speaker: "Speaker",
    caller: "Customer",
    attendant: "Agent",
    segments: "Segments",
    insights: "Insights",
    no_insights: "No insights yet.",
    summary: "Summary",
    pain_points: "Pain points",
    objections: "Objections",
    next_actions: "Next actions",
    due: "Due",
    scorecard: "Scorecard",
    no_scorecard: "No scorecard yet.",
    item: "Item",
    weight: "Weight",
    reason: "Reason",
    total: "Total",
    crm: "CRM",
    no_crm: "Nothing sent to the CRM.",
    action: "Action",
    when: "When",
    error: "Error",
    live_intro: "Calls in progress on the bridge, updated as they happen.",
    no_live: "No calls in progress.",
    live_connected: "Connected",
    live_reconnecting: "Reconnecting…",
    elapsed: "For",
    not_found: "Call not found.",
    language: "Language",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_wins_then_the_cookie_then_the_browser() {
        assert_eq!(choose(Some("en"), Some("pt"), Some("pt-BR")), Lang::En);
        assert_eq!(choose(Some("xx"), Some("en"), Some("pt-BR")), Lang::En);
        assert_eq!(choose(None, None, Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(choose(None, None, Some("fr-FR, en;q=0.5")), Lang::En);
        assert_eq!(choose(None, Some("pt-BR"), Some("en-US")), Lang::Pt);
    }

    #[test]
    fn portuguese_is_the_default() {
        assert_eq!(choose(None, None, None), Lang::Pt);
        assert_eq!(choose(None, None, Some("fr, de")), Lang::Pt);
        assert_eq!(choose(Some(""), Some(""), Some("")), Lang::Pt);
    }

    #[test]
    fn statuses_read_in_either_language() {
        assert_eq!(PT.status("processed"), "Processada");
        assert_eq!(EN.status("processed"), "Processed");
        assert_eq!(PT.status("skipped_no_consent"), "Sem consentimento");
        assert_eq!(EN.status("whatever"), "Unknown");
    }
}
