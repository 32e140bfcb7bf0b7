//! The email channel against a real Dovecot (Debian's, started by `.ci/dovecot-start`, or the
//! one `GUANXI_TEST_IMAP` names): mail opens tickets and replies thread into them by
//! In-Reply-To, References or the number in the subject; legacy charsets; automatic mail and
//! loops set aside; broken and huge mail kept; a renumbered folder re-read without duplicates;
//! a fetch killed mid-way re-run without losing or doubling a message.

use serde_json::{json, Value};
use std::sync::OnceLock;
use uuid::Uuid;

use crate::both;
use crate::harness::{refused, temp_dir, TestApp};
use guanxi_service::imap::{self, Security, Server};

/// The test IMAP server: host, STARTTLS port, TLS port and the CA that signed its certificate.
pub struct Dovecot {
    pub host: String,
    pub starttls_port: u16,
    pub tls_port: u16,
    pub ca_pem: String,
}

pub fn dovecot() -> &'static Dovecot {
    static D: OnceLock<Dovecot> = OnceLock::new();
    D.get_or_init(|| {
        let line = match std::env::var("GUANXI_TEST_IMAP") {
            Ok(l) => l,
            Err(_) => {
                // No server named: start the throwaway one (reused while it runs).
                let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/dovecot-start");
                let o = std::process::Command::new(script)
                    .output()
                    .expect("run .ci/dovecot-start (Debian's dovecot-imapd is needed)");
                assert!(
                    o.status.success(),
                    "dovecot-start: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                String::from_utf8_lossy(&o.stdout).trim().to_owned()
            }
        };
        let p: Vec<&str> = line.splitn(4, ':').collect();
        assert_eq!(
            p.len(),
            4,
            "GUANXI_TEST_IMAP is host:starttls-port:tls-port:ca.pem"
        );
        Dovecot {
            host: p[0].to_owned(),
            starttls_port: p[1].parse().unwrap(),
            tls_port: p[2].parse().unwrap(),
            ca_pem: std::fs::read_to_string(p[3]).unwrap(),
        }
    })
}

/// A fresh IMAP user of its own (any name logs in with `secret`).
pub fn imap_user() -> String {
    format!("u{}", Uuid::now_v7().simple())
}

pub fn server(user: &str, security: Security) -> Server {
    let d = dovecot();
    Server {
        host: d.host.clone(),
        port: if security == Security::Tls {
            d.tls_port
        } else {
            d.starttls_port
        },
        security,
        ca_pem: Some(d.ca_pem.clone()),
        username: user.to_owned(),
        password: "secret".into(),
    }
}

/// Delivers messages into `folder` of `user`'s mailbox (created when missing).
pub async fn deliver(user: &str, folder: &str, mails: &[Vec<u8>]) {
    let mut s = imap::connect(&server(user, Security::StartTls))
        .await
        .unwrap();
    if folder != "INBOX" {
        let _ = s.create(folder).await;
    }
    for m in mails {
        s.append(folder, None, None, m).await.unwrap();
    }
    imap::logout(s).await;
}

/// A plain mail.
pub fn mail(from: &str, subject: &str, message_id: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@acme.test\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Fri, 04 Dec 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\n{extra}\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

impl TestApp {
    /// A mailbox of this tenant reading `user`'s `folder` over STARTTLS with the test CA.
    pub async fn mailbox(&self, user: &str, folder: &str) -> Value {
        let d = dovecot();
        self.created(
            "/api/v1/mailboxes",
            &self.admin_token,
            json!({"name": "客服邮箱", "address": format!("{user}@support.test"), "host": d.host,
                   "port": d.starttls_port, "security": "starttls", "ca_pem": d.ca_pem,
                   "username": user, "password": "secret", "folder": folder,
                   "sent_folder": "Sent"}),
        )
        .await
    }

    /// Fetches the mailbox now, as the mail fetcher would.
    pub async fn fetch_mail(&self, mailbox: &Value) -> guanxi_service::mailboxes::FetchReport {
        let tenant: Uuid = self.tenant_id.parse().unwrap();
        let id: Uuid = mailbox["id"].as_str().unwrap().parse().unwrap();
        guanxi_service::mailboxes::work(&self.db, Some((tenant, id)), &|_| {})
            .await
            .unwrap()
    }

    async fn tickets_json(&self) -> Vec<Value> {
        let v: Value = self
            .get("/api/v1/tickets?limit=200", &self.admin_token)
            .await
            .json()
            .await
            .unwrap();
        v["items"].as_array().unwrap().clone()
    }
}

async fn messages(app: &TestApp, ticket: &str) -> Vec<Value> {
    let v: Value = app
        .get(
            &format!("/api/v1/tickets/{ticket}/messages"),
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

both!(
    mail_opens_tickets_and_replies_thread_into_them,
    |app: TestApp| async move {
        let user = imap_user();
        let mb = app.mailbox(&user, "INBOX").await;
        assert!(mb.get("password").is_none(), "the password is write-only");
        // A GB2312 body under an RFC 2047 (GBK, base64) subject, as older Chinese clients send.
        let (body, _, _) = encoding_rs::GBK.encode("打印机卡纸，急！\n王芳");
        let mut first =
            b"From: =?GB2312?B?zfW3vA==?= <Wang.Fang@Cust.cn>\r\nTo: support@acme.test\r\n\
Subject: =?GBK?B?tPLTobv6u7XByw==?=\r\nMessage-ID: <first-1@cust.cn>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                .to_vec();
        first.extend_from_slice(&body);
        deliver(&user, "INBOX", &[first]).await;
        let r = app.fetch_mail(&mb).await;
        assert_eq!((r.stored, r.processed), (1, 1), "{r:?}");
        let tickets = app.tickets_json().await;
        assert_eq!(tickets.len(), 1);
        let t = &tickets[0];
        assert_eq!(t["subject"], "打印机坏了");
        assert_eq!(t["channel"], "email");
        assert!(t["description"].as_str().unwrap().contains("打印机卡纸"));
        assert_eq!(
            t["contact_name"], "王芳",
            "the contact is made from the sender"
        );
        let contact: Value = app
            .get(
                &format!("/api/v1/contacts/{}", t["contact_id"].as_str().unwrap()),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(contact["email"], "wang.fang@cust.cn");
        let id = t["id"].as_str().unwrap().to_owned();
        let number = t["number"].as_str().unwrap().to_owned();

        // The agent answers: the mail goes out under our Message-ID, answering the customer's.
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/messages"),
                &app.admin_token,
                json!({"kind": "reply", "body": "请重启打印机", "status": "waiting_customer"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let reply: Value = r.json().await.unwrap();
        let ours = reply["mail_id"].as_str().unwrap().to_owned();
        app.run_pending_jobs().await;
        let sent = app.smtp.received().join("\n");
        assert!(sent.contains(&format!("Message-ID: <{ours}>")), "{sent}");
        assert!(sent.contains("In-Reply-To: <first-1@cust.cn>"), "{sent}");
        assert!(
            sent.contains(&format!("Reply-To: {user}@support.test")),
            "answers go to the support mailbox: {sent}"
        );

        // A copy of the reply as sent is in the mailbox's Sent folder, once.
        let mut s = imap::connect(&server(&user, Security::StartTls))
            .await
            .unwrap();
        s.select("Sent").await.unwrap();
        let found = s
            .uid_search(format!("HEADER Message-ID \"{ours}\""))
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "the sent reply is kept in Sent");
        imap::logout(s).await;

        // Outlook-style: In-Reply-To ours, a fresh subject.
        let outlook = mail(
            "王芳 <wang.fang@cust.cn>",
            "答复: 还是不行",
            "outlook-2@cust.cn",
            &format!("In-Reply-To: <{ours}>\r\nReferences: <first-1@cust.cn> <{ours}>\r\n"),
            "重启过了，还是卡纸",
        );
        // Gmail-style: only References, naming the customer's own first mail.
        let gmail = mail(
            "wang.fang@cust.cn",
            "Re: 打印机坏了",
            "CAGmail-3@mail.gmail.com",
            "References: <first-1@cust.cn>\r\n",
            "补充：型号 HP 1020",
        );
        // Forwarded by a colleague with a changed subject: only the number is left.
        let forwarded = mail(
            "李雷 <li.lei@cust.cn>",
            &format!("Fwd: 关于 [{number}] 的进展"),
            "fwd-4@cust.cn",
            "",
            "转发给你们看一下",
        );
        // A new matter from the same customer: a new ticket.
        let fresh = mail(
            "wang.fang@cust.cn",
            "发票抬头修改",
            "new-5@cust.cn",
            "",
            "请把抬头改为上海分公司",
        );
        // Big5 from a Taiwanese customer.
        let (big5, _, _) = encoding_rs::BIG5.encode("螢幕閃爍");
        let mut tw = b"From: chen@cust.tw\r\nSubject: =?Big5?B?v8O59bB7w3s=?=\r\nMessage-ID: <tw-6@cust.tw>\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=big5\r\n\r\n"
            .to_vec();
        tw.extend_from_slice(&big5);
        deliver(&user, "INBOX", &[outlook, gmail, forwarded, fresh, tw]).await;
        let r = app.fetch_mail(&mb).await;
        assert_eq!((r.stored, r.processed), (5, 5), "{r:?}");
        let msgs = messages(&app, &id).await;
        let bodies: Vec<&str> = msgs.iter().map(|m| m["body"].as_str().unwrap()).collect();
        assert!(bodies.iter().any(|b| b.contains("还是卡纸")), "{bodies:?}");
        assert!(bodies.iter().any(|b| b.contains("HP 1020")), "{bodies:?}");
        assert!(
            bodies.iter().any(|b| b.contains("转发给你们")),
            "{bodies:?}"
        );
        let t: Value = app
            .get(&format!("/api/v1/tickets/{id}"), &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(t["status"], "open", "the customer's answer ends the wait");
        let tickets = app.tickets_json().await;
        assert_eq!(
            tickets.len(),
            3,
            "the new matter and the Big5 mail are new tickets"
        );
        assert!(tickets.iter().any(|t| t["subject"] == "发票抬头修改"));
        assert!(tickets
            .iter()
            .any(|t| t["subject"] == "螢幕閃爍" && t["description"] == "螢幕閃爍"));

        // Fetching again finds nothing new; the health says so.
        let r = app.fetch_mail(&mb).await;
        assert_eq!((r.stored, r.skipped), (0, 0));
        let h: Value = app
            .get(
                &format!("/api/v1/mailboxes/{}/health", mb["id"].as_str().unwrap()),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(h["state"], "ok", "{h}");
        assert_eq!(h["fetched_total"], 6);
        assert_eq!(
            (h["backlog"].as_i64(), h["dead"].as_i64()),
            (Some(0), Some(0))
        );
    }
);

both!(
    automatic_looping_broken_and_huge_mail_is_kept_and_never_answered,
    |app: TestApp| async move {
        let user = imap_user();
        let mb = app.mailbox(&user, "INBOX").await;
        let mbid = mb["id"].as_str().unwrap().to_owned();
        let own = format!("{user}@support.test");
        let mut huge = mail("big@cust.cn", "scan", "huge-1@cust.cn", "", "");
        huge.extend(std::iter::repeat_n(b'A', 26 * 1024 * 1024));
        huge.extend_from_slice(b"\r\n");
        deliver(
            &user,
            "INBOX",
            &[
                mail(
                    "ooo@cust.cn",
                    "Out of office",
                    "auto-1@cust.cn",
                    "Auto-Submitted: auto-replied\r\n",
                    "I am away",
                ),
                mail(&own, "loop", "loop-1@support.test", "", "our own mail"),
                b"Subject: nobody\r\nMessage-ID: <anon@x>\r\n\r\nno sender".to_vec(),
                // Broken MIME: a multipart whose boundary never closes.
                b"From: mime@cust.cn\r\nSubject: broken\r\nMessage-ID: <broken@cust.cn>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n--zz\r\n\
Content-Type: text/plain\r\n\r\nsee attached\r\n--zz\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"=?UTF-8?B?5ZCI5ZCMLnBkZg==?=\"\r\n\r\nJVBERi0x"
                    .to_vec(),
                huge,
            ],
        )
        .await;
        let r = app.fetch_mail(&mb).await;
        assert_eq!((r.stored, r.processed), (5, 5), "{r:?}");
        app.run_pending_jobs().await;
        assert!(app.smtp.received().is_empty(), "nothing is ever answered");
        let list: Value = app
            .get(
                &format!("/api/v1/mailboxes/{mbid}/dead-letters?status=dead,ignored"),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        let items = list["items"].as_array().unwrap();
        let reason = |subject: &str| {
            items
                .iter()
                .find(|m| m["subject"] == subject)
                .map(|m| (m["status"].clone(), m["reason"].clone()))
        };
        assert_eq!(
            reason("Out of office"),
            Some((json!("ignored"), json!("auto_submitted")))
        );
        assert_eq!(
            reason("loop"),
            Some((json!("ignored"), json!("own_address")))
        );
        assert_eq!(reason("nobody"), Some((json!("dead"), json!("no_sender"))));
        let tickets = app.tickets_json().await;
        assert_eq!(
            tickets.len(),
            2,
            "the broken and the huge mail open tickets"
        );
        let broken = tickets.iter().find(|t| t["subject"] == "broken").unwrap();
        assert!(broken["description"].as_str().unwrap().contains("合同.pdf"));
        let big = tickets.iter().find(|t| t["subject"] == "scan").unwrap();
        assert!(
            big["description"].as_str().unwrap().contains("25 MB"),
            "{big}"
        );
        // The dead letter is downloadable whole, and a re-run of the set-aside one is real.
        let dead = items.iter().find(|m| m["subject"] == "nobody").unwrap();
        let raw = app
            .get(
                &format!(
                    "/api/v1/mailboxes/{mbid}/dead-letters/{}",
                    dead["id"].as_str().unwrap()
                ),
                &app.admin_token,
            )
            .await
            .bytes()
            .await
            .unwrap();
        assert!(raw.starts_with(b"Subject: nobody"));
        let ooo = items
            .iter()
            .find(|m| m["subject"] == "Out of office")
            .unwrap();
        let r = app
            .post(
                &format!(
                    "/api/v1/mailboxes/{mbid}/dead-letters/{}/rerun",
                    ooo["id"].as_str().unwrap()
                ),
                &app.admin_token,
                json!({}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let again: Value = r.json().await.unwrap();
        assert_eq!(again["status"], "created");
        let r = app
            .post(
                &format!(
                    "/api/v1/mailboxes/{mbid}/dead-letters/{}/rerun",
                    ooo["id"].as_str().unwrap()
                ),
                &app.admin_token,
                json!({}),
            )
            .await;
        assert_eq!(r.status(), 409, "a handled message is not run twice");
        let h: Value = app
            .get(
                &format!("/api/v1/mailboxes/{mbid}/health"),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(h["dead"], 1);

        // A sender writing in a loop: past the hourly limit, set aside.
        let flood: Vec<Vec<u8>> = (0..22)
            .map(|i| {
                mail(
                    "robot@cust.cn",
                    &format!("alert {i}"),
                    &format!("flood-{i}@cust.cn"),
                    "",
                    "disk full",
                )
            })
            .collect();
        deliver(&user, "INBOX", &flood).await;
        app.fetch_mail(&mb).await;
        let list: Value = app
            .get(
                &format!("/api/v1/mailboxes/{mbid}/dead-letters?status=ignored"),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        let rate = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["reason"] == "sender_rate")
            .count();
        assert_eq!(rate, 2, "{list}");
    }
);

both!(
    a_renumbered_folder_is_reread_without_duplicates,
    |app: TestApp| async move {
        let user = imap_user();
        let mails: Vec<Vec<u8>> = (0..3)
            .map(|i| {
                mail(
                    &format!("c{i}@cust.cn"),
                    &format!("问题 {i}"),
                    &format!("re-{i}@cust.cn"),
                    "",
                    "内容",
                )
            })
            .collect();
        deliver(&user, "Support", &mails).await;
        let mb = app.mailbox(&user, "Support").await;
        assert_eq!(app.fetch_mail(&mb).await.stored, 3);
        // The server renumbers the folder (recreated: a new UIDVALIDITY), with one new mail.
        let mut s = imap::connect(&server(&user, Security::Tls)).await.unwrap();
        s.delete("Support").await.unwrap();
        imap::logout(s).await;
        let mut again = mails.clone();
        again.push(mail("c9@cust.cn", "问题 9", "re-9@cust.cn", "", "新的"));
        deliver(&user, "Support", &again).await;
        let r = app.fetch_mail(&mb).await;
        assert_eq!((r.stored, r.skipped), (1, 3), "{r:?}");
        assert_eq!(app.tickets_json().await.len(), 4);
        // And the next fetch continues the new numbering.
        deliver(
            &user,
            "Support",
            &[mail("c10@cust.cn", "问题 10", "re-10@cust.cn", "", "x")],
        )
        .await;
        let r = app.fetch_mail(&mb).await;
        assert_eq!((r.stored, r.skipped), (1, 0), "{r:?}");
    }
);

both!(
    mailbox_settings_are_checked_and_failures_shown,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let r = app
            .post(
                "/api/v1/mailboxes",
                t,
                json!({"name": "x", "address": "nope", "host": "bad host", "username": "u",
                       "password": "", "security": "ssl", "poll_seconds": 1}),
            )
            .await;
        assert_eq!(r.status(), 422);
        let p: Value = r.json().await.unwrap();
        let fields: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        for f in ["address", "host", "password", "security", "poll_seconds"] {
            assert!(fields.contains(&f), "{f}: {p}");
        }
        // Implicit TLS works; a wrong password is a failing mailbox with the server's words.
        let user = imap_user();
        let d = dovecot();
        let mb = app
            .created(
                "/api/v1/mailboxes",
                t,
                json!({"name": "TLS", "address": "tls@support.test", "host": d.host,
                       "port": d.tls_port, "security": "tls", "ca_pem": d.ca_pem,
                       "username": user, "password": "secret"}),
            )
            .await;
        let id = mb["id"].as_str().unwrap();
        let probe: Value = app
            .post(&format!("/api/v1/mailboxes/{id}/test"), t, json!({}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(probe["ok"], true, "{probe}");
        // Without our CA the certificate is refused.
        let r = app
            .patch(
                &format!("/api/v1/mailboxes/{id}"),
                t,
                json!({"version": 1, "ca_pem": null}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let probe: Value = app
            .post(&format!("/api/v1/mailboxes/{id}/test"), t, json!({}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(probe["ok"], false);
        assert!(probe["error"].as_str().unwrap().contains("TLS"), "{probe}");
        let r = app
            .patch(
                &format!("/api/v1/mailboxes/{id}"),
                t,
                json!({"version": 2, "ca_pem": d.ca_pem, "password": "wrong"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let stale = app
            .patch(
                &format!("/api/v1/mailboxes/{id}"),
                t,
                json!({"version": 2, "name": "late"}),
            )
            .await;
        assert_eq!(stale.status(), 412, "a stale edit is refused");
        app.fetch_mail(&mb).await;
        let h: Value = app
            .get(&format!("/api/v1/mailboxes/{id}/health"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(h["state"], "failing", "{h}");
        assert!(h["last_error"].as_str().unwrap().contains("login"), "{h}");
        // Switched off, "fetch now" is refused — through the API and by hand — not left
        // waiting for a fetch that never comes.
        let r = app
            .patch(
                &format!("/api/v1/mailboxes/{id}"),
                t,
                json!({"version": 3, "enabled": false}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let r = app
            .post(&format!("/api/v1/mailboxes/{id}/fetch"), t, json!({}))
            .await;
        assert_eq!(
            refused(r).await,
            vec![("enabled".into(), "disabled".into())]
        );
        let tenant: Uuid = app.tenant_id.parse().unwrap();
        let by_hand =
            guanxi_service::mailboxes::work(&app.db, Some((tenant, id.parse().unwrap())), &|_| {})
                .await;
        assert!(
            matches!(&by_hand, Err(guanxi_platform::Error::Validation(_))),
            "{by_hand:?}"
        );
        // Another company never sees it.
        let (_, other) = app.signup("别家公司", "boss@other.test").await;
        assert_eq!(
            app.get(&format!("/api/v1/mailboxes/{id}"), &other)
                .await
                .status(),
            404
        );
        assert_eq!(
            app.get(&format!("/api/v1/mailboxes/{id}/health"), &other)
                .await
                .status(),
            404
        );
        // A sales rep may not read mailbox settings.
        let (_, rep) = app.user_with_role("sales", "rep@acme.test").await;
        assert_eq!(app.get("/api/v1/mailboxes", &rep).await.status(), 403);
    }
);

/// `guanxi mail fetch` killed (SIGKILL) after its first stored batch of 1,000 messages, then run
/// again: every message is stored once and opens exactly one ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_killed_midway_is_rerun_without_loss_or_doubles() {
    use tokio::io::AsyncReadExt;
    let dir = temp_dir();
    let d = dir.0.as_path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_guanxi"))
        .args([
            "admin",
            "create-tenant",
            "--name",
            "邮件测试",
            "--admin-email",
            "a@t.test",
            "--admin-password",
            "password-123456",
        ])
        .arg("--data-dir")
        .arg(d)
        .env_remove("GUANXI_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success());
    let tenant: Uuid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    let user = imap_user();
    let n = 1000;
    let mails: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            mail(
                &format!("c{i}@cust.cn"),
                &format!("工单 {i}"),
                &format!("k-{i}@cust.cn"),
                "",
                "内容",
            )
        })
        .collect();
    deliver(&user, "INBOX", &mails).await;
    let db = guanxi_platform::Db::connect(&d.join("guanxi.db").to_string_lossy(), 1)
        .await
        .unwrap();
    let dv = dovecot();
    let mb = guanxi_service::mailboxes::create(
        &db,
        &guanxi_platform::Ctx::system(tenant),
        guanxi_service::mailboxes::MailboxInput {
            name: Some("support".into()),
            address: Some("support@t.test".into()),
            host: Some(dv.host.clone()),
            port: Some(i64::from(dv.starttls_port)),
            security: Some("starttls".into()),
            ca_pem: Some(Some(dv.ca_pem.clone())),
            username: Some(user.clone()),
            password: Some("secret".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    db.close().await;
    let fetch = || {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_guanxi"));
        cmd.args(["mail", "fetch", "--tenant", &tenant.to_string()])
            .args(["--mailbox", &mb.id.to_string()])
            .arg("--data-dir")
            .arg(d)
            .env_remove("GUANXI_DATABASE_URL")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
    };
    let mut child = fetch().spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("messages stored") {
        let k = stderr.read(&mut buf).await.unwrap();
        assert!(k > 0, "the fetch ended before its first batch: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..k]));
    }
    child.start_kill().unwrap();
    assert!(!child.wait().await.unwrap().success(), "killed mid-fetch");
    let done = fetch().output().await.unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let db = guanxi_platform::Db::connect(&d.join("guanxi.db").to_string_lossy(), 1)
        .await
        .unwrap();
    let stored: i64 = db
        .scalar("SELECT COUNT(*) FROM inbound_mail", vec![])
        .await
        .unwrap();
    let distinct: i64 = db
        .scalar("SELECT COUNT(DISTINCT uid) FROM inbound_mail", vec![])
        .await
        .unwrap();
    let tickets: i64 = db
        .scalar("SELECT COUNT(*) FROM tickets", vec![])
        .await
        .unwrap();
    let pending: i64 = db
        .scalar(
            "SELECT COUNT(*) FROM inbound_mail WHERE status <> 'created'",
            vec![],
        )
        .await
        .unwrap();
    db.close().await;
    assert_eq!((stored, distinct, tickets, pending), (n, n, n, 0));
}
