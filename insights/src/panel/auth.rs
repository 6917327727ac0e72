//! Signing people in. The login form takes a tenant API key, checks it as the API does
//! (`voice_core::tenancy::store::lookup_key`) and keeps it in an HttpOnly, SameSite=Strict
//! cookie ([`KEY_COOKIE`]); panel pages take that cookie or the API's headers. The platform
//! token is refused: it names no tenant.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use voice_core::tenancy::model::KeyIdentity;
use voice_core::tenancy::store::{self, presented};

use super::html::{esc, html, page, url_part, Tab};
use super::i18n::{self, Lang};
use crate::http::error::ApiError;
use crate::state::AppState;

/// The cookie holding a signed-in person's API key.
pub const KEY_COOKIE: &str = "ci_panel_key";
/// The cookie remembering the chosen language.
pub const LANG_COOKIE: &str = "panel_lang";
/// How long a sign-in lasts (the key's own expiry and revocation still apply).
const SESSION_SECONDS: u32 = 12 * 3600;

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The panel's API key cookie, for the calls API (`Caller`), which also takes it so the
/// audio player's request to `/calls/:id/recording` is authenticated.
pub fn key_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, KEY_COOKIE)
}

/// Did the request come over https (directly or through a proxy saying so)?
fn over_https(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    forwarded_proto || forwarded
}

/// The language of a request, and whether it came from `?lang=` (then it is remembered).
pub fn request_lang(parts: &Parts) -> (Lang, bool) {
    let query = parts.uri.query().unwrap_or("");
    let asked = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "lang")
        .map(|(_, v)| v);
    let accept = parts
        .headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let lang = i18n::choose(asked, cookie(&parts.headers, LANG_COOKIE), accept);
    (lang, asked.and_then(Lang::parse).is_some())
}

/// A `Set-Cookie` value remembering `lang` for a year.
pub fn lang_cookie(lang: Lang) -> HeaderValue {
    let text = format!(
        "{LANG_COOKIE}={}; Path=/panel; Max-Age=31536000; SameSite=Lax",
        lang.code()
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The request's path and query without `lang` (for links back to the same page).
pub fn here(parts: &Parts) -> String {
    let path = parts.uri.path();
    let rest: Vec<&str> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("lang="))
        .collect();
    if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", rest.join("&"))
    }
}

/// A signed-in person: their key's identity and the page language.
pub struct Session {
    pub key: KeyIdentity,
    pub lang: Lang,
    /// The language came from `?lang=`: pages set the cookie.
    pub remember_lang: bool,
    /// Path and query of the page, without `lang`.
    pub here: String,
}

impl Session {
    /// `body` in the page frame, as a response (remembering the language when asked).
    pub fn render(&self, status: StatusCode, title: &str, tab: Tab, body: &str) -> Response {
        let mut response = html(status, page(self.lang, title, tab, &self.here, true, body));
        if self.remember_lang {
            response
                .headers_mut()
                .append(header::SET_COOKIE, lang_cookie(self.lang));
        }
        response
    }
}

impl FromRequestParts<Arc<AppState>> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let (lang, remember_lang) = request_lang(parts);
        let here = here(parts);
        let to_login = || {
            let next = if parts.method == axum::http::Method::GET {
                format!("?next={}", url_part(&here))
            } else {
                String::new()
            };
            Redirect::to(&format!("/panel/login{next}")).into_response()
        };
        let Some(key) = presented(&parts.headers).or_else(|| key_cookie(&parts.headers)) else {
            return Err(to_login());
        };
        let identity = match store::lookup_key(&state.db, key).await {
            Ok(Some(identity)) => identity,
            Ok(None) => return Err(to_login()),
            Err(e) => return Err(ApiError::from(e).into_response()),
        };
        state
            .limit(identity.tenant_id)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Session {
            key: identity,
            lang,
            remember_lang,
            here,
        })
    }
}

/// The language of a page shown to someone not signed in.
pub struct Anonymous {
    pub lang: Lang,
    pub remember_lang: bool,
    pub here: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Anonymous {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let (lang, remember_lang) = request_lang(parts);
        Ok(Anonymous {
            lang,
            remember_lang,
            here: here(parts),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    next: Option<String>,
}

/// Only our own panel pages are places to go after signing in (no open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with("/panel/")
                && !n.starts_with("/panel/login")
                && !n.contains("//")
                && !n.contains('\\') =>
        {
            n
        }
        _ => "/panel/calls",
    }
}

fn login_page(who: &Anonymous, next: &str, problem: Option<&str>, status: StatusCode) -> Response {
    let t = who.lang.text();
    let problem = problem
        .map(|p| format!("<p class=\"alert\" role=\"alert\">{}</p>", esc(p)))
        .unwrap_or_default();
    let body = format!(
        "<section class=\"card login\"><h1>{login}</h1><p>{intro}</p>{problem}\
<form method=\"post\" action=\"/panel/login\">\
<input type=\"hidden\" name=\"next\" value=\"{next}\">\
<label for=\"key\">{key_label}</label>\
<input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
<button type=\"submit\" class=\"primary\">{login}</button></form>\
<p class=\"hint\">{tenant_only}</p></section>",
        login = esc(t.login),
        intro = esc(t.login_intro),
        next = esc(next),
        key_label = esc(t.login_key),
        tenant_only = esc(t.login_tenant_only),
    );
    let mut response = html(
        status,
        page(who.lang, t.login, Tab::None, &who.here, false, &body),
    );
    if who.remember_lang {
        response
            .headers_mut()
            .append(header::SET_COOKIE, lang_cookie(who.lang));
    }
    response
}

/// `GET /panel/login`.
pub async fn login_form(
    who: Anonymous,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    login_page(&who, safe_next(q.next.as_deref()), None, StatusCode::OK)
}

/// `POST /panel/login`: a tenant key sets the cookie and goes on; anything else shows the
/// form again with why (never echoing the key).
pub async fn login(
    State(state): State<Arc<AppState>>,
    who: Anonymous,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let t = who.lang.text();
    let next = safe_next(form.next.as_deref()).to_string();
    let key = form.key.trim();
    if state.platform.matches(key) {
        return login_page(&who, &next, Some(t.login_platform), StatusCode::FORBIDDEN);
    }
    match store::lookup_key(&state.db, key).await {
        Ok(Some(identity)) => {
            if let Err(e) = state.limit(identity.tenant_id).await {
                return e.into_response();
            }
        }
        Ok(None) => return login_page(&who, &next, Some(t.login_failed), StatusCode::UNAUTHORIZED),
        Err(e) => return ApiError::from(e).into_response(),
    }
    // Keys are URL-safe tokens; anything that cannot be a cookie value was refused above.
    let secure = if over_https(&headers) { "; Secure" } else { "" };
    let Ok(cookie) = HeaderValue::from_str(&format!(
        "{KEY_COOKIE}={key}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}"
    )) else {
        return login_page(&who, &next, Some(t.login_failed), StatusCode::UNAUTHORIZED);
    };
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

/// `POST /panel/logout`: forgets the key.
pub async fn logout(headers: HeaderMap) -> Response {
    let secure = if over_https(&headers) { "; Secure" } else { "" };
    let mut response = Redirect::to("/panel/login").into_response();
    if let Ok(clear) = HeaderValue::from_str(&format!(
        "{KEY_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    )) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; ci_panel_key=vk_abc ; panel_lang=en".parse().unwrap(),
        );
        assert_eq!(key_cookie(&h), Some("vk_abc"));
        assert_eq!(cookie(&h, LANG_COOKIE), Some("en"));
        assert_eq!(cookie(&h, "zzz"), None);
    }

    #[test]
    fn only_panel_pages_are_places_to_go_next() {
        assert_eq!(safe_next(Some("/panel/calls/1?x=2")), "/panel/calls/1?x=2");
        assert_eq!(safe_next(Some("https://evil.example/")), "/panel/calls");
        assert_eq!(safe_next(Some("/panel//evil.example")), "/panel/calls");
        assert_eq!(safe_next(Some("/panel/login")), "/panel/calls");
        assert_eq!(safe_next(None), "/panel/calls");
    }

    #[test]
    fn https_is_seen_through_proxies() {
        let mut h = HeaderMap::new();
        assert!(!over_https(&h));
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(over_https(&h));
    }
}
