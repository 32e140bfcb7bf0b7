//! Notifications: a record handed to a rep, or a colleague's book passed on, tells the rep under
//! the bell and by email in their language (as they chose); reading them is per user.

use crate::both;
use crate::harness::{refused, TestApp};
use serde_json::{json, Value};

fn pair(f: &str, c: &str) -> (String, String) {
    (f.to_owned(), c.to_owned())
}

async fn inbox(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let v: Value = app
        .get(&format!("/api/v1/notifications{query}"), token)
        .await
        .json()
        .await
        .unwrap();
    v["items"].as_array().unwrap().clone()
}

async fn unread(app: &TestApp, token: &str) -> i64 {
    let v: Value = app
        .get("/api/v1/notifications/unread", token)
        .await
        .json()
        .await
        .unwrap();
    v["unread"].as_i64().unwrap()
}

both!(
    handing_over_tells_the_new_owner,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let (rep, rep_token) = app.user_with_role("sales", "li.rep@acme.test").await;
        let (other, other_token) = app.user_with_role("sales", "wang.rep@acme.test").await;
        // The rep reads English.
        let r = app
            .patch("/api/v1/me", &rep_token, json!({"locale": "en"}))
            .await;
        assert_eq!(r.status(), 200);
        let contact = app
            .created("/api/v1/contacts", t, json!({"name": "欧阳锋"}))
            .await;
        // Nobody is told about what they did themselves: the admin's own contact tells no one.
        assert_eq!(unread(&app, t).await, 0);
        let r = app
            .patch(
                &format!("/api/v1/contacts/{}", contact["id"].as_str().unwrap()),
                t,
                json!({"version": contact["version"], "owner_id": rep["id"]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(unread(&app, &rep_token).await, 1);
        let items = inbox(&app, &rep_token, "").await;
        assert_eq!(items[0]["kind"], "assigned");
        assert_eq!(
            items[0]["link"],
            format!("/customers/contacts/{}", contact["id"].as_str().unwrap())
        );
        let msg = items[0]["message"].as_str().unwrap();
        assert!(
            msg.contains("欧阳锋") && msg.contains("is now yours"),
            "{msg}"
        );
        // The other rep sees nothing of it, and cannot mark it read.
        assert!(inbox(&app, &other_token, "").await.is_empty());
        let r: Value = app
            .post(
                "/api/v1/notifications/read",
                &other_token,
                json!({"ids": [items[0]["id"]]}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["marked"], 0);
        assert_eq!(unread(&app, &rep_token).await, 1);

        // The email: queued with the notification, written in the rep's language by the worker.
        app.run_pending_jobs().await;
        app.run_pending_jobs().await;
        let mail = app.smtp.received();
        let to_rep: Vec<&String> = mail
            .iter()
            .filter(|m| m.contains("li.rep@acme.test"))
            .collect();
        assert_eq!(to_rep.len(), 1, "one email");
        let body = crate::jobs::body_of(to_rep[0]);
        assert!(
            body.contains("is now yours") && body.contains("/customers/contacts/"),
            "{body}"
        );

        // Turned off, the next one shows under the bell only.
        let prefs: Value = app
            .req(
                reqwest::Method::PUT,
                "/api/v1/notifications/preferences",
                &rep_token,
            )
            .json(&json!([{"kind": "assigned", "email": false}]))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // Every kind is listed (modules add theirs); the one changed says so.
        assert_eq!(
            prefs.as_array().unwrap()[..2],
            [
                json!({"kind": "assigned", "email": false}),
                json!({"kind": "book_transferred", "email": true})
            ]
        );
        let r = app
            .req(
                reqwest::Method::PUT,
                "/api/v1/notifications/preferences",
                &rep_token,
            )
            .json(&json!([{"kind": "weather", "email": true}]))
            .send()
            .await
            .unwrap();
        assert_eq!(refused(r).await, vec![pair("0.kind", "unknown")]);
        let second = app
            .created(
                "/api/v1/accounts",
                t,
                json!({"name": "白驼山庄", "owner_id": rep["id"]}),
            )
            .await;
        assert_eq!(second["owner_id"], rep["id"]);
        let c2 = app
            .created("/api/v1/contacts", t, json!({"name": "欧阳克"}))
            .await;
        app.patch(
            &format!("/api/v1/contacts/{}", c2["id"].as_str().unwrap()),
            t,
            json!({"version": c2["version"], "owner_id": rep["id"]}),
        )
        .await;
        app.run_pending_jobs().await;
        app.run_pending_jobs().await;
        let mails_to_rep = app
            .smtp
            .received()
            .iter()
            .filter(|m| m.contains("li.rep@acme.test"))
            .count();
        assert_eq!(mails_to_rep, 1, "no email once turned off");
        assert_eq!(unread(&app, &rep_token).await, 2);

        // The rep's book goes to the other rep: one summary, not one per record.
        let r = app
            .post(
                "/api/v1/transfers",
                t,
                json!({"from_user_id": rep["id"], "to_user_ids": [other["id"]]}),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let got = inbox(&app, &other_token, "").await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["kind"], "book_transferred");
        assert_eq!(got[0]["params"]["contacts"], 2);
        let msg = got[0]["message"].as_str().unwrap();
        assert!(
            msg.contains("1 个客户") && msg.contains("2 个联系人"),
            "{msg}"
        );

        // Marking all read empties the bell.
        let r: Value = app
            .post("/api/v1/notifications/read", &rep_token, json!({}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["marked"], 2);
        assert_eq!(unread(&app, &rep_token).await, 0);
        assert_eq!(inbox(&app, &rep_token, "?unread=true").await.len(), 0);
        assert_eq!(inbox(&app, &rep_token, "").await.len(), 2);
    }
);
