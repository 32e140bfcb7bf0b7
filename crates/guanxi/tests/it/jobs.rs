//! The outbox: invitation and reset emails reach a real SMTP server; with SMTP down they stay
//! queued and are retried, never lost and never sent twice.

use crate::both;
use chrono::Duration;
use guanxi_platform::jobs;
use reqwest::Client;
use serde_json::{json, Value};

/// The text of a received message, decoded as a mail client would (the body is base64).
pub fn body_of(raw: &str) -> String {
    use base64::Engine;
    let (_, body) = raw.split_once("\n\n").expect("headers and body");
    let b64: String = body.split_whitespace().collect();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64 body"),
    )
    .unwrap()
}

pub fn link_in(raw: &str) -> String {
    let msg = body_of(raw);
    let start = msg.find("token=").expect("a link in the email") + 6;
    msg[start..].split_whitespace().next().unwrap().to_owned()
}

both!(
    invitation_email_lets_the_user_in,
    |app: crate::harness::TestApp| async move {
        let sales = app.role("sales").await["id"].clone();
        let r = app.post("/api/v1/users", &app.admin_token, json!({"email": "new.hire@acme.test", "name": "新同事", "role_id": sales, "locale": "zh-CN"})).await;
        assert_eq!(r.status(), 201);
        let u: Value = r.json().await.unwrap();
        assert_eq!(u["has_password"], false);
        assert!(
            app.smtp.received().is_empty(),
            "sent from the worker, not the handler"
        );
        let stats = app.run_pending_jobs().await;
        assert_eq!(stats.done, 1);
        let mail = app.smtp.received();
        assert_eq!(mail.len(), 1);
        assert!(mail[0].contains("new.hire@acme.test"));
        assert!(
            body_of(&mail[0]).contains("新同事，您好"),
            "Chinese for a zh-CN user"
        );
        let token = link_in(&mail[0]);
        // Running again sends nothing more.
        assert_eq!(app.run_pending_jobs().await, jobs::RunStats::default());
        assert_eq!(app.smtp.received().len(), 1);
        let c = Client::new();
        let r = c
            .post(app.url("/api/v1/password-links"))
            .json(&json!({"token": token, "password": "short"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let r = c
            .post(app.url("/api/v1/password-links"))
            .json(&json!({"token": token, "password": "my-own-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        // One use only.
        let r = c
            .post(app.url("/api/v1/password-links"))
            .json(&json!({"token": token, "password": "my-own-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let r = c
            .post(app.url("/api/v1/sessions"))
            .json(&json!({"email": "new.hire@acme.test", "password": "my-own-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
);

both!(
    smtp_down_keeps_mail_queued_then_sends_once,
    |app: crate::harness::TestApp| async move {
        let r = Client::new()
            .post(app.url("/api/v1/password-resets"))
            .json(&json!({"email": "admin@acme.test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        // Unknown addresses get the same answer and no mail.
        let r = Client::new()
            .post(app.url("/api/v1/password-resets"))
            .json(&json!({"email": "ghost@acme.test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let down = app.mailer_down();
        let now = guanxi_platform::time::now();
        let s = jobs::run_due(&app.db, &down, &app.state.handlers, now, 10)
            .await
            .unwrap();
        assert_eq!(s.retried, 1);
        let listed: Value = app
            .get("/api/v1/jobs?status=pending", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        let job = &listed["items"][0];
        assert_eq!(job["attempts"], 1);
        assert!(job["last_error"].as_str().is_some());
        // Not due again until the backoff passes.
        assert_eq!(app.run_jobs_at(now).await, jobs::RunStats::default());
        let s = app.run_jobs_at(now + Duration::seconds(31)).await;
        assert_eq!(s.done, 1);
        assert_eq!(app.smtp.received().len(), 1);
        assert_eq!(
            app.run_jobs_at(now + Duration::hours(2)).await,
            jobs::RunStats::default()
        );
        assert_eq!(app.smtp.received().len(), 1);
        // The link resets the password and ends old sessions.
        let token = link_in(&app.smtp.received()[0]);
        let r = Client::new()
            .post(app.url("/api/v1/password-links"))
            .json(&json!({"token": token, "password": "brand-new-pass"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
);

both!(
    dead_letters_are_visible_and_retryable,
    |app: crate::harness::TestApp| async move {
        Client::new()
            .post(app.url("/api/v1/password-resets"))
            .json(&json!({"email": "admin@acme.test"}))
            .send()
            .await
            .unwrap();
        let down = app.mailer_down();
        let mut at = guanxi_platform::time::now();
        for _ in 0..jobs::MAX_ATTEMPTS {
            jobs::run_due(&app.db, &down, &app.state.handlers, at, 10)
                .await
                .unwrap();
            at += Duration::hours(2);
        }
        let dead: Value = app
            .get("/api/v1/jobs?status=dead", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(dead["items"].as_array().unwrap().len(), 1);
        let id = dead["items"][0]["id"].as_str().unwrap();
        let r = app
            .post(
                &format!("/api/v1/jobs/{id}/retry"),
                &app.admin_token,
                json!({}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.run_pending_jobs().await.done, 1);
        assert_eq!(app.smtp.received().len(), 1);
        let r = app
            .post(
                &format!("/api/v1/jobs/{id}/retry"),
                &app.admin_token,
                json!({}),
            )
            .await;
        assert_eq!(r.status(), 409);
    }
);

both!(
    a_crashed_worker_job_is_taken_over,
    |app: crate::harness::TestApp| async move {
        Client::new()
            .post(app.url("/api/v1/password-resets"))
            .json(&json!({"email": "admin@acme.test"}))
            .send()
            .await
            .unwrap();
        // Simulate a worker that claimed the job and died: status running, lock in the past.
        let past = guanxi_platform::time::now() - Duration::minutes(10);
        app.db
            .execute(
                "UPDATE jobs SET status = 'running', locked_until = $1",
                guanxi_platform::args![past],
            )
            .await
            .unwrap();
        assert_eq!(app.run_pending_jobs().await.done, 1);
        assert_eq!(app.smtp.received().len(), 1);
    }
);

both!(
    an_invitation_can_be_sent_again,
    |app: crate::harness::TestApp| async move {
        let t = &app.admin_token;
        let sales = app.role("sales").await["id"].clone();
        let r = app
            .post(
                "/api/v1/users",
                t,
                json!({"email": "slow.starter@acme.test", "name": "慢热", "role_id": sales}),
            )
            .await;
        let u: Value = r.json().await.unwrap();
        let id = u["id"].as_str().unwrap();
        app.run_pending_jobs().await;
        let before = app.smtp.received().len();
        let r = app
            .post(&format!("/api/v1/users/{id}/invitations"), t, json!({}))
            .await;
        assert_eq!(r.status(), 202);
        app.run_pending_jobs().await;
        let sent = app.smtp.received();
        assert_eq!(sent.len(), before + 1, "a fresh invitation");
        assert!(sent.last().unwrap().contains("slow.starter@acme.test"));
        // Someone who already chose a password is not invited again.
        let (other, _) = app.user_with_role("sales", "has.password@acme.test").await;
        let r = app
            .post(
                &format!(
                    "/api/v1/users/{}/invitations",
                    other["id"].as_str().unwrap()
                ),
                t,
                json!({}),
            )
            .await;
        assert_eq!(r.status(), 409);
        // And a rep may not invite people.
        let (_, rep) = app.user_with_role("sales", "rep@acme.test").await;
        let r = app
            .post(&format!("/api/v1/users/{id}/invitations"), &rep, json!({}))
            .await;
        assert_eq!(r.status(), 403);
    }
);
