//! A tenant's settings are kept in the server's memory between requests
//! (`platform::settings`): each one changed through the API is used by the very next request,
//! though the request before it was served from memory.

use crate::both;
use crate::harness::{refused, TestApp};
use serde_json::{json, Value};

async fn lead(app: &TestApp, i: u32, extra: Value) -> reqwest::Response {
    let mut body = json!({"name": format!("缓存{i}"), "phone": format!("1370013{i:04}"),
                          "industry": "制造"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.post("/api/v1/leads", &app.admin_token, body).await
}

async fn created(app: &TestApp, i: u32) -> Value {
    let r = lead(app, i, json!({})).await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["lead"].clone()
}

both!(
    a_changed_setting_is_used_by_the_next_request,
    |app: TestApp| async move {
        let t = &app.admin_token;
        // Twice with nothing set: the second read every setting from memory.
        let mut owners = vec![];
        for i in 0..2 {
            let l = created(&app, i).await;
            assert_eq!(l["score"], 0);
            assert!(l["response_due_at"].is_null());
            owners.push(l["owner_id"].clone());
        }
        assert!(
            owners[0].is_string() && owners[0] == owners[1],
            "the caller"
        );
        // Scoring rules.
        app.created(
            "/api/v1/scoring-rules",
            t,
            json!({"name": "制造业", "points": 40,
                   "conditions": [{"field": "industry", "op": "eq", "value": "制造"}]}),
        )
        .await;
        assert_eq!(created(&app, 2).await["score"], 40);
        // The response policy, counted on the company's office hours.
        let r = app
            .req(reqwest::Method::PUT, "/api/v1/lead-sla", t)
            .json(&json!({"items": [{"source": "*", "minutes": 240, "on_breach": "notify"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(created(&app, 3).await["response_due_at"].is_string());
        // A company calendar with no working time: no deadline can be met or missed.
        let r = app
            .post(
                "/api/v1/calendars",
                t,
                json!({"name": "停工", "is_default": true, "week": {}}),
            )
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        assert!(created(&app, 4).await["response_due_at"].is_null());
        // Assignment rules.
        let (rep, _) = app.user_with_role("sales", "cache.rep@acme.test").await;
        app.created(
            "/api/v1/assignment-rules",
            t,
            json!({"name": "制造业给他", "target": "user", "user_id": rep["id"],
                   "conditions": [{"field": "industry", "op": "eq", "value": "制造"}]}),
        )
        .await;
        assert_eq!(created(&app, 5).await["owner_id"], rep["id"]);
        // Custom fields: a required one, asked of the next lead.
        app.created(
            "/api/v1/custom-fields",
            t,
            json!({"entity": "leads", "key": "budget", "kind": "money", "label": "预算",
                   "required": true}),
        )
        .await;
        assert_eq!(
            refused(lead(&app, 6, json!({})).await).await,
            vec![("custom.budget".into(), "required".into())]
        );
        let r = lead(&app, 6, json!({"custom": {"budget": 100}})).await;
        assert_eq!(r.status(), 201);
        // A form: posted to (its key then known in memory), switched off, gone at once.
        let form = app
            .created(
                "/api/v1/forms",
                t,
                json!({"name": "缓存表单", "min_fill_seconds": 0,
                       "fields": [{"field": "name", "labels": {"zh-CN": "姓名"}},
                                  {"field": "phone", "labels": {"zh-CN": "手机"}},
                                  {"field": "custom.budget", "labels": {"zh-CN": "预算"}}]}),
            )
            .await;
        let url = app.url(&format!("/public/forms/{}", form["key"].as_str().unwrap()));
        let web = reqwest::Client::new();
        let post = |phone: &'static str| {
            web.post(&url)
                .json(&json!({"name": "表单客人", "phone": phone, "custom.budget": "5"}))
                .send()
        };
        assert_eq!(post("13700139001").await.unwrap().status(), 200);
        let r = app
            .patch(
                &format!("/api/v1/forms/{}", form["id"].as_str().unwrap()),
                t,
                json!({"version": form["version"], "active": false}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(post("13700139002").await.unwrap().status(), 404);
    }
);
