//! The web UI over HTTP (forms, CSRF, language) and the CLI binary.

use crate::both;
use crate::harness::temp_dir;
use reqwest::Client;
use serde_json::{json, Value};
use std::process::Command;

fn csrf_in(html: &str) -> String {
    let i = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + 20;
    html[i..].split('"').next().unwrap().to_owned()
}

both!(
    sign_in_page_switch_language_create_user,
    |app: crate::harness::TestApp| async move {
        let c = Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .unwrap();
        let html = c
            .get(app.url("/login"))
            .header("accept-language", "en")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("Sign in"), "{html}");
        let zh = c
            .get(app.url("/login"))
            .header("accept-language", "zh-CN")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(zh.contains("登录"));
        // Without the form's CSRF token the post is refused.
        let r = c
            .post(app.url("/login"))
            .form(&[
                ("email", "admin@acme.test"),
                ("password", "correct horse battery"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let token = csrf_in(&html);
        let r = c
            .post(app.url("/login"))
            .form(&[
                ("_csrf", token.as_str()),
                ("email", "admin@acme.test"),
                ("password", "wrong"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = c
            .post(app.url("/login"))
            .form(&[
                ("_csrf", token.as_str()),
                ("email", "admin@acme.test"),
                ("password", "correct horse battery"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let home = r.text().await.unwrap();
        assert!(home.contains("id=\"sign-out\""), "{home}");
        let csrf = csrf_in(&home);
        // Switch to English: remembered on the profile.
        let r = c
            .post(app.url("/lang"))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("locale", "en"),
                ("back", "/admin/users"),
            ])
            .send()
            .await
            .unwrap();
        let users = r.text().await.unwrap();
        assert!(users.contains("New user"), "{users}");
        let me: Value = app
            .get("/api/v1/me", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["user"]["locale"], "en");
        // Create a user from the page; a bad email is shown next to the form, and nothing saved.
        let sales = app.role("sales").await["id"].as_str().unwrap().to_owned();
        let r = c
            .post(app.url("/admin/users"))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("name", "Bad"),
                ("email", "nope"),
                ("role_id", &sales),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        assert!(r.text().await.unwrap().contains("not a valid email"));
        let r = c
            .post(app.url("/admin/users"))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("name", "韩梅梅"),
                ("email", "han@acme.test"),
                ("role_id", &sales),
                ("password", "password-123456"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("韩梅梅"));
        // Every admin page renders.
        for p in [
            "/admin/users",
            "/admin/teams",
            "/admin/tokens",
            "/admin/audit",
            "/admin/jobs",
            "/settings",
            "/account",
            "/api/docs",
        ] {
            let r = c.get(app.url(p)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{p}");
        }
        let audit = c
            .get(app.url("/admin/audit?entity=users"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(audit.contains("韩梅梅"));
        // Templates escape what users typed.
        app.post(
            "/api/v1/teams",
            &app.admin_token,
            serde_json::json!({"name": "<script>x</script>"}),
        )
        .await;
        let teams = c
            .get(app.url("/admin/teams"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(teams.contains("&lt;script&gt;") && !teams.contains("<script>x"));
        // Sign out.
        let r = c
            .post(app.url("/logout"))
            .form(&[("_csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert!(r.url().path().ends_with("/login"));
        let r = c.get(app.url("/admin/users")).send().await.unwrap();
        assert!(r.url().path().ends_with("/login"));
    }
);

both!(ops_endpoints, |app: crate::harness::TestApp| async move {
    assert_eq!(
        reqwest::get(app.url("/healthz"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        200
    );
    let m = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("guanxi_http_requests_total{class=\"2xx\"}"));
    assert!(m.contains("guanxi_jobs"));
    let r = reqwest::get(app.url("/api/v1/nope")).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.headers().contains_key("x-request-id"));
});

fn guanxi(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_guanxi"));
    cmd.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("GUANXI_DATABASE_URL");
    if let Ok(u) = std::env::var("GUANXI_CLI_DATABASE_URL") {
        cmd.arg("--database-url").arg(u);
    }
    let o = cmd.output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn last_line(s: &str) -> String {
    s.trim_end().lines().last().unwrap_or("").to_owned()
}

#[test]
fn cli_admin_commands_backup_and_restore() {
    let dir = temp_dir();
    let d = dir.0.as_path();
    let (ok, out, err) = guanxi(
        &[
            "admin",
            "create-tenant",
            "--name",
            "华为测试",
            "--admin-email",
            "a@t.test",
            "--admin-password",
            "password-123456",
        ],
        d,
    );
    assert!(ok, "{err}");
    let tenant = last_line(&out);
    assert!(uuid::Uuid::parse_str(&tenant).is_ok(), "{out}");
    let (ok, out, err) = guanxi(
        &[
            "admin",
            "create-user",
            "--tenant",
            &tenant,
            "--email",
            "s@t.test",
            "--password",
            "password-123456",
            "--role",
            "sales",
        ],
        d,
    );
    assert!(ok, "{err}");
    assert!(uuid::Uuid::parse_str(&last_line(&out)).is_ok());
    let (ok, out, err) = guanxi(
        &[
            "admin",
            "create-token",
            "--tenant",
            &tenant,
            "--email",
            "s@t.test",
            "--name",
            "erp",
        ],
        d,
    );
    assert!(ok, "{err}");
    assert!(last_line(&out).starts_with("gx_"));
    // Without SMTP an operator resets a password from the shell: given, or generated and
    // printed last; too short is one clear line.
    let (ok, out, err) = guanxi(
        &[
            "admin",
            "reset-password",
            "--tenant",
            &tenant,
            "--email",
            "S@t.test",
        ],
        d,
    );
    assert!(ok, "{err}");
    assert_eq!(last_line(&out).len(), 16, "{out}");
    let (ok, _, err) = guanxi(
        &[
            "admin",
            "reset-password",
            "--tenant",
            &tenant,
            "--email",
            "s@t.test",
            "--password",
            "short",
        ],
        d,
    );
    assert!(!ok && err.contains("password"), "{err}");
    let (ok, _, err) = guanxi(
        &[
            "admin",
            "reset-password",
            "--tenant",
            &tenant,
            "--email",
            "nobody@t.test",
        ],
        d,
    );
    assert!(!ok && err.contains("nobody@t.test"), "{err}");
    // Bad input: one clear line, non-zero exit.
    let (ok, _, err) = guanxi(
        &[
            "admin",
            "create-user",
            "--tenant",
            &tenant,
            "--email",
            "bad",
            "--password",
            "password-123456",
            "--role",
            "sales",
        ],
        d,
    );
    assert!(!ok && err.contains("email"), "{err}");
    let (ok, _, err) = guanxi(
        &[
            "admin",
            "create-user",
            "--tenant",
            &tenant,
            "--email",
            "x@t.test",
            "--password",
            "password-123456",
            "--role",
            "ceo",
        ],
        d,
    );
    assert!(!ok && err.contains("ceo"), "{err}");
    let backup = d.join("backup.db");
    let (ok, _, err) = guanxi(&["backup", "--to", backup.to_str().unwrap()], d);
    assert!(ok, "{err}");
    let (ok, _, _) = guanxi(
        &[
            "admin",
            "create-tenant",
            "--name",
            "after",
            "--admin-email",
            "b@t.test",
            "--admin-password",
            "password-123456",
        ],
        d,
    );
    assert!(ok);
    let (ok, _, err) = guanxi(&["restore", "--from", backup.to_str().unwrap()], d);
    assert!(ok, "{err}");
    let (_, out, _) = guanxi(&["admin", "list-tenants"], d);
    assert!(out.contains("华为测试") && !out.contains("after"), "{out}");
    let (ok, out, _) = guanxi(&["config", "print-default"], d);
    assert!(ok && out.contains("listen"));
}

#[test]
fn unreachable_database_is_one_clear_line() {
    let dir = temp_dir();
    let o = Command::new(env!("CARGO_BIN_EXE_guanxi"))
        .args([
            "migrate",
            "--database-url",
            "postgres://nobody:pw@127.0.0.1:1/none",
        ])
        .arg("--data-dir")
        .arg(&dir.0)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot connect to PostgreSQL") && !err.contains("pw@"),
        "{err}"
    );
}

#[test]
fn cli_definition_is_consistent() {
    use clap::CommandFactory;
    guanxi::Cli::command().debug_assert();
}

/// `guanxi serve` as a process: JSON logs with request ids on stderr, and on SIGTERM a request
/// already in flight is answered before the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_logs_are_json() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let dir = temp_dir();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_guanxi"))
        .args(["serve", "--log-format", "json", "--workers", "false"])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&dir.0)
        .env_remove("GUANXI_DATABASE_URL")
        .env("GUANXI_ADMIN_EMAIL", "ops@t.test")
        .env("GUANXI_ADMIN_PASSWORD", "password-123456")
        .env("GUANXI_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = out.next_line().await.unwrap() {
        if line.contains("is running at") {
            break;
        }
    }
    let base = format!("http://127.0.0.1:{port}");
    let metrics = || async {
        let m = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        m.lines()
            .find_map(|l| l.strip_prefix("guanxi_http_requests_in_flight "))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };

    // A sign-in whose body has not fully arrived: the handler is waiting on it.
    let body = br#"{"email":"ops@t.test","password":"password-123456"}"#;
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/sessions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-request-id: inflight-1\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&body[..10]).await.unwrap();
    // Wait for the event "the server is handling it" (the gauge counts the scrape itself too).
    while metrics().await < 2 {
        tokio::task::yield_now().await;
    }

    // SIGTERM, then wait until the server says it is shutting down.
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut logs = Vec::new();
    while let Some(line) = err.next_line().await.unwrap() {
        let done = line.contains("shutting down");
        logs.push(line);
        if done {
            break;
        }
    }

    // The rest of the body arrives; the request is answered in full.
    sock.write_all(&body[10..]).await.unwrap();
    let mut resp = String::new();
    sock.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
    assert!(resp.contains("csrf_token"), "{resp}");

    let status = child.wait().await.unwrap();
    assert!(status.success(), "exit {status:?}");
    while let Some(line) = err.next_line().await.unwrap() {
        logs.push(line);
    }
    // Every log line that is not the printed start-up configuration is a JSON object; the
    // request's line carries its request id.
    let json: Vec<Value> = logs
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(json.iter().any(|j| j["fields"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("shutting down")));
    assert!(
        json.iter().any(|j| j["span"]["request_id"] == "inflight-1"),
        "{logs:#?}"
    );
}

/// `guanxi import contacts` killed mid-file (SIGKILL, after it reported progress) and run
/// again: every row is in exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_killed_mid_file_then_rerun_loses_and_doubles_nothing() {
    let dir = temp_dir();
    let d = dir.0.as_path();
    let tenant = import_tenant(d);
    let rows = 5000;
    let mut csv = String::from("姓名,手机,公司\n");
    for i in 0..rows {
        csv.push_str(&format!("客户{i},138{:08},公司{}\n", i, i % 37));
    }
    // Killed after the progress report of the first batch of 500 rows (an event).
    killed_then_rerun(d, &tenant, "contacts", &csv, rows, "500 rows").await;
    let db = guanxi_platform::Db::connect(&d.join("guanxi.db").to_string_lossy(), 1)
        .await
        .unwrap();
    let n: i64 = db
        .scalar("SELECT COUNT(*) FROM contacts", vec![])
        .await
        .unwrap();
    assert_eq!(n, rows, "every row exactly once");
    let companies: i64 = db
        .scalar("SELECT COUNT(*) FROM accounts", vec![])
        .await
        .unwrap();
    assert_eq!(companies, 37, "companies found by name, not doubled");
    db.close().await;
}

/// The same for orders, which the command writes 2,000 to a transaction: every order and
/// every line exactly once, each with one audit event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_import_killed_mid_file_then_rerun_loses_and_doubles_nothing() {
    let dir = temp_dir();
    let d = dir.0.as_path();
    let tenant = import_tenant(d);
    let mut csv = String::from("姓名,手机\n");
    for i in 0..50 {
        csv.push_str(&format!("买家{i},139{:08}\n", i));
    }
    killed_or_done(d, &tenant, "contacts", &csv, None).await;
    let orders = 8000;
    let mut csv = String::from("订单号,下单时间,联系人,商品,数量,单价\n");
    for i in 0..orders {
        for line in 0..2 {
            csv.push_str(&format!(
                "SO-{i:05},2026-03-0{}T10:00:00+08:00,买家{},商品{line},{},12.50\n",
                1 + i % 9,
                i % 50,
                1 + i % 3
            ));
        }
    }
    killed_then_rerun(d, &tenant, "orders", &csv, orders, "2001 rows").await;
    let db = guanxi_platform::Db::connect(&d.join("guanxi.db").to_string_lossy(), 1)
        .await
        .unwrap();
    let count = |sql: &'static str| {
        let db = db.clone();
        async move { db.scalar::<i64>(sql, vec![]).await.unwrap() }
    };
    assert_eq!(count("SELECT COUNT(*) FROM orders").await, orders);
    assert_eq!(count("SELECT COUNT(*) FROM order_lines").await, 2 * orders);
    assert_eq!(
        count("SELECT COUNT(*) FROM audit_events WHERE entity = 'orders'").await,
        orders,
        "one create event an order"
    );
    db.close().await;
}

fn import_tenant(d: &std::path::Path) -> String {
    let (ok, out, err) = guanxi(
        &[
            "admin",
            "create-tenant",
            "--name",
            "导入测试",
            "--admin-email",
            "a@t.test",
            "--admin-password",
            "password-123456",
        ],
        d,
    );
    assert!(ok, "{err}");
    last_line(&out)
}

/// Imports `csv` as `kind` with `guanxi import`; with `kill_after`, kills it (SIGKILL) once its
/// progress report says so.
async fn killed_or_done(
    d: &std::path::Path,
    tenant: &str,
    kind: &str,
    csv: &str,
    kill_after: Option<&str>,
) -> String {
    use tokio::io::AsyncReadExt;
    let file = d.join(format!("{kind}.csv"));
    std::fs::write(&file, csv).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_guanxi"));
    cmd.args(["import", kind])
        .arg(&file)
        .args(["--tenant", tenant])
        .arg("--data-dir")
        .arg(d)
        .env_remove("GUANXI_DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let Some(mark) = kill_after else {
        let done = cmd.output().await.unwrap();
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        return last_line(&String::from_utf8_lossy(&done.stdout));
    };
    let mut child = cmd.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains(mark) {
        let n = stderr.read(&mut buf).await.unwrap();
        assert!(n > 0, "import ended before {mark}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "it was killed mid-file");
    String::new()
}

/// Kills an import of `csv` after `mark`, runs it again to the end, and checks its summary:
/// `rows` records, the ones written before the kill skipped, none failed.
async fn killed_then_rerun(
    d: &std::path::Path,
    tenant: &str,
    kind: &str,
    csv: &str,
    rows: i64,
    mark: &str,
) {
    killed_or_done(d, tenant, kind, csv, Some(mark)).await;
    let summary = killed_or_done(d, tenant, kind, csv, None).await;
    assert!(summary.starts_with(&format!("{rows} rows: ")), "{summary}");
    assert!(
        summary.contains("skipped") && summary.contains(" 0 failed"),
        "{summary}"
    );
    assert!(!summary.contains(" 0 skipped"), "{summary}");
}

// Duplicates are asked about when an edit brings a phone or email another record has (not
// only on creation), and full-width digits typed by a Chinese input method are the same phone:
// valid, found by search, caught as a duplicate.
both!(
    edits_warn_of_duplicates_and_full_width_is_one_phone,
    |app: crate::harness::TestApp| async move {
        use serde_json::json;
        let t = &app.admin_token;
        let r = app
            .post(
                "/api/v1/contacts",
                t,
                json!({"name": "王芳", "phone": "１３５０２４４２１２６"}),
            )
            .await;
        assert_eq!(r.status(), 201, "full-width digits are a phone");
        let wang: Value = r.json().await.unwrap();
        assert_eq!(wang["phone_e164"], "+8613502442126");
        let found: Value = app
            .get(
                "/api/v1/search?q=%EF%BC%91%EF%BC%93%EF%BC%95%EF%BC%90%EF%BC%92",
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert!(
            found.to_string().contains("王芳"),
            "full-width digits search: {found}"
        );
        let probe: Value = app
            .get(
                "/api/v1/duplicates?kind=contact&name=%E6%9D%8E&phone=135-0244-2126",
                t,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(probe["items"][0]["id"], wang["id"]);
        let li: Value = app
            .post(
                "/api/v1/contacts",
                t,
                json!({"name": "李雷", "phone": "13800138000"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let li_id = li["id"].as_str().unwrap();
        let (c, _) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let edit = c
            .get(app.url(&format!("/customers/contacts/{li_id}/edit")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_in(&edit);
        let form = |confirm: bool| {
            let mut f = vec![
                ("_csrf".to_owned(), csrf.clone()),
                ("version".to_owned(), "1".to_owned()),
                ("name".to_owned(), "李雷".to_owned()),
                ("phone".to_owned(), "１３５ ０２４４ ２１２６".to_owned()),
                ("country".to_owned(), "CN".to_owned()),
            ];
            if confirm {
                f.push(("confirm_duplicates".to_owned(), "1".to_owned()));
            }
            f
        };
        let r = c
            .post(app.url(&format!("/customers/contacts/{li_id}/edit")))
            .form(&form(false))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            409,
            "the edit is held to ask about the duplicate"
        );
        let html = r.text().await.unwrap();
        assert!(
            html.contains("王芳") && html.contains("save-anyway"),
            "{html}"
        );
        let stored: Value = app
            .get(&format!("/api/v1/contacts/{li_id}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stored["phone"], "13800138000", "nothing saved yet");
        // Saving an unchanged phone again asks nothing; saving anyway saves.
        let r = c
            .post(app.url(&format!("/customers/contacts/{li_id}/edit")))
            .form(&form(true))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let stored: Value = app
            .get(&format!("/api/v1/contacts/{li_id}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stored["phone_e164"], "+8613502442126");
    }
);

// Home is the user's day: overdue tasks, due reminders, what they opened and changed; a task
// is edited, rescheduled and deleted from its own page; a rep's menu has no administration
// and nothing that does not exist yet.
both!(
    home_is_the_users_day,
    |app: crate::harness::TestApp| async move {
        use serde_json::json;
        let t = &app.admin_token;
        let c: Value = app
            .post("/api/v1/contacts", t, json!({"name": "赵敏"}))
            .await
            .json()
            .await
            .unwrap();
        let cid = c["id"].as_str().unwrap().to_owned();
        let past = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
        let task: Value = app
        .post("/api/v1/activities", t, json!({"kind": "task", "contact_id": cid, "subject": "回电确认报价", "due_at": past, "remind_at": past}))
        .await
        .json()
        .await
        .unwrap();
        let tid = task["id"].as_str().unwrap().to_owned();
        let (client, _) = app
            .session("admin@acme.test", "correct horse battery")
            .await;
        let page = |path: String| {
            let c = client.clone();
            let u = app.url(&path);
            async move { c.get(u).send().await.unwrap().text().await.unwrap() }
        };
        let r: Value = app
            .patch(
                &format!("/api/v1/contacts/{cid}"),
                t,
                json!({"version": 1, "phone": "13800138000", "email": "zm@mingjiao.cn"}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["version"], 2);
        let record = page(format!("/customers/contacts/{cid}")).await;
        // Key facts first: the phone (a call link), email, owner and open tasks precede the
        // timeline.
        let facts = record.find("id=\"facts\"").expect("key facts");
        let call = record
            .find("href=\"tel:+8613800138000\"")
            .expect("a call link");
        let timeline = record.find("id=\"timeline\"").expect("the timeline");
        assert!(facts < timeline && call < timeline);
        assert!(record.find("mailto:zm@mingjiao.cn").unwrap() < timeline);
        assert!(
            !record.contains("class=\"card soon\""),
            "no panels for modules that do not exist"
        );
        let home = page("/".into()).await;
        let section = |id: &str| {
            home.split(&format!("id=\"{id}\""))
                .nth(1)
                .unwrap_or("")
                .split("</section>")
                .next()
                .unwrap()
                .to_owned()
        };
        assert!(
            section("reminders").contains("回电确认报价"),
            "a due reminder shows on home"
        );
        assert!(
            section("today").contains("回电确认报价") && home.contains("class=\"task late\""),
            "overdue"
        );
        assert!(
            section("recent").contains("赵敏"),
            "recently viewed and changed"
        );
        assert!(!home.contains("soon"), "no modules that do not exist");
        // Reschedule it from its page: it leaves the overdue list and its reminder.
        let form = page(format!("/customers/activities/{tid}/edit")).await;
        let csrf = csrf_in(&form);
        let tomorrow =
            (chrono::Utc::now() + chrono::Duration::days(1) + chrono::Duration::hours(8))
                .naive_utc()
                .format("%Y-%m-%dT%H:%M")
                .to_string();
        let r = client
            .post(app.url(&format!("/customers/activities/{tid}/edit")))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("version", "1"),
                ("subject", "回电确认报价（改期）"),
                ("body", ""),
                ("due_at", tomorrow.as_str()),
                ("remind_at", ""),
                ("assignee_id", ""),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "saved and back on the contact");
        let stored: Value = app
            .get(&format!("/api/v1/activities/{tid}"), t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stored["subject"], "回电确认报价（改期）");
        assert!(stored["remind_at"].is_null());
        let home = page("/".into()).await;
        assert!(
            !home.contains("class=\"task late\"")
                && !home
                    .split("id=\"reminders\"")
                    .nth(1)
                    .unwrap()
                    .split("</section>")
                    .next()
                    .unwrap()
                    .contains("改期")
        );
        // A bad date is named, nothing saved.
        let r = client
            .post(app.url(&format!("/customers/activities/{tid}/edit")))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("version", "2"),
                ("subject", "x"),
                ("due_at", "明天"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let r = client
            .post(app.url(&format!("/customers/activities/{tid}/delete")))
            .form(&[("_csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            app.get(&format!("/api/v1/activities/{tid}"), t)
                .await
                .status(),
            404
        );
        // A rep: no administration section; their own account and tokens.
        app.user_with_role("sales", "rep@acme.test").await;
        let (rep, _) = app.session("rep@acme.test", "password-123456").await;
        let home = rep
            .get(app.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !home.contains("href=\"/admin/users\"") && !home.contains("href=\"/settings\""),
            "no admin pages for a rep"
        );
        assert!(home.contains("href=\"/admin/tokens\""));
    }
);

// Every page a user can reach by following links, in Chinese and English: none answers 5xx,
// none shows a missing value as `none`/`null`, no cancel link relies on script the page's own
// CSP blocks, English pages carry no Chinese list comma; an unknown address gets the site's
// layout with a viewport.
both!(
    every_reachable_page_renders_cleanly,
    |app: crate::harness::TestApp| async move {
        let admin: Value = app
            .get("/api/v1/me", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        let ctx = guanxi_platform::auth::ctx_for_user(
            &app.db,
            uuid::Uuid::parse_str(&app.tenant_id).unwrap(),
            uuid::Uuid::parse_str(admin["user"]["id"].as_str().unwrap()).unwrap(),
        )
        .await
        .unwrap();
        guanxi_customers::demo::load(
            &app.db,
            &ctx,
            guanxi_customers::demo::DemoSize {
                accounts: 6,
                seed: 5,
            },
        )
        .await
        .unwrap();
        // The sales demo too: pipelines, deals with their people, quotes, approvals, targets
        // and forecast calls — every page they show is crawled below.
        guanxi_sales::demo::load(&app.db, &ctx, 5).await.unwrap();
        // Graded once, as `guanxi demo` does: the evaluation's pages and the grade panels.
        guanxi_analytics::grading_runs::create(&app.db, &ctx, Default::default())
            .await
            .unwrap();
        assert_eq!(app.run_grading().await, 1);
        // The service desk: policies by grade, tickets with replies, open and solved.
        guanxi_service::demo::load(&app.db, &ctx, 5, "http://127.0.0.1")
            .await
            .unwrap();
        for lang in ["zh-CN", "en"] {
            let (client, _) = app
                .session("admin@acme.test", "correct horse battery")
                .await;
            let mut seen = std::collections::BTreeSet::new();
            let mut queue = std::collections::VecDeque::from(["/".to_owned()]);
            // Record pages look alike: a few of each kind are enough.
            let mut per_kind = std::collections::BTreeMap::<String, usize>::new();
            while let Some(path) = queue.pop_front() {
                if seen.len() >= 120 || !seen.insert(path.clone()) {
                    continue;
                }
                let r = client
                    .get(app.url(&path))
                    .header("accept-language", lang)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let html = r.text().await.unwrap();
                assert!(status < 500, "{lang} {path}: {status}");
                for bad in [
                    "value=\"none\"",
                    "value=\"None\"",
                    "value=\"null\"",
                    ">null<",
                    "javascript:",
                ] {
                    assert!(!html.contains(bad), "{lang} {path} shows {bad}");
                }
                let visible: String = html
                    .split('<')
                    .filter_map(|s| s.split_once('>').map(|x| x.1))
                    .collect::<Vec<_>>()
                    .join(" ");
                // A message key shown as itself (`activity.kind.share`): a label the
                // translations lack.
                let is_page = html.starts_with("<!doctype html>");
                let key = visible.split_whitespace().filter(|_| is_page).find(|w| {
                    let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_');
                    w.matches('.').count() >= 1
                        && w.split('.').all(|p| {
                            !p.is_empty()
                                && p.starts_with(|c: char| c.is_ascii_lowercase())
                                && p.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        })
                        && !w.starts_with("www.")
                        && ![".com", ".cn", ".net", ".org", ".test", ".guanxi"]
                            .iter()
                            .any(|tld| w.ends_with(tld))
                });
                assert!(key.is_none(), "{lang} {path} shows the key {key:?}");
                if lang == "en" {
                    assert!(
                        !visible.contains('、'),
                        "{lang} {path}: a Chinese list comma in English"
                    );
                }
                for part in html.split("href=\"").skip(1) {
                    let href = part.split('"').next().unwrap().replace("&amp;", "&");
                    if !href.starts_with('/')
                        || href.starts_with("/api/")
                        || href.starts_with("//")
                        || href.contains("export")
                    {
                        continue;
                    }
                    let kind: String = href.split('/').take(3).collect::<Vec<_>>().join("/");
                    let n = per_kind.entry(kind).or_default();
                    if *n < 6 {
                        *n += 1;
                        queue.push_back(href.split('#').next().unwrap().to_owned());
                    }
                }
            }
            assert!(seen.len() > 25, "the crawl reached {} pages", seen.len());
        }
        let r = reqwest::get(app.url("/no/such/page")).await.unwrap();
        assert_eq!(r.status(), 404);
        let html = r.text().await.unwrap();
        assert!(
            html.contains("name=\"viewport\"") && html.contains("/static/app.css"),
            "{html}"
        );
    }
);

both!(
    owner_pickers_reach_every_user,
    |app: crate::harness::TestApp| async move {
        // A company of 205 people: the owner select lists 200 and turns into a type-ahead over
        // the users API, which finds the ones past the first 200.
        let role = app.role("sales").await;
        let reqs: Vec<_> = (0..205)
            .map(|i| {
                app.req(reqwest::Method::POST, "/api/v1/users", &app.admin_token)
                    .json(&json!({"email": format!("u{i:03}@acme.test"), "name": format!("同事{i:03}"), "role_id": role["id"]}))
                    .send()
            })
            .collect();
        for r in crate::concurrency::futures_join(reqs).await {
            assert_eq!(r.status(), 201);
        }
        let new_contact_form = |email: &'static str| {
            let app = &app;
            async move {
                let (c, _) = app.session(email, "correct horse battery").await;
                c.get(app.url("/customers/contacts/new"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }
        };
        let html = new_contact_form("admin@acme.test").await;
        assert!(
            html.contains(r#"<select name="owner_id" data-lookup="user""#),
            "the owner select becomes a type-ahead"
        );
        let found: Value = app
            .get(
                "/api/v1/users?active=true&limit=20&q=同事204",
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(found["items"][0]["email"], "u204@acme.test");
        // A small company keeps the plain dropdown.
        app.signup("小公司", "boss@small.test").await;
        let html = new_contact_form("boss@small.test").await;
        assert!(html.contains(r#"<select name="owner_id">"#));
    }
);
