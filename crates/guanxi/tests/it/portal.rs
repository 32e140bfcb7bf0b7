//! The customer portal: a contact invited by a colleague signs in by emailed link (choosing a
//! password) or by password (rate-limited), sees their own tickets — their company's only when
//! allowed, another company's never, internal notes never — opens and writes on tickets, and is
//! answered with articles before opening one (solved or submitted, both counted). Every portal
//! endpoint is walked as another company's customer and another tenant's.

use reqwest::{Client, Method};
use serde_json::{json, Value};

use crate::both;
use crate::harness::{refused, TestApp};

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + 20;
    html[at..].split('"').next().unwrap().to_owned()
}

/// Signs in through the portal link in an email body, choosing `password`; the link then
/// refuses a second use.
async fn use_link(app: &TestApp, body: &str, password: &str) {
    let at = body.find("/portal/").expect("a portal link") + 8;
    let rest = &body[at..];
    let link: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_/".contains(*c))
        .collect();
    let c = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = app.url(&format!("/portal/{link}"));
    // Opening the link signs nobody in; its button does, once.
    let page = c.get(&url).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&page);
    let r = c
        .post(&url)
        .form(&[("_csrf", csrf.as_str()), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "signed in by the link");
    let again = c
        .post(&url)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_ne!(again.status(), 303, "a link is used once");
}

/// Invites a new contact of `account` to the portal (company access as given) and signs them
/// in through the emailed link, choosing a password; their portal token.
pub(crate) async fn customer(
    app: &TestApp,
    account: &Value,
    email: &str,
    company: bool,
) -> (Value, String) {
    let t = &app.admin_token;
    let contact = app
        .created(
            "/api/v1/contacts",
            t,
            json!({"name": email.split('@').next().unwrap(), "email": email, "account_id": account["id"]}),
        )
        .await;
    let before = app.smtp.received().len();
    app.created(
        "/api/v1/portal-users",
        t,
        json!({"contact_id": contact["id"], "company_access": company}),
    )
    .await;
    app.run_pending_jobs().await;
    let mails = app.smtp.received();
    let mail = mails[before..]
        .iter()
        .find(|m| m.contains(email))
        .expect("an invitation");
    use_link(app, &crate::jobs::body_of(mail), "a-good-password-1").await;
    let tenant = &app.tenant_id;
    let r = app
        .req(Method::POST, "/portal/api/v1/sessions", "")
        .json(&json!({"tenant_id": tenant, "email": email, "password": "a-good-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.unwrap();
    (contact, s["token"].as_str().unwrap().to_owned())
}

both!(
    customers_see_their_own_and_their_company_only,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let acme = app
            .created("/api/v1/accounts", t, json!({"name": "甲公司"}))
            .await;
        let other = app
            .created("/api/v1/accounts", t, json!({"name": "乙公司"}))
            .await;
        // A contact without an email cannot be invited; one already invited is refused.
        let plain = app
            .created("/api/v1/contacts", t, json!({"name": "无邮箱"}))
            .await;
        let r = app
            .post(
                "/api/v1/portal-users",
                t,
                json!({"contact_id": plain["id"]}),
            )
            .await;
        assert_eq!(refused(r).await, vec![("email".into(), "required".into())]);
        let (alice, a) = customer(&app, &acme, "alice@acme.cn", false).await;
        let (bob, b) = customer(&app, &acme, "bob@acme.cn", false).await;
        let (_, z) = customer(&app, &other, "zed@other.cn", true).await;
        let r = app
            .post(
                "/api/v1/portal-users",
                t,
                json!({"contact_id": alice["id"]}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("contact_id".into(), "taken".into())]
        );

        // Alice opens a ticket from the portal; the desk adds a note and replies.
        let mine = app
            .created(
                "/portal/api/v1/tickets",
                &a,
                json!({"subject": "设备无法开机", "body": "指示灯不亮"}),
            )
            .await;
        let id = mine["id"].as_str().unwrap();
        let staff: Value = app
            .get(&format!("/api/v1/tickets/{id}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(staff["channel"], "portal");
        assert_eq!(staff["contact_id"], alice["id"]);
        assert_eq!(staff["account_id"], acme["id"]);
        for (kind, body) in [("note", "内部：怀疑电源板"), ("reply", "请检查电源插头")]
        {
            app.created(
                &format!("/api/v1/tickets/{id}/messages"),
                t,
                json!({"kind": kind, "body": body}),
            )
            .await;
        }
        let m: Value = app
            .get(&format!("/portal/api/v1/tickets/{id}/messages"), &a)
            .await
            .json()
            .await
            .unwrap();
        let bodies: Vec<&str> = m["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, vec!["请检查电源插头"], "no internal note");
        // Alice answers; the ticket moves as the customer writing moves it.
        app.created(
            &format!("/portal/api/v1/tickets/{id}/messages"),
            &a,
            json!({"body": "插头没问题"}),
        )
        .await;
        let r = app
            .post(
                &format!("/portal/api/v1/tickets/{id}/messages"),
                &a,
                json!({"body": " "}),
            )
            .await;
        assert_eq!(refused(r).await, vec![("body".into(), "required".into())]);

        // Bob (same company, no company access) and Zed (another company) do not see it.
        for (who, token) in [("bob", &b), ("zed", &z)] {
            for path in [
                format!("/portal/api/v1/tickets/{id}"),
                format!("/portal/api/v1/tickets/{id}/messages"),
            ] {
                let r = app.get(&path, token).await;
                assert_eq!(r.status(), 404, "{who} {path}");
            }
            let r = app
                .post(
                    &format!("/portal/api/v1/tickets/{id}/messages"),
                    token,
                    json!({"body": "x"}),
                )
                .await;
            assert_eq!(r.status(), 404, "{who} writes");
            for scope in ["", "?scope=company"] {
                let l: Value = app
                    .get(&format!("/portal/api/v1/tickets{scope}"), token)
                    .await
                    .json()
                    .await
                    .unwrap();
                assert!(!l.to_string().contains(id), "{who} lists it");
            }
        }
        // Given company access, Bob sees his company's tickets — Zed still not.
        let pu: Value = app
            .get(
                &format!(
                    "/api/v1/portal-users?contact_id={}",
                    bob["id"].as_str().unwrap()
                ),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        let bob_user = &pu["items"][0];
        let r = app
            .patch(
                &format!("/api/v1/portal-users/{}", bob_user["id"].as_str().unwrap()),
                t,
                json!({"company_access": true, "version": bob_user["version"]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let l: Value = app
            .get("/portal/api/v1/tickets?scope=company", &b)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(l["items"][0]["id"], mine["id"]);
        let own: Value = app
            .get("/portal/api/v1/tickets", &b)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(own["items"], json!([]), "his own are still only his");
        // The company's list a page at a time: every ticket once, newest change first.
        for i in 0..3 {
            app.created(
                "/portal/api/v1/tickets",
                &a,
                json!({"subject": format!("第 {i} 台设备报警"), "body": "请检查"}),
            )
            .await;
        }
        let all: Value = app
            .get("/portal/api/v1/tickets?scope=company&limit=200", &b)
            .await
            .json()
            .await
            .unwrap();
        let all: Vec<Value> = all["items"].as_array().unwrap().clone();
        assert!(all.len() >= 4);
        let (mut paged, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let path = match &cursor {
                Some(c) => format!("/portal/api/v1/tickets?scope=company&limit=1&cursor={c}"),
                None => "/portal/api/v1/tickets?scope=company&limit=1".to_owned(),
            };
            let p: Value = app.get(&path, &b).await.json().await.unwrap();
            paged.extend(
                p["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x["id"].clone()),
            );
            match p["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let ids: Vec<Value> = all.iter().map(|x| x["id"].clone()).collect();
        assert_eq!(paged, ids);
        let r = app
            .get("/portal/api/v1/tickets?cursor=not-a-cursor", &b)
            .await;
        assert_eq!(refused(r).await, vec![("cursor".into(), "invalid".into())]);
        assert_eq!(
            app.get(&format!("/portal/api/v1/tickets/{id}"), &b)
                .await
                .status(),
            200
        );
        assert_eq!(
            app.get(&format!("/portal/api/v1/tickets/{id}"), &z)
                .await
                .status(),
            404
        );
        // Closing Bob's access ends his sessions at once.
        let r = app
            .patch(
                &format!("/api/v1/portal-users/{}", bob_user["id"].as_str().unwrap()),
                t,
                json!({"active": false, "version": bob_user["version"].as_i64().unwrap() + 1}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.get("/portal/api/v1/me", &b).await.status(), 401);
        // Staff tokens are not portal tokens, nor the other way round.
        assert_eq!(app.get("/portal/api/v1/me", t).await.status(), 401);
        assert_eq!(app.get("/api/v1/tickets", &a).await.status(), 401);
    }
);

both!(
    questions_are_answered_and_deflection_counted,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let acme = app
            .created("/api/v1/accounts", t, json!({"name": "丙公司"}))
            .await;
        app.created(
        "/api/v1/articles",
        t,
        json!({"title": "如何修改发票抬头", "body": "三十天内可以重开发票。", "status": "published",
               "audience": "public"}),
    )
    .await;
        app.created(
            "/api/v1/articles",
            t,
            json!({"title": "发票内部作废流程", "body": "内部", "status": "published"}),
        )
        .await;
        let (_, a) = customer(&app, &acme, "carol@c.cn", false).await;
        let q = app
            .created(
                "/portal/api/v1/questions",
                &a,
                json!({"text": "发票抬头开错了怎么办"}),
            )
            .await;
        let s = q["suggestions"].as_array().unwrap();
        assert_eq!(s.len(), 1, "public articles only: {q}");
        assert_eq!(s[0]["title"], "如何修改发票抬头");
        let r = app
            .post(
                &format!(
                    "/portal/api/v1/questions/{}/solved",
                    q["id"].as_str().unwrap()
                ),
                &a,
                json!({"article_id": s[0]["id"]}),
            )
            .await;
        assert_eq!(r.status(), 204);
        // A question that is not theirs is named, and nothing is opened.
        let r = app
            .req(Method::POST, "/portal/api/v1/tickets", &a)
            .json(&json!({"subject": "x", "body": "y", "question_id": uuid::Uuid::now_v7()}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refused(r).await,
            vec![("question_id".into(), "unknown".into())]
        );
        // A second question is submitted anyway.
        let q2 = app
            .created(
                "/portal/api/v1/questions",
                &a,
                json!({"text": "发票寄到哪里"}),
            )
            .await;
        app.created(
            "/portal/api/v1/tickets",
            &a,
            json!({"subject": "发票邮寄", "body": "寄到哪里？", "question_id": q2["id"]}),
        )
        .await;
        let d: Value = app
            .get("/api/v1/articles/deflection", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (
                d["asked"].as_i64(),
                d["solved"].as_i64(),
                d["submitted"].as_i64()
            ),
            (Some(2), Some(1), Some(1)),
            "{d}"
        );
        assert_eq!(d["rate"].as_f64(), Some(50.0));
        // The same counts as a report (the service dashboard's tile).
        let r: Value = app
            .post(
                "/api/v1/reports/run",
                t,
                json!({"entity": "help_questions", "group_by": [{"field": "outcome"}],
                       "measures": [{"agg": "count"}]}),
            )
            .await
            .json()
            .await
            .unwrap();
        let mut rows: Vec<(String, f64)> = r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row[0].as_str().unwrap().to_owned(),
                    row[1].as_f64().unwrap(),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            rows,
            vec![("solved".to_owned(), 1.0), ("submitted".to_owned(), 1.0)],
            "{r}"
        );
        // Wrong passwords are stopped; the right one then still waits for the window.
        for _ in 0..5 {
            let r = app
            .req(Method::POST, "/portal/api/v1/sessions", "")
            .json(&json!({"tenant_id": app.tenant_id, "email": "carol@c.cn", "password": "wrong-password"}))
            .send()
            .await
            .unwrap();
            assert_eq!(r.status(), 401);
        }
        let r = app
        .req(Method::POST, "/portal/api/v1/sessions", "")
        .json(&json!({"tenant_id": app.tenant_id, "email": "carol@c.cn", "password": "a-good-password-1"}))
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 429);
    }
);

both!(
    every_portal_endpoint_keeps_companies_and_tenants_apart,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let acme = app
            .created("/api/v1/accounts", t, json!({"name": "丁公司"}))
            .await;
        let other = app
            .created("/api/v1/accounts", t, json!({"name": "戊公司"}))
            .await;
        app.created(
            "/api/v1/articles",
            t,
            json!({"title": "丁公司内部文章", "body": "内部", "status": "published"}),
        )
        .await;
        let internal: Value = app.get("/api/v1/articles", t).await.json().await.unwrap();
        let (_, a) = customer(&app, &acme, "dan@d.cn", true).await;
        let (_, z) = customer(&app, &other, "eve@e.cn", true).await;
        let ticket = app
            .created(
                "/portal/api/v1/tickets",
                &a,
                json!({"subject": "丁的请求", "body": "细节"}),
            )
            .await;
        let q = app
            .created("/portal/api/v1/questions", &a, json!({"text": "丁的问题"}))
            .await;
        let a_ids = [
            ticket["id"].as_str().unwrap().to_owned(),
            q["id"].as_str().unwrap().to_owned(),
            internal["items"][0]["id"].as_str().unwrap().to_owned(),
        ];
        // A customer of another tenant.
        let (_, b_admin) = app.signup("Other Co", "boss@other-portal.test").await;
        let b_acc = app
            .created("/api/v1/accounts", &b_admin, json!({"name": "己公司"}))
            .await;
        let b_contact = app
            .created(
                "/api/v1/contacts",
                &b_admin,
                json!({"name": "Fay", "email": "fay@f.cn", "account_id": b_acc["id"]}),
            )
            .await;
        app.created(
            "/api/v1/portal-users",
            &b_admin,
            json!({"contact_id": b_contact["id"]}),
        )
        .await;
        app.run_pending_jobs().await;
        let mail = app
            .smtp
            .received()
            .into_iter()
            .rev()
            .find(|m| m.contains("fay@f.cn"))
            .unwrap();
        let body = crate::jobs::body_of(&mail);
        let at = body.find("/portal/").unwrap() + 8;
        let b_tenant: String = body[at..].chars().take(36).collect();
        assert_ne!(b_tenant, app.tenant_id);
        use_link(&app, &body, "fay-password-123").await;
        let s: Value = app
            .req(Method::POST, "/portal/api/v1/sessions", "")
            .json(&json!({"tenant_id": b_tenant, "email": "fay@f.cn", "password": "fay-password-123"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let f = s["token"].as_str().unwrap().to_owned();
        // Nor does Fay get in with her password at A's portal.
        let r = app
            .req(Method::POST, "/portal/api/v1/sessions", "")
            .json(&json!({"tenant_id": app.tenant_id, "email": "fay@f.cn", "password": "fay-password-123"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let spec: Value = reqwest::get(app.url("/api/v1/openapi.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut walked = 0;
        for (path, ops) in spec["paths"].as_object().unwrap() {
            if !path.starts_with("/portal/api/v1") {
                continue;
            }
            for (method, _) in ops.as_object().unwrap() {
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                for who in [&z, &f] {
                    if path.contains("{id}") {
                        let call = |id: &str| {
                            let rq = app.req(
                                m.clone(),
                                &path.replace("{id}", id).replace("{file_id}", id),
                                who,
                            );
                            let rq = if m == Method::POST {
                                rq.json(&json!({"body": "x", "article_id": a_ids[2]}))
                            } else {
                                rq
                            };
                            async move {
                                let r = rq.send().await.unwrap();
                                (r.status().as_u16(), r.text().await.unwrap())
                            }
                        };
                        let (rs, rb) = call(&uuid::Uuid::now_v7().to_string()).await;
                        assert!(rs == 404 || rs == 400, "{method} {path} random: {rs} {rb}");
                        for id in &a_ids {
                            let (s, b) = call(id).await;
                            assert_eq!((s, &b), (rs, &rb), "{method} {path} with A's {id}");
                        }
                        walked += 1;
                    } else if m == Method::GET {
                        let body = app.get(path, who).await.text().await.unwrap();
                        for id in &a_ids {
                            assert!(!body.contains(id.as_str()), "GET {path} leaked {id}");
                        }
                        assert!(!body.contains("丁"), "GET {path} leaked: {body}");
                        walked += 1;
                    }
                }
            }
        }
        assert!(walked >= 12, "walked {walked}");
        // The portal pages: another tenant's cookie is nobody here; A's ticket page is not found
        // for Zed.
        let c = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let tenant = &app.tenant_id;
        let tid = ticket["id"].as_str().unwrap();
        let r = c
            .get(app.url(&format!("/portal/{tenant}/tickets/{tid}")))
            .header("cookie", format!("gx_portal={z}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let r = c
            .get(app.url(&format!("/portal/{b_tenant}")))
            .header("cookie", format!("gx_portal={a}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            303,
            "A's session is nobody in another tenant's portal"
        );
    }
);
