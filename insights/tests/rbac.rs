//! Roles and tenants: the whole role × operation matrix, the platform token, and every route
//! with another tenant's ids (404, nothing changed).

mod common;

use common::{Stack, PLATFORM_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ROLES: [&str; 4] = ["viewer", "agent", "supervisor", "admin"];

fn rank(role: &str) -> usize {
    ROLES.iter().position(|r| *r == role).unwrap()
}

/// Ids of one of each item in a tenant.
struct Items {
    agent: String,
    provider: String,
    document: String,
    key: String,
    template: String,
}

async fn items(s: &Stack, t: &str, tag: &str) -> Items {
    let id = |v: Value| v["id"].as_str().unwrap().to_string();
    let agent = s
        .post(
            &format!("/v1/tenants/{t}/agents"),
            PLATFORM_TOKEN,
            &json!({"name": format!("agent {tag}")}),
        )
        .await;
    assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.text);
    let provider = s
        .post(&format!("/v1/tenants/{t}/providers"), PLATFORM_TOKEN,
              &json!({"kind": "openai", "name": format!("p {tag}"), "credentials": {"api_key": "sk-x"}}))
        .await;
    assert_eq!(provider.status, StatusCode::CREATED, "{}", provider.text);
    let document = s
        .post(
            &format!("/v1/tenants/{t}/knowledge"),
            PLATFORM_TOKEN,
            &json!({"title": "Horário", "body": format!("Abrimos às oito {tag}")}),
        )
        .await;
    let key = s
        .post(
            &format!("/v1/tenants/{t}/api-keys"),
            PLATFORM_TOKEN,
            &json!({"role": "viewer"}),
        )
        .await;
    let template = s
        .post(
            &format!("/v1/tenants/{t}/scorecard-templates"),
            PLATFORM_TOKEN,
            &json!({"key": format!("t-{tag}"), "items": [{"item": "Dor", "weight": 10}]}),
        )
        .await;
    assert_eq!(template.status, StatusCode::CREATED, "{}", template.text);
    Items {
        agent: id(agent.body),
        provider: id(provider.body),
        document: id(document.body),
        key: id(key.body["api_key"].clone()),
        template: id(template.body),
    }
}

/// Method, path, body, the least role allowed (`None`: platform only), status of success.
type Operation = (
    Method,
    String,
    Option<Value>,
    Option<&'static str>,
    StatusCode,
);

/// Every operation on tenant `t` with `items`' ids: method, path, body, the least role
/// allowed (`None`: platform only) and the status of success.
fn operations(t: &str, i: &Items, tag: &str) -> Vec<Operation> {
    use StatusCode as S;
    let p = |rest: &str| format!("/v1/tenants/{t}{rest}");
    vec![
        (Method::GET, p(""), None, Some("viewer"), S::OK),
        (
            Method::PATCH,
            p(""),
            Some(json!({"enabled": true})),
            None,
            S::OK,
        ),
        (Method::GET, p("/agents"), None, Some("viewer"), S::OK),
        (
            Method::GET,
            p(&format!("/agents/{}", i.agent)),
            None,
            Some("viewer"),
            S::OK,
        ),
        (
            Method::POST,
            p("/agents"),
            Some(json!({"name": format!("new {tag}")})),
            Some("supervisor"),
            S::CREATED,
        ),
        (
            Method::PATCH,
            p(&format!("/agents/{}", i.agent)),
            Some(json!({"prompt": tag})),
            Some("supervisor"),
            S::OK,
        ),
        (
            Method::GET,
            p("/scorecard-templates"),
            None,
            Some("viewer"),
            S::OK,
        ),
        (
            Method::GET,
            p(&format!("/scorecard-templates/{}", i.template)),
            None,
            Some("viewer"),
            S::OK,
        ),
        (
            Method::POST,
            p("/scorecard-templates"),
            Some(json!({"key": format!("new-{tag}"), "items": [{"item": "Dor", "weight": 5}]})),
            Some("supervisor"),
            S::CREATED,
        ),
        (
            Method::PATCH,
            p(&format!("/scorecard-templates/{}", i.template)),
            Some(json!({"is_default": true})),
            Some("supervisor"),
            S::OK,
        ),
        (
            Method::DELETE,
            p(&format!("/scorecard-templates/{}", i.template)),
            None,
            Some("supervisor"),
            S::NO_CONTENT,
        ),
        (Method::GET, p("/providers"), None, Some("viewer"), S::OK),
        (
            Method::GET,
            p(&format!("/providers/{}", i.provider)),
            None,
            Some("viewer"),
            S::OK,
        ),
        (
            Method::POST,
            p("/providers"),
            Some(json!({"kind": "groq", "name": format!("new {tag}")})),
            Some("admin"),
            S::CREATED,
        ),
        (
            Method::PATCH,
            p(&format!("/providers/{}", i.provider)),
            Some(json!({"credentials": {"api_key": tag}})),
            Some("admin"),
            S::OK,
        ),
        (Method::GET, p("/knowledge"), None, Some("viewer"), S::OK),
        (
            Method::GET,
            p(&format!("/knowledge/{}", i.document)),
            None,
            Some("viewer"),
            S::OK,
        ),
        (
            Method::GET,
            p("/knowledge/search?q=horario"),
            None,
            Some("agent"),
            S::OK,
        ),
        (
            Method::POST,
            p("/knowledge"),
            Some(json!({"body": format!("doc {tag}")})),
            Some("supervisor"),
            S::CREATED,
        ),
        (
            Method::PATCH,
            p(&format!("/knowledge/{}", i.document)),
            Some(json!({"source": tag})),
            Some("supervisor"),
            S::OK,
        ),
        (
            Method::GET,
            p("/metrics/daily?from=2026-01-01&to=2026-01-31"),
            None,
            Some("viewer"),
            S::OK,
        ),
        (Method::GET, p("/api-keys"), None, Some("admin"), S::OK),
        (
            Method::GET,
            p(&format!("/api-keys/{}", i.key)),
            None,
            Some("admin"),
            S::OK,
        ),
        (
            Method::POST,
            p("/api-keys"),
            Some(json!({"role": "viewer"})),
            Some("admin"),
            S::CREATED,
        ),
        // Deletes last: they remove the items the others use.
        (
            Method::DELETE,
            p(&format!("/agents/{}", i.agent)),
            None,
            Some("supervisor"),
            S::NO_CONTENT,
        ),
        (
            Method::DELETE,
            p(&format!("/providers/{}", i.provider)),
            None,
            Some("admin"),
            S::NO_CONTENT,
        ),
        (
            Method::DELETE,
            p(&format!("/knowledge/{}", i.document)),
            None,
            Some("supervisor"),
            S::NO_CONTENT,
        ),
        (
            Method::DELETE,
            p(&format!("/api-keys/{}", i.key)),
            None,
            Some("admin"),
            S::OK,
        ),
        (Method::DELETE, p(""), None, None, S::NO_CONTENT),
    ]
}

#[tokio::test]
async fn the_role_matrix() {
    let s = Stack::start().await;
    let t = s.tenant("rbac.example.com").await;
    let mut checked = 0;
    for role in ROLES {
        let key = s.key(&t, role).await;
        let i = items(&s, &t, role).await;
        for (method, path, body, least, success) in operations(&t, &i, role) {
            let a = s.call(method.clone(), &path, &key, body.as_ref()).await;
            let allowed = least.is_some_and(|least| rank(role) >= rank(least));
            if allowed {
                assert_eq!(a.status, success, "{role} {method} {path}: {}", a.text);
            } else {
                assert_eq!(
                    a.status,
                    StatusCode::FORBIDDEN,
                    "{role} {method} {path}: {}",
                    a.text
                );
                assert_eq!(a.code(), "forbidden");
                assert!(
                    a.message().contains(&format!("role {role} may not")),
                    "{}",
                    a.message()
                );
            }
            checked += 1;
        }
        // Tenants themselves: the platform token only.
        for (method, path, body) in [
            (Method::GET, "/v1/tenants".to_string(), None),
            (
                Method::POST,
                "/v1/tenants".to_string(),
                Some(json!({"domain_uuid": uuid::Uuid::new_v4(), "domain_name": "x.y"})),
            ),
        ] {
            let a = s.call(method.clone(), &path, &key, body.as_ref()).await;
            assert_eq!(a.status, StatusCode::FORBIDDEN, "{role} {method} {path}");
            assert!(a.message().contains("platform token"), "{}", a.message());
        }
    }
    assert_eq!(checked, 4 * 29);
    // The tenant is still there: no key could delete it.
    assert_eq!(
        s.get(&format!("/v1/tenants/{t}"), PLATFORM_TOKEN)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_platform_token_does_everything_in_every_tenant() {
    let s = Stack::start().await;
    for n in 0..2 {
        let t = s.tenant(&format!("p{n}.example.com")).await;
        let i = items(&s, &t, "platform").await;
        for (method, path, body, _, success) in operations(&t, &i, "platform") {
            let a = s
                .call(method.clone(), &path, PLATFORM_TOKEN, body.as_ref())
                .await;
            assert_eq!(a.status, success, "{method} {path}: {}", a.text);
        }
    }
    // A tenant that does not exist: 404 on its paths, even for the platform.
    let nowhere = uuid::Uuid::new_v4();
    for path in [
        "",
        "/agents",
        "/providers",
        "/knowledge",
        "/api-keys",
        "/scorecard-templates",
    ] {
        let a = s
            .get(&format!("/v1/tenants/{nowhere}{path}"), PLATFORM_TOKEN)
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
    }
    let a = s
        .post(
            &format!("/v1/tenants/{nowhere}/agents"),
            PLATFORM_TOKEN,
            &json!({"name": "x"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

/// What a tenant holds, to compare before and after an attack.
async fn snapshot(s: &Stack, t: &str) -> Vec<Value> {
    let mut out = vec![];
    for path in [
        "",
        "/agents",
        "/providers",
        "/knowledge",
        "/api-keys",
        "/scorecard-templates",
    ] {
        let a = s
            .get(&format!("/v1/tenants/{t}{path}"), PLATFORM_TOKEN)
            .await;
        assert_eq!(a.status, StatusCode::OK);
        out.push(a.body);
    }
    out
}

#[tokio::test]
async fn another_tenants_paths_and_ids_answer_404_and_change_nothing() {
    let s = Stack::start().await;
    let a = s.tenant("a.example.com").await;
    let b = s.tenant("b.example.com").await;
    let a_admin = s.key(&a, "admin").await;
    let a_viewer = s.key(&a, "viewer").await;
    items(&s, &a, "a").await;
    let b_items = items(&s, &b, "b").await;
    let before = snapshot(&s, &b).await;

    // B's paths with B's ids, with A's keys of any role: as if B did not exist.
    for key in [&a_admin, &a_viewer] {
        for (method, path, body, _, _) in operations(&b, &b_items, "attack") {
            let r = s.call(method.clone(), &path, key, body.as_ref()).await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                r.text
            );
            assert_eq!(r.code(), "not_found");
            assert!(!r.text.contains("b.example.com"));
        }
    }
    // A's own paths with B's ids: row-level security finds nothing.
    for (method, path, body, _, _) in operations(&a, &b_items, "attack") {
        let ids = [
            &b_items.agent,
            &b_items.provider,
            &b_items.document,
            &b_items.key,
            &b_items.template,
        ];
        if !ids.iter().any(|id| path.contains(id.as_str())) {
            continue; // lists, creations, the tenant row: nothing of B's to name
        }
        let r = s.call(method.clone(), &path, &a_admin, body.as_ref()).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            r.text
        );
    }
    // A knowledge document of A pointing at B's agent is refused.
    let r = s
        .post(
            &format!("/v1/tenants/{a}/knowledge"),
            &a_admin,
            &json!({"agent_id": b_items.agent, "body": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // A search by A for B's words finds nothing.
    let r = s
        .get(
            &format!("/v1/tenants/{a}/knowledge/search?q=oito%20b"),
            &a_admin,
        )
        .await;
    assert!(
        r.body
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["text"].as_str().is_some_and(|t| !t.ends_with(" b"))),
        "{}",
        r.text
    );
    // A's lists show none of B's rows.
    for path in [
        "/agents",
        "/providers",
        "/knowledge",
        "/api-keys",
        "/scorecard-templates",
    ] {
        let r = s.get(&format!("/v1/tenants/{a}{path}"), &a_admin).await;
        assert!(
            r.body
                .as_array()
                .unwrap()
                .iter()
                .all(|row| row["tenant_id"] == a),
            "{path}"
        );
    }

    assert_eq!(snapshot(&s, &b).await, before, "tenant B changed");
}
