//! Public forms: a visitor's post becomes a lead once (or a touch on who they already are),
//! every post is kept — spam, incomplete and flooding ones too — and a form's key only ever
//! reaches its own tenant.

use crate::both;
use crate::harness::{refused, TestApp};
use serde_json::{json, Value};

async fn make_form(app: &TestApp, extra: Value) -> Value {
    let mut body = json!({
        "name": "官网咨询",
        "fields": [
            {"field": "name", "labels": {"zh-CN": "姓名", "en": "Name"}},
            {"field": "company", "labels": {"zh-CN": "公司"}},
            {"field": "phone", "labels": {"zh-CN": "手机"}, "required": true},
            {"field": "custom.budget", "labels": {"zh-CN": "预算（元）"}}
        ],
        "consent": {"zh-CN": "我同意贵公司联系我"},
        "source_detail": "2026 官网",
        "tags": ["官网"],
        "min_fill_seconds": 0
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.created("/api/v1/forms", &app.admin_token, body).await
}

async fn submissions(app: &TestApp, form: &Value) -> Vec<Value> {
    let v: Value = app
        .get(
            &format!("/api/v1/forms/{}/submissions", form["id"].as_str().unwrap()),
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    v["items"].as_array().unwrap().clone()
}

fn public(app: &TestApp, form: &Value) -> String {
    app.url(&format!("/public/forms/{}", form["key"].as_str().unwrap()))
}

async fn leads(app: &TestApp) -> Vec<Value> {
    let v: Value = app
        .get("/api/v1/leads", &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    v["items"].as_array().unwrap().clone()
}

both!(a_visitor_becomes_a_lead_once, |app: TestApp| async move {
    app.created(
        "/api/v1/custom-fields",
        &app.admin_token,
        json!({"entity": "leads", "key": "budget", "kind": "money", "label": "预算"}),
    )
    .await;
    let form = make_form(&app, json!({})).await;
    let web = reqwest::Client::new();
    // The hosted page draws the fields in the visitor's language, token included.
    let page = web
        .get(public(&app, &form))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("预算（元）") && html.contains("name=\"_t\""),
        "{html}"
    );
    // Incomplete: the form again, each missing field named; nothing created.
    let r = web
        .post(public(&app, &form))
        .form(&[("name", "赵敏")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("value=\"赵敏\""), "keeps what was typed");
    let r = web
        .post(public(&app, &form))
        .json(&json!({"company": "明教"}))
        .send()
        .await
        .unwrap();
    let fields: Vec<String> = refused(r).await.into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, vec!["consent", "name", "phone"]);
    // A robot filling the hidden field is thanked and kept as spam, nothing more.
    let r = web
        .post(public(&app, &form))
        .form(&[
            ("name", "Bot"),
            ("phone", "13300133000"),
            ("consent", "yes"),
            ("homepage", "http://spam.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(leads(&app).await.is_empty());
    // A person: a lead from the form, with its tag, source and custom value (yuan → fen).
    let post = [
        ("name", "赵敏"),
        ("company", "明教"),
        ("phone", "133 0013 3001"),
        ("custom.budget", "12,000.50"),
        ("consent", "yes"),
        ("utm_campaign", "spring"),
    ];
    let r = web
        .post(public(&app, &form))
        .header("referer", "https://www.example.com/contact")
        .form(&post)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("谢谢"));
    let all = leads(&app).await;
    assert_eq!(all.len(), 1);
    let lead = &all[0];
    assert_eq!(lead["source"], "form");
    assert_eq!(lead["source_detail"], "2026 官网");
    assert_eq!(lead["tags"], json!(["官网"]));
    assert_eq!(lead["custom"]["budget"], 1_200_050);
    assert_eq!(lead["owner_id"], form["owner_id"]);
    // Sent twice: nothing new. The same person another day through the API: a touch.
    let r = web
        .post(public(&app, &form))
        .form(&post)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r: Value = web
        .post(public(&app, &form))
        .json(&json!({"name": "赵敏", "phone": "13300133001", "consent": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["outcome"], "matched");
    assert_eq!(leads(&app).await.len(), 1);
    // Every post is kept, with what became of it.
    let subs = submissions(&app, &form).await;
    let outcomes: Vec<&str> = subs
        .iter()
        .map(|s| s["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        vec!["matched", "repeated", "created", "spam", "invalid", "invalid"]
    );
    let created = &subs[2];
    assert_eq!(created["record_id"], lead["id"]);
    assert_eq!(created["utm"]["utm_campaign"], "spring");
    assert_eq!(created["referrer"], "https://www.example.com/contact");
    assert_eq!(subs[3]["reason"], "honeypot");
    // The lead's timeline shows the form and the consent given.
    let tl: Value = app
        .get(
            &format!("/api/v1/leads/{}/timeline", lead["id"].as_str().unwrap()),
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    let touch = tl["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "touch")
        .unwrap();
    assert_eq!(touch["detail"]["extra"]["consent"], "我同意贵公司联系我");
});

both!(
    spam_floods_and_strangers_are_kept_out,
    |app: TestApp| async move {
        app.created(
            "/api/v1/custom-fields",
            &app.admin_token,
            json!({"entity": "leads", "key": "budget", "kind": "money", "label": "预算"}),
        )
        .await;
        let web = reqwest::Client::new();
        // Posted sooner than a person could fill it in: kept as spam.
        let slow = make_form(&app, json!({"name": "慢表单", "min_fill_seconds": 600})).await;
        let html = web
            .get(public(&app, &slow))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let token = html
            .split("name=\"_t\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let r = web
            .post(public(&app, &slow))
            .form(&[
                ("name", "快手"),
                ("phone", "13300133002"),
                ("consent", "yes"),
                ("_t", token.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = web
            .post(public(&app, &slow))
            .form(&[
                ("name", "伪造"),
                ("phone", "13300133003"),
                ("consent", "yes"),
                ("_t", "1.deadbeef"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let reasons: Vec<Value> = submissions(&app, &slow)
            .await
            .iter()
            .map(|s| s["reason"].clone())
            .collect();
        assert_eq!(reasons, vec![json!("bad_token"), json!("too_fast")]);
        assert!(leads(&app).await.is_empty());
        // A flood from one address: refused with 429 and Retry-After once over the limit.
        let form = make_form(&app, json!({"name": "小表单", "per_ip_hour": 2})).await;
        for i in 0..2 {
            let phone = format!("1330013301{i}");
            let r = web
                .post(public(&app, &form))
                .form(&[
                    ("name", "访客"),
                    ("phone", phone.as_str()),
                    ("consent", "yes"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        let r = web
            .post(public(&app, &form))
            .json(&json!({"name": "访客", "phone": "13300133019", "consent": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        // Two an hour: the next is on schedule half an hour after the second — and says so.
        let wait = crate::harness::retry_after(&r);
        assert!((1790..=1800).contains(&wait), "{wait}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["retry_after"], wait);
        assert_eq!(submissions(&app, &form).await[0]["outcome"], "rate_limited");
        // Offline, unknown, or another tenant's id inside the key: 404.
        let r = app
            .patch(
                &format!("/api/v1/forms/{}", form["id"].as_str().unwrap()),
                &app.admin_token,
                json!({"version": form["version"], "active": false}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let r = web.get(public(&app, &form)).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let r = web
            .post(app.url("/public/forms/nothing-here"))
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let (other_tenant, _) = app.signup("Other Co", "boss@other.test").await;
        let key = slow["key"].as_str().unwrap();
        let (_, tail) = key.split_once('-').unwrap();
        let other = uuid::Uuid::parse_str(&other_tenant).unwrap().simple();
        let r = web
            .post(app.url(&format!("/public/forms/{other}-{tail}")))
            .json(&json!({"name": "x", "phone": "13300133099", "consent": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        // A form must ask for the name, and its fields must exist.
        let r = app
            .post(
                "/api/v1/forms",
                &app.admin_token,
                json!({"name": "坏表单", "fields": [{"field": "phone", "labels": {"en": "Phone"}}, {"field": "custom.nope", "labels": {"en": "?"}}]}),
            )
            .await;
        let mut errs = refused(r).await;
        errs.sort();
        assert_eq!(
            errs,
            vec![
                ("fields".into(), "name_required".into()),
                ("fields.1.field".into(), "unknown_field".into())
            ]
        );
    }
);

both!(
    a_service_request_form_opens_tickets,
    |app: TestApp| async move {
        let t = &app.admin_token;
        app.created(
            "/api/v1/custom-fields",
            t,
            json!({"entity": "tickets", "key": "serial", "kind": "text", "label": "序列号"}),
        )
        .await;
        // A ticket form must ask whom to answer and what about; lead fields are not its own.
        let r = app
            .post(
                "/api/v1/forms",
                t,
                json!({"name": "报修", "target": "tickets",
                       "fields": [{"field": "name", "labels": {"zh-CN": "姓名"}},
                                  {"field": "wechat", "labels": {"zh-CN": "微信"}}]}),
            )
            .await;
        let mut got = refused(r).await;
        got.sort();
        assert_eq!(
            got,
            vec![
                ("fields".into(), "description_required".into()),
                ("fields".into(), "email_required".into()),
                ("fields.1.field".into(), "unknown_field".into()),
            ]
        );
        let form = app
            .created(
                "/api/v1/forms",
                t,
                json!({"name": "报修", "target": "tickets", "min_fill_seconds": 0,
                       "fields": [{"field": "name", "labels": {"zh-CN": "姓名"}},
                                  {"field": "email", "labels": {"zh-CN": "邮箱"}},
                                  {"field": "company", "labels": {"zh-CN": "公司"}},
                                  {"field": "description", "labels": {"zh-CN": "问题描述"}},
                                  {"field": "custom.serial", "labels": {"zh-CN": "序列号"}}],
                       "tags": ["官网报修"]}),
            )
            .await;
        assert_eq!(form["target"], "tickets");
        assert!(form["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| ["name", "email", "description"].contains(&f["field"].as_str().unwrap()))
            .all(|f| f["required"] == true));
        // Its target is fixed.
        let r = app
            .patch(
                &format!("/api/v1/forms/{}", form["id"].as_str().unwrap()),
                t,
                json!({"version": form["version"], "target": "leads"}),
            )
            .await;
        assert_eq!(refused(r).await, vec![("target".into(), "fixed".into())]);

        let web = reqwest::Client::new();
        let page = web
            .get(public(&app, &form))
            .header("accept-language", "zh-CN")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("<textarea") && page.contains("问题描述"),
            "{page}"
        );
        // A bad address is named and kept as an invalid post; nothing opened.
        let r = web
            .post(public(&app, &form))
            .json(&json!({"name": "钱六", "email": "not-an-address", "description": "坏了"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refused(r).await,
            vec![("email".into(), "invalid_email".into())]
        );
        for (text, serial) in [
            ("扫码枪无法识别条码\n型号 X1", "SN-001"),
            ("又坏了", "SN-002"),
        ] {
            let r = web
                .post(public(&app, &form))
                .form(&[
                    ("name", "钱六"),
                    ("email", "Qian.Liu@Shop.cn"),
                    ("company", "六福超市"),
                    ("description", text),
                    ("custom.serial", serial),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        let v: Value = app
            .get("/api/v1/tickets?sort=created_at", t)
            .await
            .json()
            .await
            .unwrap();
        let tickets = v["items"].as_array().unwrap();
        assert_eq!(tickets.len(), 2);
        let first = &tickets[0];
        assert_eq!(first["channel"], "form");
        assert_eq!(first["subject"], "扫码枪无法识别条码", "the first line");
        assert!(first["description"].as_str().unwrap().contains("六福超市"));
        assert_eq!(first["custom"]["serial"], "SN-001");
        assert_eq!(first["tags"], json!(["官网报修"]));
        assert_eq!(
            first["contact_id"], tickets[1]["contact_id"],
            "one contact for one address"
        );
        let contact: Value = app
            .get(
                &format!("/api/v1/contacts/{}", first["contact_id"].as_str().unwrap()),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (contact["name"].as_str(), contact["email"].as_str()),
            (Some("钱六"), Some("qian.liu@shop.cn"))
        );
        let subs = submissions(&app, &form).await;
        let outcomes: Vec<(&str, Option<&str>)> = subs
            .iter()
            .map(|s| (s["outcome"].as_str().unwrap(), s["entity"].as_str()))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("created", Some("tickets")),
                ("created", Some("tickets")),
                ("invalid", None)
            ]
        );
        assert!(leads(&app).await.is_empty(), "no lead from a service form");
    }
);

both!(
    a_form_whose_owner_left_keeps_taking_visitors,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let me: Value = app.get("/api/v1/me", t).await.json().await.unwrap();
        let (rep, _) = app.user_with_role("sales", "form.owner@acme.test").await;
        let form = make_form(
            &app,
            json!({"owner_id": rep["id"],
                   "fields": [{"field": "name", "labels": {"zh-CN": "姓名"}},
                              {"field": "phone", "labels": {"zh-CN": "手机"}}]}),
        )
        .await;
        let r = app
            .patch(
                &format!("/api/v1/users/{}", rep["id"].as_str().unwrap()),
                t,
                json!({"version": rep["version"], "active": false}),
            )
            .await;
        assert_eq!(r.status(), 200);
        // Visitors are still taken in, not refused for the company's settings: the
        // longest-standing administrator stands in for the owner who left.
        let web = reqwest::Client::new();
        for i in 0..2 {
            let r = web
                .post(public(&app, &form))
                .json(
                    &json!({"name": format!("访客{i}"), "phone": format!("1330013302{i}"),
                              "consent": true}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        }
        let owners: Vec<Value> = leads(&app)
            .await
            .iter()
            .map(|l| l["owner_id"].clone())
            .collect();
        assert_eq!(owners, vec![me["user"]["id"].clone(); 2]);
        // Told once (not once a post) to choose a new owner, with a link to the form.
        let told: Value = app
            .get("/api/v1/notifications", t)
            .await
            .json()
            .await
            .unwrap();
        let notes: Vec<&Value> = told["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == "form_owner_left")
            .collect();
        assert_eq!(notes.len(), 1, "{told}");
        assert_eq!(
            notes[0]["link"],
            format!("/admin/forms/{}", form["id"].as_str().unwrap())
        );
    }
);
