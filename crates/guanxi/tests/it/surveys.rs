//! CSAT and NPS: the resolution email asks for a score by link; the page it opens records an
//! answer only when sent (a GET scores nothing); answers are kept, never overwritten, and the
//! summary reads each ticket's latest; agents record phone answers; bad scores are refused.

use reqwest::Client;
use serde_json::{json, Value};

use crate::both;
use crate::harness::TestApp;

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + 20;
    html[at..].split('"').next().unwrap().to_owned()
}

both!(
    a_resolution_mail_asks_for_a_score_and_answers_are_kept,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let contact = app
            .created(
                "/api/v1/contacts",
                t,
                json!({"name": "赵敏", "email": "zhao@cust.cn"}),
            )
            .await;
        let ticket = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "无法登录", "contact_id": contact["id"]}),
            )
            .await;
        let id = ticket["id"].as_str().unwrap();
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/messages"),
                t,
                json!({"kind": "reply", "body": "已为您重置密码", "status": "resolved"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        app.run_pending_jobs().await;
        let mails = app.smtp.received();
        assert_eq!(mails.len(), 1);
        let body = crate::jobs::body_of(&mails[0]);
        let at = body
            .find("/s/")
            .unwrap_or_else(|| panic!("a survey link: {body}"));
        let token = body[at + 3..].split('?').next().unwrap().to_owned();
        assert!(body.contains(&format!("/s/{token}?score=5")), "{body}");

        // Opening the link scores nothing; sending the form does.
        let c = Client::builder().cookie_store(true).build().unwrap();
        let page = c
            .get(app.url(&format!("/s/{token}?score=5")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("value=\"5\" checked"),
            "the mail's score is chosen"
        );
        let none: Value = app
            .get(&format!("/api/v1/surveys?ticket_id={id}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(none["items"].as_array().unwrap().len(), 0);
        let csrf = csrf_of(&html);
        let bad = c
            .post(app.url(&format!("/s/{token}")))
            .form(&[("_csrf", csrf.as_str()), ("score", "9")])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 422, "a CSAT score is 1–5");
        for (score, comment) in [("5", "很快就解决了"), ("2", "其实又坏了")] {
            let r = c
                .post(app.url(&format!("/s/{token}")))
                .form(&[
                    ("_csrf", csrf.as_str()),
                    ("score", score),
                    ("comment", comment),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert!(r.text().await.unwrap().contains("survey-done"));
        }
        let list: Value = app
            .get(&format!("/api/v1/surveys?ticket_id={id}"), t)
            .await
            .json()
            .await
            .unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(
            items.len(),
            2,
            "the second answer is added, not written over"
        );
        assert_eq!(items[0]["score"], 2);
        assert_eq!(items[1]["comment"], "很快就解决了");
        assert_eq!(items[0]["channel"], "email");
        assert_eq!(items[0]["contact_id"], contact["id"]);
        let sum: Value = app
            .get(
                &format!(
                    "/api/v1/surveys/summary?contact_id={}",
                    contact["id"].as_str().unwrap()
                ),
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            sum["csat_answers"], 1,
            "the ticket's latest answer counts: {sum}"
        );
        assert_eq!(sum["csat_percent"], 0.0);

        // An answer on the phone, recorded by the agent; NPS from the same contact.
        let r = app
            .post(
                "/api/v1/surveys",
                t,
                json!({"kind": "nps", "score": 11, "contact_id": contact["id"]}),
            )
            .await;
        assert_eq!(r.status(), 422);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["errors"][0]["field"], "score");
        for score in [3, 10] {
            let r = app
                .post(
                    "/api/v1/surveys",
                    t,
                    json!({"kind": "nps", "score": score, "contact_id": contact["id"]}),
                )
                .await;
            assert_eq!(r.status(), 201);
        }
        let sum: Value = app
            .get("/api/v1/surveys/summary?kind=nps", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (sum["nps_answers"].as_i64(), sum["nps"].as_f64()),
            (Some(1), Some(100.0)),
            "{sum}"
        );
        // A link that does not exist is a page saying so.
        let gone = c.get(app.url("/s/not-a-token")).send().await.unwrap();
        assert_eq!(gone.status(), 404);
    }
);
