//! HTML building blocks: escaping, the page frame, small formatters. Every value from a
//! request or the database goes through [`esc`] before it is written into a page.

use std::fmt::Write;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::i18n::Lang;

/// `text` safe inside HTML text and double- or single-quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as one component of a URL query (percent-encoded, then safe in an attribute).
pub fn url_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Which navigation tab a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Calls,
    Live,
    None,
}

/// A whole page: the frame (header, navigation, language switch, logout) around `body`.
/// `here` is the page's path and query without `lang` (the language links keep the rest).
pub fn page(lang: Lang, title: &str, tab: Tab, here: &str, signed_in: bool, body: &str) -> String {
    let t = lang.text();
    let mut nav = String::new();
    if signed_in {
        let class = |this: Tab| if tab == this { " class=\"active\"" } else { "" };
        let _ = write!(
            nav,
            "<nav class=\"tabs\"><a href=\"/panel/calls\"{}>{}</a><a href=\"/panel/live\"{}>{}</a></nav>",
            class(Tab::Calls),
            esc(t.calls),
            class(Tab::Live),
            esc(t.live),
        );
    }
    let sep = if here.contains('?') { '&' } else { '?' };
    let lang_link = |code: &str, label: &str, this: Lang| {
        let current = if lang == this {
            " aria-current=\"true\""
        } else {
            ""
        };
        let href = format!("{here}{sep}lang={code}");
        format!(
            "<a href=\"{}\" hreflang=\"{code}\"{current}>{label}</a>",
            esc(&href)
        )
    };
    let logout = if signed_in {
        format!(
            "<form method=\"post\" action=\"/panel/logout\" class=\"logout\"><button type=\"submit\" class=\"link\">{}</button></form>",
            esc(t.logout)
        )
    } else {
        String::new()
    };
    format!(
        "<!doctype html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · {app}</title>\
<link rel=\"stylesheet\" href=\"/panel/assets/panel.css\">\
<script src=\"/panel/assets/panel.js\" defer></script></head>\
<body><header class=\"top\"><div class=\"brand\"><span class=\"logo\" aria-hidden=\"true\"></span>{app}</div>{nav}\
<div class=\"tools\"><span class=\"langs\" aria-label=\"{language}\">{pt} {en}</span>{logout}</div></header>\
<main>{body}</main></body></html>\n",
        code = lang.code(),
        title = esc(title),
        app = esc(t.title),
        language = esc(t.language),
        pt = lang_link("pt-BR", "PT", Lang::Pt),
        en = lang_link("en", "EN", Lang::En),
    )
}

/// An HTML response.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `523` seconds as `8:43`; hours when there are any (`1:02:03`).
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "–".to_string();
    }
    let total = seconds.floor() as u64;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A timestamp as people read it in `lang` (UTC; the panel does not know the viewer's zone).
pub fn datetime(at: &chrono::DateTime<chrono::Utc>, lang: Lang) -> String {
    match lang {
        Lang::Pt => at.format("%d/%m/%Y %H:%M").to_string(),
        Lang::En => at.format("%Y-%m-%d %H:%M").to_string(),
    }
}

/// A date as people read it in `lang`.
pub fn date(day: &chrono::NaiveDate, lang: Lang) -> String {
    match lang {
        Lang::Pt => day.format("%d/%m/%Y").to_string(),
        Lang::En => day.format("%Y-%m-%d").to_string(),
    }
}

/// The CSS class of a status badge.
pub fn status_class(status: &str) -> &'static str {
    match status {
        "processed" => "badge ok",
        "failed" => "badge bad",
        "skipped_no_consent" => "badge muted",
        "received" => "badge info",
        _ => "badge busy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_neutralises_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(esc("Objeções: preço"), "Objeções: preço");
        assert_eq!(esc(""), "");
    }

    #[test]
    fn url_parts_are_percent_encoded() {
        assert_eq!(url_part("a b&c=d/ç"), "a%20b%26c%3Dd%2F%C3%A7");
        assert_eq!(url_part("abc-1_2.~"), "abc-1_2.~");
    }

    #[test]
    fn durations_read_as_clock_times() {
        assert_eq!(duration(523.0), "8:43");
        assert_eq!(duration(3723.4), "1:02:03");
        assert_eq!(duration(-1.0), "–");
    }

    #[test]
    fn pages_escape_their_title_and_link_both_languages() {
        let p = page(Lang::En, "<x>", Tab::Calls, "/panel/calls?q=a", true, "");
        assert!(p.contains("<title>&lt;x&gt;"));
        assert!(p.contains("/panel/calls?q=a&amp;lang=en"));
        assert!(p.contains("<html lang=\"en\">"));
        assert!(!p.contains("style="));
    }
}
