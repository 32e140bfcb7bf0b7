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

both!(
    the_nps_survey_goes_out_on_schedule_to_customers_served_lately,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let mut asked = vec![];
        for (name, email, ticket) in [
            ("served", Some("served@nps.test"), true),
            ("also", Some("also@nps.test"), true),
            ("idle", Some("idle@nps.test"), false),
            ("no-mail", None, true),
        ] {
            let c = app
                .created("/api/v1/contacts", t, json!({"name": name, "email": email}))
                .await;
            if ticket {
                app.created(
                    "/api/v1/tickets",
                    t,
                    json!({"subject": "问题", "contact_id": c["id"]}),
                )
                .await;
            }
            if let (true, Some(e)) = (ticket, email) {
                asked.push(e.to_owned());
            }
        }
        let put = |body: Value| {
            app.req(reqwest::Method::PUT, "/api/v1/surveys/nps-schedule", t)
                .json(&body)
                .send()
        };
        let r = put(json!({"version": 0, "every_days": 3})).await.unwrap();
        assert_eq!(
            crate::harness::refused(r).await,
            vec![("every_days".into(), "out_of_range".into())]
        );
        let due = chrono::Utc::now() - chrono::Duration::minutes(1);
        let r = put(
            json!({"version": 0, "active": true, "every_days": 30, "lookback_days": 90,
                           "quiet_days": 60, "next_at": due}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        // Saved again from the same version: refused.
        let r = put(json!({"version": 0, "active": false})).await.unwrap();
        assert_eq!(r.status(), 412);

        let before = app.smtp.received().len();
        app.run_pending_jobs().await;
        let mails: Vec<String> = app.smtp.received()[before..].to_vec();
        let mut to: Vec<String> = mails
            .iter()
            .filter_map(|m| {
                asked
                    .iter()
                    .find(|a| m.contains(&format!("To: {a}")))
                    .cloned()
            })
            .collect();
        to.sort();
        asked.sort();
        assert_eq!(to, asked, "the customers served lately, each once");
        assert_eq!(mails.len(), 2);
        let s: Value = app
            .get("/api/v1/surveys/nps-schedule", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(s["last_sent"], 2);
        let next: chrono::DateTime<chrono::Utc> = s["next_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            next.timestamp(),
            (due + chrono::Duration::days(30)).timestamp()
        );
        // The link opens the NPS question.
        let body = crate::jobs::body_of(&mails[0]);
        let at = body.find("/s/").expect("a survey link");
        let link: String = body[at..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        let page = Client::new()
            .get(app.url(&link))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("推荐") || page.contains("recommend"),
            "{page}"
        );
        // The next run, a month on: nobody asked again within the quiet period.
        let before = app.smtp.received().len();
        app.run_jobs_at(next + chrono::Duration::minutes(1)).await;
        assert_eq!(app.smtp.received().len(), before);
        let s: Value = app
            .get("/api/v1/surveys/nps-schedule", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(s["last_sent"], 0);
    }
);

both!(
    the_summary_counts_each_tickets_and_contacts_latest_answer,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let mut contacts = vec![];
        for i in 0..4 {
            contacts.push(
                app.created("/api/v1/contacts", t, json!({"name": format!("客户{i}")}))
                    .await,
            );
        }
        let mut tickets = vec![];
        for c in &contacts[..2] {
            tickets.push(
                app.created(
                    "/api/v1/tickets",
                    t,
                    json!({"subject": "s", "contact_id": c["id"]}),
                )
                .await,
            );
        }
        // Answers, some changed later (the latest counts), about tickets and about no ticket.
        let answers = [
            ("csat", 2, Some(0), None),
            ("csat", 5, Some(0), None),
            ("csat", 3, Some(1), None),
            ("csat", 4, None, Some(2)),
            ("nps", 10, None, Some(0)),
            ("nps", 3, None, Some(1)),
            ("nps", 8, None, Some(1)),
            ("nps", 6, None, Some(3)),
            ("nps", 9, None, Some(2)),
        ];
        for (kind, score, ticket, contact) in answers {
            let mut body = json!({"kind": kind, "score": score});
            if let Some(i) = ticket {
                body["ticket_id"] = tickets[i]["id"].clone();
            }
            if let Some(i) = contact {
                body["contact_id"] = contacts[i]["id"].clone();
            }
            app.created("/api/v1/surveys", t, body).await;
        }
        let list: Value = app
            .get("/api/v1/surveys?limit=200", t)
            .await
            .json()
            .await
            .unwrap();
        let rows: Vec<guanxi_service::surveys::Answer> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| guanxi_service::surveys::Answer {
                kind: r["kind"].as_str().unwrap().to_owned(),
                score: r["score"].as_i64().unwrap(),
                ticket_id: r["ticket_id"].as_str().map(|s| s.parse().unwrap()),
                contact_id: r["contact_id"].as_str().map(|s| s.parse().unwrap()),
                at: r["at"].as_str().unwrap().parse().unwrap(),
                id: r["id"].as_str().unwrap().parse().unwrap(),
            })
            .collect();
        let expected = guanxi_service::surveys::tally(rows.iter());
        let got: Value = app
            .get("/api/v1/surveys/summary", t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(got, serde_json::to_value(&expected).unwrap());
        assert_eq!(
            (got["csat_answers"].as_i64(), got["nps_answers"].as_i64()),
            (Some(3), Some(4))
        );
    }
);
