//! A ticket's files: an agent's upload waits until a reply mails it (or a note keeps it
//! internal); types are decided by the server and checked against the bytes; what was sent is
//! kept; a mail's files are kept on the ticket it opens (the refused ones named); the customer
//! uploads on the portal and sees what they sent and what replies sent them — never a note's
//! file, never another company's or tenant's.

use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

use crate::both;
use crate::harness::{refused, TestApp};
use crate::mail::{deliver, imap_user};

const PDF: &[u8] =
    b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n% a quote\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n";
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

async fn upload(
    app: &TestApp,
    token: &str,
    ticket: &str,
    name: &str,
    bytes: &[u8],
) -> reqwest::Response {
    app.req(
        Method::POST,
        &format!("/api/v1/tickets/{ticket}/attachments"),
        token,
    )
    .query(&[("name", name)])
    .body(bytes.to_vec())
    .send()
    .await
    .unwrap()
}

async fn files(app: &TestApp, ticket: &str) -> Vec<Value> {
    let v: Value = app
        .get(
            &format!("/api/v1/tickets/{ticket}/attachments"),
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    v["items"].as_array().unwrap().clone()
}

both!(
    agents_send_files_with_replies_and_sent_files_stay,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let contact = app
            .created(
                "/api/v1/contacts",
                t,
                json!({"name": "王芳", "email": "wang.fang@cust.cn"}),
            )
            .await;
        let ticket = app
            .created(
                "/api/v1/tickets",
                t,
                json!({"subject": "要报价", "contact_id": contact["id"]}),
            )
            .await;
        let id = ticket["id"].as_str().unwrap();

        // Refusals name the file and say why; nothing is kept.
        let bad = [
            ("setup.exe", b"MZ\x90\0".as_slice(), "type_not_allowed"),
            ("page.html", b"<script>".as_slice(), "type_not_allowed"),
            ("quote.pdf", b"MZ\x90\0".as_slice(), "type_mismatch"),
            ("empty.txt", b"".as_slice(), "empty"),
        ];
        for (name, bytes, code) in bad {
            let r = upload(&app, t, id, name, bytes).await;
            assert_eq!(r.status(), 422, "{name}");
            assert_eq!(
                refused(r).await,
                vec![("file".into(), code.into())],
                "{name}"
            );
        }
        let big = vec![b'a'; 8 * 1024 * 1024 + 1];
        let r = upload(&app, t, id, "big.txt", &big).await;
        assert_eq!(refused(r).await, vec![("file".into(), "too_large".into())]);
        let r = app
            .req(
                Method::POST,
                &format!("/api/v1/tickets/{id}/attachments"),
                t,
            )
            .body(PDF.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(refused(r).await, vec![("name".into(), "required".into())]);
        assert!(files(&app, id).await.is_empty());

        // The quote waits, unsent and internal, until a reply carries it.
        let r = upload(&app, t, id, "C:\\报价\\报价单 2026.pdf", PDF).await;
        assert_eq!(r.status(), 201);
        let pdf: Value = r.json().await.unwrap();
        assert_eq!(pdf["name"], "报价单 2026.pdf", "the path is dropped");
        assert_eq!(pdf["content_type"], "application/pdf");
        assert_eq!(pdf["size"], PDF.len());
        assert_eq!(pdf["public"], false);
        assert!(pdf["message_id"].is_null());
        let fid = pdf["id"].as_str().unwrap();
        let got = app
            .get(&format!("/api/v1/tickets/{id}/attachments/{fid}"), t)
            .await;
        assert_eq!(got.status(), 200);
        let h = got.headers().clone();
        assert_eq!(h["content-type"], "application/pdf");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let disposition = h["content-disposition"].to_str().unwrap();
        assert!(disposition.starts_with("inline;"), "{disposition}");
        assert!(
            disposition.contains("filename*=UTF-8''%E6%8A%A5%E4%BB%B7%E5%8D%95%202026.pdf"),
            "{disposition}"
        );
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox"));
        assert_eq!(got.bytes().await.unwrap().as_ref(), PDF);

        // The reply sends it: it is public, on the message, and in the mail.
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/messages"),
                t,
                json!({"kind": "reply", "body": "报价单见附件", "attachment_ids": [fid]}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let reply: Value = r.json().await.unwrap();
        assert_eq!(reply["attachments"][0]["id"], fid);
        let sent = &files(&app, id).await[0];
        assert_eq!(sent["public"], true);
        assert_eq!(sent["message_id"], reply["id"]);
        // A file goes out once: sending it again is refused.
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/messages"),
                t,
                json!({"kind": "reply", "body": "再发一次", "attachment_ids": [fid]}),
            )
            .await;
        assert_eq!(
            refused(r).await,
            vec![("attachment_ids".into(), "unknown".into())]
        );
        let before = app.smtp.received().len();
        app.run_pending_jobs().await;
        let mails = app.smtp.received();
        assert_eq!(mails.len(), before + 1);
        let mail = &mails[before];
        assert!(mail.contains("multipart/mixed"), "{mail}");
        assert!(mail.contains("Content-Disposition: attachment"), "{mail}");
        assert!(mail.contains("application/pdf"), "{mail}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(PDF);
        let unwrapped: String = mail.lines().map(str::trim_end).collect();
        assert!(unwrapped.contains(&b64), "the file's bytes are in the mail");

        // What was sent is kept; an unsent upload can be removed.
        let r = app
            .req(
                Method::DELETE,
                &format!("/api/v1/tickets/{id}/attachments/{fid}"),
                t,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        let r = upload(&app, t, id, "draft.txt", "草稿".as_bytes()).await;
        let draft: Value = r.json().await.unwrap();
        let did = draft["id"].as_str().unwrap();
        let r = app
            .req(
                Method::DELETE,
                &format!("/api/v1/tickets/{id}/attachments/{did}"),
                t,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let r = app
            .get(&format!("/api/v1/tickets/{id}/attachments/{did}"), t)
            .await;
        assert_eq!(r.status(), 404);

        // A note's file stays internal.
        let r = upload(&app, t, id, "内部.png", PNG).await;
        let png: Value = r.json().await.unwrap();
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/messages"),
                t,
                json!({"kind": "note", "body": "截图", "attachment_ids": [png["id"]]}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let all = files(&app, id).await;
        assert_eq!(all.len(), 2);
        let note_file = all.iter().find(|f| f["id"] == png["id"]).unwrap();
        assert_eq!(note_file["public"], false);
        assert_eq!(note_file["origin"], "staff");

        // Another tenant's token finds nothing.
        let (_, other) = app.signup("乙公司", "boss@other.test").await;
        let r = app
            .get(&format!("/api/v1/tickets/{id}/attachments/{fid}"), &other)
            .await;
        assert_eq!(r.status(), 404);
        let r = upload(&app, &other, id, "x.pdf", PDF).await;
        assert_eq!(r.status(), 404);
    }
);

both!(
    a_mails_files_are_kept_on_its_ticket,
    |app: TestApp| async move {
        let user = imap_user();
        let mb = app.mailbox(&user, "INBOX").await;
        let png = base64::engine::general_purpose::STANDARD.encode(PNG);
        let exe = base64::engine::general_purpose::STANDARD.encode(b"MZ\x90\0\x03");
        let raw = format!(
            "From: 李雷 <li.lei@cust.cn>\r\nTo: support@acme.test\r\nSubject: 屏幕花屏\r\n\
Message-ID: <files-1@cust.cn>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n见截图\r\n\
--b1\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"=?UTF-8?B?{}?=\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{png}\r\n\
--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"tool.exe\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{exe}\r\n--b1--\r\n",
            base64::engine::general_purpose::STANDARD.encode("截图.png")
        );
        deliver(&user, "INBOX", &[raw.into_bytes()]).await;
        let r = app.fetch_mail(&mb).await;
        assert_eq!((r.stored, r.processed), (1, 1), "{r:?}");
        let v: Value = app
            .get("/api/v1/tickets", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        let ticket = &v["items"][0];
        let id = ticket["id"].as_str().unwrap();
        let description = ticket["description"].as_str().unwrap();
        assert!(
            description.contains("tool.exe (type_not_allowed)"),
            "the refused file is named: {description}"
        );
        let all = files(&app, id).await;
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0]["name"], "截图.png");
        assert_eq!(all[0]["origin"], "mail");
        assert_eq!(all[0]["public"], true);
        let got = app
            .get(
                &format!(
                    "/api/v1/tickets/{id}/attachments/{}",
                    all[0]["id"].as_str().unwrap()
                ),
                &app.admin_token,
            )
            .await;
        assert_eq!(got.bytes().await.unwrap().as_ref(), PNG);
    }
);

both!(
    customers_send_and_see_files_on_the_portal,
    |app: TestApp| async move {
        let t = &app.admin_token;
        let acme = app
            .created("/api/v1/accounts", t, json!({"name": "甲公司"}))
            .await;
        let other = app
            .created("/api/v1/accounts", t, json!({"name": "乙公司"}))
            .await;
        let (_, a) = crate::portal::customer(&app, &acme, "alice@acme.cn", false).await;
        let (_, z) = crate::portal::customer(&app, &other, "zed@other.cn", true).await;
        let mine = app
            .created(
                "/portal/api/v1/tickets",
                &a,
                json!({"subject": "发票错了", "body": "抬头不对"}),
            )
            .await;
        let id = mine["id"].as_str().unwrap();
        // Alice uploads the invoice and sends it with her reply.
        let r = app
            .req(
                Method::POST,
                &format!("/portal/api/v1/tickets/{id}/attachments"),
                &a,
            )
            .query(&[("name", "发票.pdf")])
            .body(PDF.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let inv: Value = r.json().await.unwrap();
        let r = app
            .req(
                Method::POST,
                &format!("/portal/api/v1/tickets/{id}/messages"),
                &a,
            )
            .json(&json!({"body": "见附件", "attachment_ids": [inv["id"]]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        // The desk sees it as the customer's; replies with one file and notes another.
        let all = files(&app, id).await;
        assert_eq!(all[0]["origin"], "portal");
        assert_eq!(all[0]["added_by"], "alice");
        let up = |name: &'static str| {
            let app = &app;
            async move {
                upload(app, &app.admin_token, id, name, PDF)
                    .await
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        let public = up("更正发票.pdf").await;
        let internal = up("内部核对.pdf").await;
        for (kind, f) in [("reply", &public), ("note", &internal)] {
            let r = app
                .post(
                    &format!("/api/v1/tickets/{id}/messages"),
                    t,
                    json!({"kind": kind, "body": kind, "attachment_ids": [f["id"]]}),
                )
                .await;
            assert_eq!(r.status(), 201);
        }
        let msgs: Value = app
            .req(
                Method::GET,
                &format!("/portal/api/v1/tickets/{id}/messages"),
                &a,
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let seen: Vec<String> = msgs["items"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| m["attachments"].as_array().unwrap().clone())
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            seen,
            vec!["发票.pdf", "更正发票.pdf"],
            "a note's file never"
        );
        let get = |token: &str, file: &Value| {
            app.req(
                Method::GET,
                &format!(
                    "/portal/api/v1/tickets/{id}/attachments/{}",
                    file["id"].as_str().unwrap()
                ),
                token,
            )
            .send()
        };
        assert_eq!(get(&a, &public).await.unwrap().status(), 200);
        assert_eq!(get(&a, &internal).await.unwrap().status(), 404);
        assert_eq!(get(&z, &public).await.unwrap().status(), 404);
        assert_eq!(get(&z, &inv).await.unwrap().status(), 404);
        let r = app
            .req(
                Method::POST,
                &format!("/portal/api/v1/tickets/{id}/attachments"),
                &z,
            )
            .query(&[("name", "x.pdf")])
            .body(PDF.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "not on another company's ticket");
    }
);
