//! `TestApp`: a real server on a random port over a fresh database (a SQLite file, or a new
//! PostgreSQL database when `GUANXI_TEST_DATABASE_URL` is set), a real SMTP sink, and helpers.

use guanxi_platform::config::{Config, Layer, Secret};
use guanxi_platform::mail::Mailer;
use guanxi_platform::{jobs, migrate, Db};
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body once per backend: `both!(name, |app| async move { … })`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::harness::TestApp::start($crate::harness::Backend::Sqlite).await;
                ($body)(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) = $crate::harness::TestApp::start_postgres().await else {
                    return;
                };
                ($body)(app).await;
            }
        }
    };
}

/// A real SMTP server on 127.0.0.1 that keeps every message it receives.
#[derive(Clone, Default)]
pub struct SmtpSink {
    pub messages: Arc<Mutex<Vec<String>>>,
    pub port: u16,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = SmtpSink {
            messages: Arc::default(),
            port,
        };
        let messages = sink.messages.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let messages = messages.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut lines = BufReader::new(r).lines();
                    let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(buf) = data.as_mut() {
                            if line == "." {
                                messages.lock().unwrap().push(data.take().unwrap());
                                let _ = w.write_all(b"250 queued\r\n").await;
                            } else {
                                buf.push_str(line.strip_prefix('.').unwrap_or(&line));
                                buf.push('\n');
                            }
                            continue;
                        }
                        let up = line.to_ascii_uppercase();
                        let reply: &[u8] = if up.starts_with("EHLO") {
                            b"250-sink\r\n250 8BITMIME\r\n"
                        } else if up.starts_with("DATA") {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        } else if up.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            b"250 ok\r\n"
                        };
                        let _ = w.write_all(reply).await;
                    }
                });
            }
        });
        sink
    }

    pub fn received(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

pub struct TestApp {
    pub base: String,
    pub db: Db,
    pub state: guanxi_web::AppState,
    pub smtp: SmtpSink,
    pub client: Client,
    pub admin_token: String,
    pub tenant_id: String,
    _dir: Option<TempDir>,
    pg_drop: Option<(String, String)>,
}

pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir() -> TempDir {
    let p = std::env::temp_dir().join(format!("guanxi-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&p).unwrap();
    TempDir(p)
}

/// PostgreSQL is required when CI=true: a missing server fails instead of skipping.
pub fn pg_url() -> Option<String> {
    match std::env::var("GUANXI_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but GUANXI_TEST_DATABASE_URL is not set")
        }
        _ => {
            eprintln!("GUANXI_TEST_DATABASE_URL not set: skipping the PostgreSQL run of this test");
            None
        }
    }
}

/// Creates a fresh PostgreSQL database; returns its URL and the admin URL to drop it with.
pub async fn fresh_pg_database(base: &str) -> (String, String) {
    let name = format!("gx_{}", uuid::Uuid::now_v7().simple());
    let admin = Db::connect(base, 1)
        .await
        .expect("connect to GUANXI_TEST_DATABASE_URL");
    admin
        .execute(&format!("CREATE DATABASE {name}"), vec![])
        .await
        .unwrap();
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
    (format!("{prefix}/{name}"), name)
}

/// Connections in each test app's pool: 8, or `GUANXI_TEST_POOL`. CI runs the suite once more
/// with a pool of one, so code that takes a second connection while it holds a transaction
/// deadlocks a test (the pool's acquire timeout) instead of a customer's server under load.
pub fn pool_size() -> u32 {
    std::env::var("GUANXI_TEST_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

/// Rows per search era in every test app (see `guanxi_records::eras`).
pub const ERA_ROWS: i64 = 8;

impl TestApp {
    pub async fn start_postgres() -> Option<TestApp> {
        pg_url()?;
        Some(TestApp::start(Backend::Postgres).await)
    }

    pub async fn start(backend: Backend) -> TestApp {
        // Search eras of 8 rows: every test that searches more than a handful of records
        // reads across eras (production: 65,536).
        guanxi_records::eras::set_era_rows(ERA_ROWS);
        let smtp = SmtpSink::start().await;
        let (url, dir, pg_drop) = match backend {
            Backend::Sqlite => {
                let d = temp_dir();
                (
                    d.0.join("guanxi.db").to_string_lossy().into_owned(),
                    Some(d),
                    None,
                )
            }
            Backend::Postgres => {
                let base = pg_url().expect("postgres url");
                let (url, name) = fresh_pg_database(&base).await;
                (url, None, Some((base, name)))
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Config::resolve(&[Layer {
            database_url: Some(Secret(url.clone())),
            listen: Some(addr),
            allow_signup: Some(true),
            smtp_url: Some(Secret(format!("smtp://127.0.0.1:{}", smtp.port))),
            workers: Some(false),
            db_max_connections: Some(pool_size()),
            trusted_proxies: Some(vec!["127.0.0.1".into()]),
            ..Layer::default()
        }]);
        let db = Db::connect(&url, pool_size()).await.unwrap();
        migrate::run(&db, guanxi_web::MIGRATIONS).await.unwrap();
        let state = guanxi_web::AppState::new(db.clone(), config).unwrap();
        let s2 = state.clone();
        tokio::spawn(async move { guanxi_web::serve(listener, s2, std::future::pending()).await });
        let client = Client::builder().cookie_store(true).build().unwrap();
        let mut app = TestApp {
            base: format!("http://{addr}"),
            db,
            state,
            smtp,
            client,
            admin_token: String::new(),
            tenant_id: String::new(),
            _dir: dir,
            pg_drop,
        };
        let (tenant, token) = app.signup("Acme 示例", "admin@acme.test").await;
        app.tenant_id = tenant;
        app.admin_token = token;
        app
    }

    /// Signs up a new tenant through the API; returns (tenant id, an admin API token).
    pub async fn signup(&self, company: &str, email: &str) -> (String, String) {
        let c = Client::builder().cookie_store(true).build().unwrap();
        let r = c
            .post(self.url("/api/v1/signups"))
            .json(&json!({"company": company, "email": email, "password": "correct horse battery", "name": "Admin"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "signup: {}", r.text().await.unwrap());
        let s: Value = r.json().await.unwrap();
        let r = c
            .post(self.url("/api/v1/api-tokens"))
            .header("x-csrf-token", s["csrf_token"].as_str().unwrap())
            .json(&json!({"name": "test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let t: Value = r.json().await.unwrap();
        (
            s["tenant_id"].as_str().unwrap().to_owned(),
            t["secret"].as_str().unwrap().to_owned(),
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn req(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.req(Method::GET, path, token).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.req(Method::POST, path, token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.req(Method::PATCH, path, token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` to `path` and returns the record made, asserting a 201.
    pub async fn created(&self, path: &str, token: &str, body: Value) -> Value {
        let r = self.post(path, token, body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 201, "POST {path}: {v}");
        v
    }

    /// The role with this key, as the API shows it.
    pub async fn role(&self, key: &str) -> Value {
        let roles: Value = self
            .get("/api/v1/roles", &self.admin_token)
            .await
            .json()
            .await
            .unwrap();
        roles["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("no role {key}"))
            .clone()
    }

    /// Creates a user with `role` and a password; returns (user JSON, an API token for them).
    pub async fn user_with_role(&self, role: &str, email: &str) -> (Value, String) {
        let role_id = self.role(role).await["id"].clone();
        let r = self
            .post("/api/v1/users", &self.admin_token, json!({"email": email, "name": email, "password": "password-123456", "role_id": role_id}))
            .await;
        assert_eq!(r.status(), 201);
        let user: Value = r.json().await.unwrap();
        let token = self.sign_in_token(email, "password-123456").await;
        (user, token)
    }

    /// Signs in through the API as a browser would: the cookie-holding client and the session
    /// (`user_id`, `tenant_id`, `csrf_token`).
    pub async fn session(&self, email: &str, password: &str) -> (Client, Value) {
        let c = Client::builder().cookie_store(true).build().unwrap();
        let r = c
            .post(self.url("/api/v1/sessions"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "sign in {email}");
        (c, r.json().await.unwrap())
    }

    /// Signs in as a user and creates an API token for them.
    pub async fn sign_in_token(&self, email: &str, password: &str) -> String {
        let (c, s) = self.session(email, password).await;
        let r = c
            .post(self.url("/api/v1/api-tokens"))
            .header("x-csrf-token", s["csrf_token"].as_str().unwrap())
            .json(&json!({"name": "t"}))
            .send()
            .await
            .unwrap();
        if r.status() == 201 {
            let t: Value = r.json().await.unwrap();
            t["secret"].as_str().unwrap().to_owned()
        } else {
            // Roles without api_tokens.create (read-only) get a token minted directly.
            let tenant = uuid::Uuid::parse_str(s["tenant_id"].as_str().unwrap()).unwrap();
            let user = uuid::Uuid::parse_str(s["user_id"].as_str().unwrap()).unwrap();
            let ctx = guanxi_platform::auth::ctx_for_user(&self.db, tenant, user)
                .await
                .unwrap();
            let ctx = guanxi_platform::Ctx {
                perms: guanxi_platform::perms::builtin_permissions("admin"),
                ..ctx
            };
            guanxi_platform::api_tokens::create(
                &self.db,
                &ctx,
                guanxi_platform::api_tokens::NewToken {
                    name: Some("t".into()),
                    expires_in_days: None,
                },
            )
            .await
            .unwrap()
            .secret
        }
    }

    /// Runs the jobs due at `at` (default now) until none is left, as the worker would (a job
    /// may queue another: a notification its email).
    pub async fn run_jobs_at(&self, at: chrono::DateTime<chrono::Utc>) -> jobs::RunStats {
        let mut total = jobs::RunStats::default();
        loop {
            let s = jobs::run_due(&self.db, &self.state.mailer, &self.state.handlers, at, 100)
                .await
                .unwrap();
            total.done += s.done;
            total.retried += s.retried;
            total.dead += s.dead;
            total.overtaken += s.overtaken;
            // A retried job waits for its backoff: it is not due again at `at`.
            if s.done + s.dead + s.overtaken == 0 {
                return total;
            }
        }
    }

    /// Runs the waiting 4V evaluations to the end, as the grader would; returns how many.
    pub async fn run_grading(&self) -> u32 {
        guanxi_analytics::grading_runs::work(&self.db)
            .await
            .unwrap()
    }

    /// Sends the scheduled reports due, as the analytics worker would; returns how many.
    pub async fn run_deliveries(&self) -> u32 {
        let mail = guanxi_web::reports::mail(self.state.config.base_url.clone());
        guanxi_analytics::reports::deliver(&self.db, &mail)
            .await
            .unwrap()
    }

    pub async fn run_pending_jobs(&self) -> jobs::RunStats {
        self.run_jobs_at(guanxi_platform::time::now()).await
    }

    /// The same app with a mailer pointing at a closed port (SMTP down).
    pub fn mailer_down(&self) -> Mailer {
        Mailer::new(Some("smtp://127.0.0.1:1"), "Guanxi <noreply@localhost>").unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg_drop.take() {
            let db = self.db.clone();
            // Dropping needs async I/O; do it on a thread with its own runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    db.close().await;
                    if let Ok(admin) = Db::connect(&base, 1).await {
                        let _ = admin
                            .execute(
                                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                                vec![],
                            )
                            .await;
                        admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// The seconds a 429 or 503 says to wait (`Retry-After`).
pub fn retry_after(r: &Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// (field, code) of every error of a 422, sorted.
pub async fn refused(r: Response) -> Vec<(String, String)> {
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    let mut f: Vec<(String, String)> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    f.sort();
    f
}
