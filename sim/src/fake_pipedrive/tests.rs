//! The fake over real sockets with raw HTTP requests: searches, notes and activities in
//! the documented shapes, the token both ways, what it refuses, and faults.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use super::{FakePipedrive, FakePipedriveConfig, Fault, Person, TokenIn};

async fn fake() -> FakePipedrive {
    FakePipedrive::start(FakePipedriveConfig::default())
        .await
        .unwrap()
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// A GET with the token in the `x-api-token` header.
async fn get(fake: &FakePipedrive, path_and_query: &str) -> Answer {
    let response = client()
        .get(format!("{}{path_and_query}", fake.url()))
        .header("x-api-token", fake.api_token())
        .send()
        .await
        .unwrap();
    answer(response).await
}

/// A JSON POST with the token in the `x-api-token` header.
async fn post(fake: &FakePipedrive, path: &str, body: Value) -> Answer {
    let response = client()
        .post(format!("{}{path}", fake.url()))
        .header("x-api-token", fake.api_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    answer(response).await
}

fn assert_error(a: &Answer, status: u16) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["success"], false, "{}", a.body);
    assert!(a.body["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(a.body["error_info"].is_string());
    assert_eq!(a.body["errorCode"].as_u64(), Some(u64::from(status)));
}

fn item_ids(a: &Answer) -> Vec<u64> {
    a.body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"]["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_person_is_found_by_phone() {
    let fake = fake().await;
    let found = get(
        &fake,
        "/api/v2/persons/search?term=%2B5511999990000&fields=phone&exact_match=true",
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["success"], true);
    let hit = &found.body["data"]["items"][0];
    assert_eq!(hit["result_score"].as_f64(), Some(1.0));
    assert_eq!(hit["item"]["id"], 101);
    assert_eq!(hit["item"]["type"], "person");
    assert_eq!(hit["item"]["name"], "Ana Souza");
    assert_eq!(hit["item"]["phones"], json!(["+55 11 99999-0000"]));
    assert_eq!(hit["item"]["organization"]["id"], 7);
    assert_eq!(found.body["additional_data"]["next_cursor"], Value::Null);
    assert_eq!(found.headers["x-ratelimit-limit"], "40");
    assert!(found.headers.get("x-daily-requests-left").is_none());
    // Without the country code the digits differ: no exact match, but a partial one.
    let local = "/api/v2/persons/search?term=11999990000&fields=phone";
    assert!(item_ids(&get(&fake, &format!("{local}&exact_match=true")).await).is_empty());
    assert_eq!(item_ids(&get(&fake, local).await), [101]);
    // A phone search does not look at names, a name search does.
    assert!(item_ids(&get(&fake, "/api/v2/persons/search?term=ana&fields=phone").await).is_empty());
    assert_eq!(
        item_ids(&get(&fake, "/api/v2/persons/search?term=ana").await),
        [101]
    );
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/api/v2/persons/search");
    assert_eq!(request.token_in, TokenIn::Header);
    assert_eq!(request.query["term"], "+5511999990000");
    assert_eq!(request.query["exact_match"], "true");
    assert_eq!(fake.stats().searches, 5);
}

#[tokio::test]
async fn v1_search_takes_the_token_in_the_query() {
    let fake = fake().await;
    let url = format!(
        "{}/persons/search?term=ana%40example.com&fields=email&exact_match=true&api_token={}",
        fake.v1_url(),
        fake.api_token()
    );
    let found = answer(client().get(url).send().await.unwrap()).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(item_ids(&found), [101]);
    let pagination = &found.body["additional_data"]["pagination"];
    assert_eq!(pagination["more_items_in_collection"], false);
    assert_eq!(pagination["start"], 0);
    let request = &fake.requests()[0];
    assert_eq!(request.token_in, TokenIn::Query);
    assert!(
        !request.query.contains_key("api_token"),
        "the token is never kept"
    );
}

#[tokio::test]
async fn searches_page() {
    let fake = fake().await;
    let people = (1..=3)
        .map(|i| Person::new(i, &format!("Cliente {i}"), &format!("+55 21 3333-000{i}")))
        .collect();
    fake.set_persons(people).unwrap();
    let first = get(
        &fake,
        "/api/v2/persons/search?term=2133330&fields=phone&limit=2",
    )
    .await;
    assert_eq!(item_ids(&first), [1, 2]);
    let cursor = first.body["additional_data"]["next_cursor"]
        .as_str()
        .unwrap();
    let rest = get(
        &fake,
        &format!("/api/v2/persons/search?term=2133330&fields=phone&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(item_ids(&rest), [3]);
    assert_eq!(rest.body["additional_data"]["next_cursor"], Value::Null);
    let v1 = get(
        &fake,
        "/v1/persons/search?term=2133330&fields=phone&start=1&limit=1",
    )
    .await;
    assert_eq!(item_ids(&v1), [2]);
    assert_eq!(v1.body["additional_data"]["pagination"]["next_start"], 2);
    assert!(fake
        .set_persons(vec![Person::new(1, "A", "1"), Person::new(1, "B", "2")])
        .is_err());
}

#[tokio::test]
async fn the_token_is_required_and_never_echoed() {
    let fake = fake().await;
    let token = fake.api_token();
    let path = "/api/v2/persons/search?term=ana";
    let url = format!("{}{path}", fake.url());
    let attempts = [
        client().get(&url),
        client().get(&url).header("x-api-token", "pd-wrong"),
        client().get(format!("{url}&api_token=pd-wrong")),
        client()
            .get(&url)
            .header("authorization", format!("Bearer {token}")),
        // The header wins: a wrong header is not saved by a right query token.
        client()
            .get(format!("{url}&api_token={token}"))
            .header("x-api-token", "pd-wrong"),
    ];
    for request in attempts {
        let a = answer(request.send().await.unwrap()).await;
        assert_error(&a, 401);
        assert_eq!(a.body["error"], "unauthorized access");
        assert!(!a.body.to_string().contains(&token));
    }
    let stats = fake.stats();
    assert_eq!((stats.auth_failures, stats.searches), (5, 0));
    let note = client()
        .post(format!("{}/v1/notes", fake.url()))
        .json(&json!({"content": "x", "person_id": 101}))
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), 401);
    assert!(fake.notes().is_empty());
}

#[tokio::test]
async fn bad_searches_are_refused() {
    let fake = fake().await;
    for query in [
        "",
        "term=a",
        "term=%20%20",
        "term=ana&fields=phones",
        "term=ana&fields=phone,mobile",
        "term=ana&exact_match=yes",
        "term=ana&limit=0",
        "term=ana&limit=501",
        "term=ana&cursor=abc",
        "term=ana&organization_id=x",
        "term=ana&start=0",
        "term=ana&phone=1",
    ] {
        let a = get(&fake, &format!("/api/v2/persons/search?{query}")).await;
        assert_error(&a, 400);
    }
    // One character is enough for an exact match.
    assert_eq!(
        get(&fake, "/api/v2/persons/search?term=a&exact_match=true")
            .await
            .status,
        200
    );
    assert_error(
        &get(&fake, "/v1/persons/search?term=ana&cursor=1").await,
        400,
    );
    assert_eq!(fake.stats().searches, 1);
}

#[tokio::test]
async fn a_note_is_added_and_kept() {
    let fake = fake().await;
    let body = json!({"content": "<p>Resumo da ligação: cliente quer o plano anual.</p>",
        "person_id": 101, "deal_id": 456, "org_id": 7, "pinned_to_deal_flag": 1,
        "lead_id": "0b5f6c6e-3f4e-4c39-9a51-0f9f2d1e8a11"});
    let a = post(&fake, "/v1/notes", body.clone()).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["success"], true);
    let note = &a.body["data"];
    assert!(note["id"].as_u64().is_some());
    assert_eq!(note["content"], body["content"]);
    assert_eq!(
        (note["person_id"].as_u64(), note["deal_id"].as_u64()),
        (Some(101), Some(456))
    );
    assert_eq!(note["pinned_to_deal_flag"], true);
    assert_eq!(note["pinned_to_person_flag"], false);
    assert_eq!(note["person"]["name"], "Ana Souza");
    assert_eq!(a.headers["x-daily-requests-left"], "9999");
    assert_eq!(fake.notes(), std::slice::from_ref(note));
    let request = &fake.requests()[0];
    assert_eq!((request.method.as_str(), request.status), ("POST", 201));
    assert_eq!(request.body.as_ref(), Some(&body));
    assert_eq!(fake.stats().notes_added, 1);
}

#[tokio::test]
async fn bad_notes_are_refused() {
    let fake = fake().await;
    let cases = [
        (json!({"person_id": 101}), 400),
        (json!({"content": "  ", "person_id": 101}), 400),
        (json!({"content": "oi"}), 400),
        (json!({"content": "oi", "person_id": 999}), 404),
        (json!({"content": "oi", "deal_id": 1}), 404),
        (json!({"content": "oi", "org_id": 8}), 404),
        (json!({"content": "oi", "person_id": "101"}), 400),
        (
            json!({"content": "oi", "person_id": 101, "pinned_to_deal_flag": 1}),
            400,
        ),
        (
            json!({"content": "oi", "person_id": 101, "pinned_to_person_flag": 2}),
            400,
        ),
        (
            json!({"content": "oi", "person_id": 101, "add_time": "2026-08-21T12:00:00Z"}),
            400,
        ),
        (
            json!({"content": "oi", "person_id": 101, "user_id": 77}),
            400,
        ),
        (
            json!({"content": "oi", "person_id": 101, "lead_id": "42"}),
            400,
        ),
        (
            json!({"content": "oi", "person_id": 101, "title": "x"}),
            400,
        ),
        (json!(["content"]), 400),
    ];
    for (body, status) in cases {
        let a = post(&fake, "/v1/notes", body.clone()).await;
        assert_error(&a, status);
        assert_eq!(a.status, status, "{body}");
    }
    let form = client()
        .post(format!("{}/v1/notes", fake.url()))
        .header("x-api-token", fake.api_token())
        .form(&[("content", "oi"), ("person_id", "101")])
        .send()
        .await
        .unwrap();
    assert_error(&answer(form).await, 400);
    let broken = client()
        .post(format!("{}/v1/notes", fake.url()))
        .header("x-api-token", fake.api_token())
        .header("content-type", "application/json")
        .body("{\"content\": ")
        .send()
        .await
        .unwrap();
    assert_error(&answer(broken).await, 400);
    assert!(fake.notes().is_empty());
    assert_eq!(fake.stats().refused, 16);
}

/// The activity a call push makes (providers.md §8).
fn call_activity() -> Value {
    json!({"subject": "Ligação com Ana", "type": "call", "done": true,
        "due_date": "2026-08-21", "due_time": "14:30", "duration": "00:07",
        "person_id": 101, "deal_id": 456, "owner_id": 1,
        "participants": [{"person_id": 101, "primary": true}],
        "note": "<p>Transcrição/resumo…</p>", "public_description": "Resumo", "busy": false})
}

#[tokio::test]
async fn a_call_activity_is_added() {
    let fake = fake().await;
    let a = post(&fake, "/api/v2/activities", call_activity()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let activity = &a.body["data"];
    assert_eq!(activity["subject"], "Ligação com Ana");
    assert_eq!(activity["type"], "call");
    assert_eq!(activity["done"], true);
    assert!(activity["marked_as_done_time"].is_string());
    assert_eq!(
        (
            activity["due_date"].as_str(),
            activity["due_time"].as_str(),
            activity["duration"].as_str()
        ),
        (Some("2026-08-21"), Some("14:30"), Some("00:07"))
    );
    assert_eq!(activity["participants"][0]["person_id"], 101);
    assert_eq!(activity["note"], "<p>Transcrição/resumo…</p>");
    assert_eq!(fake.activities(), std::slice::from_ref(activity));
    assert_eq!(fake.stats().activities_added, 1);
    // The token in the query works for writes too.
    let url = format!(
        "{}/activities?api_token={}",
        fake.v2_url(),
        fake.api_token()
    );
    let minimal = json!({"subject": "Retornar ligação", "person_id": 101});
    let a = answer(client().post(url).json(&minimal).send().await.unwrap()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        (
            a.body["data"]["type"].as_str(),
            a.body["data"]["done"].as_bool()
        ),
        (Some("call"), Some(false))
    );
}

#[tokio::test]
async fn bad_activities_are_refused() {
    let fake = fake().await;
    let with = |field: &str, value: Value| {
        let mut body = call_activity();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = call_activity();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases = [
        (with("done", json!(1)), 400),
        (with("busy", json!("false")), 400),
        (with("due_time", json!("14:30:00")), 400),
        (with("due_date", json!("21/08/2026")), 400),
        (with("duration", json!("7 min")), 400),
        (with("duration", json!(420)), 400),
        (with("type", json!("ligacao")), 400),
        (with("owner_id", json!(2)), 400),
        (with("user_id", json!(1)), 400),
        (with("subject", json!("")), 400),
        (without("subject"), 400),
        (without("due_date"), 400),
        (with("person_id", json!(999)), 404),
        (with("deal_id", json!(1)), 404),
        (
            with("participants", json!([{"person_id": 999, "primary": true}])),
            404,
        ),
        (
            with(
                "participants",
                json!([{"person_id": 101, "primary": true},
            {"person_id": 101, "primary": true}]),
            ),
            400,
        ),
        (
            with(
                "participants",
                json!([{"person_id": 101, "primary_flag": true}]),
            ),
            400,
        ),
        (with("participants", json!({"person_id": 101})), 400),
        (with("priority", json!("high")), 400),
        (with("location", json!("São Paulo")), 400),
    ];
    for (body, status) in cases {
        let a = post(&fake, "/api/v2/activities", body.clone()).await;
        assert_eq!(a.status, status, "{body}: {}", a.body);
        assert_error(&a, status);
    }
    assert!(fake.activities().is_empty());
}

#[tokio::test]
async fn faults_refuse_rate_limit_delay_and_hang() {
    let fake = fake().await;
    let search = "/api/v2/persons/search?term=ana";
    fake.set_faults(
        vec![
            Fault::Refuse(500),
            Fault::RateLimited { retry_after_s: 7 },
            Fault::Refuse(429),
        ],
        Fault::None,
    );
    let a = get(&fake, search).await;
    assert_error(&a, 500);
    let a = get(&fake, search).await;
    assert_error(&a, 429);
    assert_eq!(a.body["error"], "Request over limit");
    assert_eq!(a.headers["retry-after"], "7");
    assert_eq!(a.headers["x-ratelimit-reset"], "7");
    assert_eq!(a.headers["x-ratelimit-remaining"], "0");
    let a = post(
        &fake,
        "/v1/notes",
        json!({"content": "oi", "person_id": 101}),
    )
    .await;
    assert_error(&a, 429);
    assert_eq!(a.headers["retry-after"], "2");
    assert!(fake.notes().is_empty());
    assert_eq!(get(&fake, search).await.status, 200);

    fake.set_fault(Fault::Delay(300));
    let sent = Instant::now();
    assert_eq!(get(&fake, search).await.status, 200);
    assert!(
        sent.elapsed() >= Duration::from_millis(300),
        "{:?}",
        sent.elapsed()
    );

    fake.set_fault(Fault::Hang);
    let hung = client()
        .get(format!("{}{search}", fake.url()))
        .header("x-api-token", fake.api_token())
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.is_err_and(|e| e.is_timeout()));
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 429, 429, 200, 200, 0]);
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let fake = fake().await;
    assert_error(&get(&fake, "/v1/persons/101").await, 404);
    assert_error(&post(&fake, "/v1/activities", call_activity()).await, 404);
    assert_eq!(get(&fake, "/v1/notes").await.status, 405);
}
