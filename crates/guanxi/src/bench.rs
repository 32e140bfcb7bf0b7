//! `guanxi bench`: the benchmark suite. For each database (a fresh SQLite file, and a fresh
//! PostgreSQL database when a server URL is given) and each scale (contacts; a tenth as many
//! accounts) it generates the data deterministically (`demo::scale`), then:
//!
//! - **HTTP**: starts the real server (`guanxi serve`) and the floor (`guanxi bench-floor`: bare
//!   handlers running only the same SQL — the token lookup and the path's own statement,
//!   built by the same functions — with no middleware, permission check, audit or logging),
//!   one after the other, and drives each path with the same bounded number of requests at
//!   each number of connections: GET one contact, a list page with a filter and a sort, three
//!   searches (a Chinese substring, pinyin initials, phone digits), create a contact, and the
//!   contact's 360 page with 1,000 timeline entries (server only: a page of many statements);
//! - **import**: the same contacts as a CSV file, imported with `guanxi import contacts`
//!   (duplicate check on) into a new tenant, beside the floor `guanxi bench-floor-import` — the
//!   same file read by the same reader and bulk-inserted with no checks into another new
//!   tenant; then the accounts, and half as many orders as contacts (naming the contacts), the
//!   same way into the same two tenants;
//! - **export**: `GET /api/v1/contacts/export.csv` of every contact;
//!
//! reporting req/s, p50/p99, rows/s and peak RSS, each beside its floor as a ratio measured in
//! the same run. See docs/benchmarks.md.

use anyhow::{bail, Context};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use guanxi_customers::contacts::{self, Contact, ContactFilter};
use guanxi_platform::config::Config;
use guanxi_platform::db::{Sql, Val};
use guanxi_platform::tenants::{self, NewTenant};
use guanxi_platform::{args, auth, migrate, secret, Ctx, Db};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Contacts generated per run, comma-separated (each with a tenth as many accounts).
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    pub scales: Vec<usize>,
    /// Concurrent keep-alive connections, comma-separated: each path is measured at each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub connections: Vec<usize>,
    /// Measured requests per path, connection count and target (after a warm-up of a tenth).
    #[arg(long, default_value_t = 2_000)]
    pub requests: u64,
    /// Skip the import and export measurements.
    #[arg(long)]
    pub no_import: bool,
    /// A PostgreSQL server to measure too; a fresh database is created on it per scale and
    /// dropped after.
    #[arg(long, env = "GUANXI_BENCH_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,
    /// Measure PostgreSQL only (with --postgres-url), not SQLite
    #[arg(long)]
    pub skip_sqlite: bool,
    /// Instead of the measurements: a soak of this many minutes of mixed reads and writes
    /// (point reads, lists, searches, 360 pages, new contacts and orders) at 16 connections per
    /// database; fails on any 5xx, and reports the server's memory over time.
    #[arg(long)]
    pub soak_minutes: Option<u64>,
    /// Instead of the measurements: the sales analytics over this many generated deals per
    /// database (a third closed today, the rest open over two quarters) — the board's first
    /// page, the forecast, the funnel and rep performance, each beside its bare SQL.
    #[arg(long)]
    pub deals: Option<usize>,
    /// Instead of the measurements: the service desk over this many generated tickets per
    /// database (two in three open) — the SLA evaluation of open tickets, the queue's first
    /// page by due time and a ticket search, each beside its bare SQL.
    #[arg(long)]
    pub tickets: Option<usize>,
    /// With --tickets: also ingest this many mails from an IMAP server (a Dovecot named as
    /// `host:starttls-port:tls-port:ca.pem`, what `.ci/dovecot-start` prints; any user name,
    /// password `secret`) beside downloading them bare.
    #[arg(long, env = "GUANXI_BENCH_IMAP")]
    pub imap: Option<String>,
    #[arg(long, default_value_t = 2_000)]
    pub mails: usize,
    /// Instead of the measurements: customer value over each scale's generated history (N
    /// contacts, N/10 accounts, ≈3N orders with ≈10N lines) per database — ABC, RFM, a 4V
    /// evaluation, a lifetime-value fit, the management dashboard and a report, each beside
    /// the bare aggregate it starts from.
    #[arg(long)]
    pub value: bool,
}

/// What a generated data set offers the requests.
struct Seeded {
    tenant: Uuid,
    /// The admin who owns every generated record.
    admin: Uuid,
    token: String,
    email: String,
    password: String,
    /// Contacts the point reads cycle through.
    ids: Vec<Uuid>,
    /// A contact with 1,000 timeline entries (the 360 page).
    hub: Uuid,
    cn: String,
    initials: String,
    digits: String,
    /// A public form's key (its posts go through the lead intake's duplicate matching).
    form_key: String,
    /// Phones of existing contacts: every other form post is a person already known.
    known_phones: Vec<String>,
}

/// One measured load of one path on one target.
#[derive(Debug, Clone, Copy, Default)]
struct Lat {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Server,
    Floor,
}

/// The paths measured; `floor` says whether the floor serves it.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Path_ {
    /// The whole HTTP stack with no database: the ceiling a point read is measured against.
    Healthz,
    Get,
    List,
    SearchCn,
    SearchInitials,
    SearchPhone,
    Create,
    Page360,
    FormPost,
    LeadList,
    LeadSearch,
}

const PATHS: [Path_; 11] = [
    Path_::Healthz,
    Path_::Get,
    Path_::List,
    Path_::SearchCn,
    Path_::SearchInitials,
    Path_::SearchPhone,
    Path_::Page360,
    Path_::Create,
    Path_::FormPost,
    Path_::LeadList,
    Path_::LeadSearch,
];

impl Path_ {
    fn label(self, s: &Seeded) -> String {
        match self {
            Path_::Healthz => "GET /healthz (the stack's ceiling)".into(),
            Path_::Get => "GET /api/v1/contacts/{id}".into(),
            Path_::List => "list: province=浙江省, sort=-updated_at, 50".into(),
            Path_::SearchCn => format!("search q={} (Chinese substring)", s.cn),
            Path_::SearchInitials => format!("search q={} (initials)", s.initials),
            Path_::SearchPhone => format!("search q={} (phone digits)", s.digits),
            Path_::Create => "POST /api/v1/contacts".into(),
            Path_::Page360 => "360 page, 1,000 timeline entries".into(),
            Path_::FormPost => {
                "POST /public/forms/{key} (duplicate-checked; floor: a bare insert)".into()
            }
            Path_::LeadList => {
                "leads: province=浙江省, sort=-score, 50 (beside the contact list)".into()
            }
            Path_::LeadSearch => format!("lead search q={} (beside the contact search)", s.cn),
        }
    }
    fn has_floor(self) -> bool {
        !matches!(
            self,
            Path_::Healthz | Path_::Page360 | Path_::FormPost | Path_::LeadList | Path_::LeadSearch
        )
    }
    fn is_search(self) -> bool {
        matches!(
            self,
            Path_::SearchCn | Path_::SearchInitials | Path_::SearchPhone
        )
    }
}

/// A row of the report.
struct Line {
    db: &'static str,
    scale: usize,
    what: String,
    conns: usize,
    server: Lat,
    floor: Option<Lat>,
    /// Searches: the raw index query alone.
    index: Option<Lat>,
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.requests == 0 || args.connections.contains(&0) || args.scales.contains(&0) {
        bail!("--requests, --connections and --scales must be at least 1");
    }
    if args.skip_sqlite && args.postgres_url.is_none() {
        bail!("--skip-sqlite needs --postgres-url: nothing would be measured");
    }
    let dir = std::env::temp_dir().join(format!("guanxi-bench-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    for &scale in &args.scales {
        let sqlite = dir
            .join(format!("bench-{scale}.db"))
            .to_string_lossy()
            .into_owned();
        if let Some(minutes) = args.soak_minutes {
            if !args.skip_sqlite {
                soak("SQLite", &sqlite, scale, &dir, minutes, &mut notes).await?;
                let _ = std::fs::remove_file(&sqlite);
            }
            if let Some(base) = &args.postgres_url {
                let (url, name) = fresh_pg_database(base).await?;
                let r = soak("PostgreSQL", &url, scale, &dir, minutes, &mut notes).await;
                drop_pg_database(base, &name).await;
                r?;
            }
            continue;
        }
        if args.value {
            if !args.skip_sqlite {
                let s = seed(&sqlite, scale).await?;
                notes.push(value("SQLite", &sqlite, &s, scale).await?);
                eprintln!("{}", notes.last().map_or("", |n| n.as_str()));
                let _ = std::fs::remove_file(&sqlite);
            }
            if let Some(base) = &args.postgres_url {
                let (url, name) = fresh_pg_database(base).await?;
                let r = match seed(&url, scale).await {
                    Ok(s) => value("PostgreSQL", &url, &s, scale).await,
                    Err(e) => Err(e),
                };
                drop_pg_database(base, &name).await;
                notes.push(r?);
                eprintln!("{}", notes.last().map_or("", |n| n.as_str()));
            }
            continue;
        }
        if let Some(n) = args.tickets {
            if !args.skip_sqlite {
                let s = seed(&sqlite, scale).await?;
                notes.push(service("SQLite", &sqlite, &s, n, args).await?);
                eprintln!("{}", notes.last().map_or("", |n| n.as_str()));
                let _ = std::fs::remove_file(&sqlite);
            }
            if let Some(base) = &args.postgres_url {
                let (url, name) = fresh_pg_database(base).await?;
                let r = match seed(&url, scale).await {
                    Ok(s) => service("PostgreSQL", &url, &s, n, args).await,
                    Err(e) => Err(e),
                };
                drop_pg_database(base, &name).await;
                notes.push(r?);
                eprintln!("{}", notes.last().map_or("", |n| n.as_str()));
            }
            continue;
        }
        if let Some(n) = args.deals {
            if !args.skip_sqlite {
                let s = seed(&sqlite, scale).await?;
                notes.push(analytics("SQLite", &sqlite, &s, n).await?);
                eprintln!("{}", notes.last().map_or("", |n| n.as_str()));
                let _ = std::fs::remove_file(&sqlite);
            }
            if let Some(base) = &args.postgres_url {
                let (url, name) = fresh_pg_database(base).await?;
                let r = match seed(&url, scale).await {
                    Ok(s) => analytics("PostgreSQL", &url, &s, n).await,
                    Err(e) => Err(e),
                };
                drop_pg_database(base, &name).await;
                notes.push(r?);
                eprintln!("{}", notes.last().map_or("", |n| n.as_str()));
            }
            continue;
        }
        if !args.skip_sqlite {
            let (l0, n0) = (lines.len(), notes.len());
            measure_backend("SQLite", &sqlite, scale, &dir, args, &mut lines, &mut notes).await?;
            // What is measured so far also goes to stderr, in case a long run is cut short.
            eprintln!("{}{}", table(&lines[l0..]), notes[n0..].join("\n"));
            let _ = std::fs::remove_file(&sqlite);
        }
        if let Some(base) = &args.postgres_url {
            let (l1, n1) = (lines.len(), notes.len());
            let (url, name) = fresh_pg_database(base).await?;
            let r = measure_backend(
                "PostgreSQL",
                &url,
                scale,
                &dir,
                args,
                &mut lines,
                &mut notes,
            )
            .await;
            drop_pg_database(base, &name).await;
            r?;
            eprintln!("{}{}", table(&lines[l1..]), notes[n1..].join("\n"));
        }
    }
    if args.postgres_url.is_none() {
        eprintln!("no --postgres-url (GUANXI_BENCH_POSTGRES_URL): PostgreSQL not measured");
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "\n{} measured requests per path, target and connection count (after a warm-up of a tenth)\n",
        args.requests
    );
    print!("{}", table(&lines));
    println!();
    for n in &notes {
        println!("{n}");
    }
    Ok(())
}

/// The results as a Markdown table.
fn table(lines: &[Line]) -> String {
    let mut out = String::from("| database | contacts | path | conns | floor req/s | guanxi req/s | guanxi/floor | floor p50/p99 ms | guanxi p50/p99 ms | raw index p50/p99 ms |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for l in lines {
        let (f_rps, ratio, f_lat) = match l.floor {
            Some(f) => (
                format!("{:.0}", f.rps),
                format!("{:.0}%", 100.0 * l.server.rps / f.rps),
                format!("{:.1} / {:.1}", f.p50_ms, f.p99_ms),
            ),
            None => ("—".into(), "—".into(), "—".into()),
        };
        let index = l.index.map_or("—".into(), |i| {
            format!("{:.1} / {:.1}", i.p50_ms, i.p99_ms)
        });
        out.push_str(&format!(
            "| {} | {} | {} | {} | {f_rps} | {:.0} | {ratio} | {f_lat} | {:.1} / {:.1} | {index} |\n",
            l.db, l.scale, l.what, l.conns, l.server.rps, l.server.p50_ms, l.server.p99_ms
        ));
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn measure_backend(
    label: &'static str,
    url: &str,
    scale: usize,
    dir: &std::path::Path,
    args: &BenchArgs,
    lines: &mut Vec<Line>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    eprintln!("{label}: generating {scale} contacts");
    let started = Instant::now();
    let s = Arc::new(seed(url, scale).await?);
    notes.push(format!(
        "{label}, {scale} contacts: generated in {:.1} s (`demo --scale`, then 1,000 timeline entries and planner statistics).",
        started.elapsed().as_secs_f64()
    ));
    // The floor first, then the server, each a fresh process with the same warm-up.
    let mut floor_lat = Vec::new();
    let mut index_lat = Vec::new();
    let (mut floor, faddr) = start(Target::Floor, url, dir, Some(&s)).await?;
    for p in PATHS.into_iter().filter(|p| p.has_floor()) {
        for &c in &args.connections {
            eprintln!("{label} {scale}: floor {p:?} x{c}");
            floor_lat.push(((p, c), load(faddr, &s, p, c, args.requests, None).await?));
            if p.is_search() {
                let raw = load(faddr, &s, p, c, args.requests, Some(RAW_INDEX)).await?;
                index_lat.push(((p, c), raw));
            }
        }
    }
    let floor_rss = rss_mb(floor.id().context("floor exited")?, "VmHWM:")?;
    floor.kill().await?;
    let (mut server, saddr) = start(Target::Server, url, dir, None).await?;
    let spid = server.id().context("server exited")?;
    let idle = rss_mb(spid, "VmRSS:")?;
    let cookie = sign_in(saddr, &s).await?;
    let first = lines.len();
    for p in PATHS {
        for &c in &args.connections {
            eprintln!("{label} {scale}: guanxi {p:?} x{c}");
            let lat = load(saddr, &s, p, c, args.requests, Some(&cookie)).await?;
            // A form post is measured beside the bare insert the create path's floor does;
            // leads beside the contacts' floor (the same machinery over a table as large).
            let floor_of = match p {
                Path_::FormPost => Path_::Create,
                Path_::LeadList => Path_::List,
                Path_::LeadSearch => Path_::SearchCn,
                p => p,
            };
            let f = floor_lat
                .iter()
                .find(|(k, _)| *k == (floor_of, c))
                .map(|(_, l)| *l);
            let index = index_lat
                .iter()
                .find(|(k, _)| *k == (p, c))
                .map(|(_, l)| *l);
            lines.push(Line {
                db: label,
                scale,
                what: p.label(&s),
                conns: c,
                server: lat,
                floor: f,
                index,
            });
        }
    }
    let server_rss = rss_mb(spid, "VmHWM:")?;
    let rps = |what: Path_, c: usize| {
        lines[first..]
            .iter()
            .find(|l| l.conns == c && l.what == what.label(&s))
            .map(|l| l.server.rps)
    };
    for &c in &args.connections {
        if let (Some(h), Some(g)) = (rps(Path_::Healthz, c), rps(Path_::Get, c)) {
            notes.push(format!(
                "{label}, {scale} contacts, {c} connections: GET one contact {g:.0} req/s = {:.0}% of /healthz ({h:.0} req/s).",
                100.0 * g / h
            ));
        }
    }
    notes.push(format!(
        "{label}, {scale} contacts: server RSS idle {idle:.0} MB, peak over the HTTP runs {server_rss:.0} MB (floor {floor_rss:.0} MB)."
    ));
    notes.push(pool_returns(label, url, &s, scale).await?);
    notes.push(board(label, url, &s, scale).await?);
    if !args.no_import {
        // Export every contact through the server, then stop it.
        let t = Instant::now();
        let bytes = export(saddr, &s).await?;
        let secs = t.elapsed().as_secs_f64();
        let peak = rss_mb(spid, "VmHWM:")?;
        notes.push(format!(
            "{label}, {scale} contacts: export.csv of every contact: {:.1} s, {:.0} rows/s, {:.1} MB written, server peak RSS {peak:.0} MB.",
            secs,
            scale as f64 / secs,
            bytes as f64 / 1e6
        ));
        server.kill().await?;
        // Contacts, then accounts, then orders naming the contacts, each file into the floor's
        // tenant and into the import's.
        let (mut floor_tenant, mut real_tenant) = (None, None);
        for kind in ["contacts", "accounts", "orders"] {
            let file = dir.join(format!("import-{kind}-{scale}.csv"));
            let rows = write_csv(url, &s, kind, scale, &file).await?;
            let floor = import_run(url, dir, &file, kind, true, floor_tenant).await?;
            let real = import_run(url, dir, &file, kind, false, real_tenant).await?;
            (floor_tenant, real_tenant) = (Some(floor.2), Some(real.2));
            notes.push(format!(
                "{label}, {rows} {kind} in a CSV: floor (bulk insert, no checks) {:.1} s = {:.0} rows/s, peak RSS {:.0} MB; `guanxi import {kind}` (duplicates checked) {:.1} s = {:.0} rows/s, peak RSS {:.0} MB; guanxi/floor {:.0}%.",
                floor.0,
                rows as f64 / floor.0,
                floor.1,
                real.0,
                rows as f64 / real.0,
                real.1,
                100.0 * floor.0 / real.0
            ));
            let _ = std::fs::remove_file(&file);
        }
    } else {
        server.kill().await?;
    }
    Ok(())
}

/// The soak: `minutes` of mixed traffic at 16 connections — per ten requests three point
/// reads, a list, two searches, a 360 page, a new contact and two new orders (the writes that
/// once exhausted the pool) — counting answers by class and sampling the server's memory.
async fn soak(
    label: &'static str,
    url: &str,
    scale: usize,
    dir: &std::path::Path,
    minutes: u64,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    const CONNS: usize = 16;
    eprintln!("{label}: generating {scale} contacts for a {minutes}-minute soak");
    let s = Arc::new(seed(url, scale).await?);
    let (mut server, addr) = start(Target::Server, url, dir, None).await?;
    let pid = server.id().context("server exited")?;
    let cookie = sign_in(addr, &s).await?;
    let deadline = Instant::now() + Duration::from_secs(minutes * 60);
    let next = Arc::new(AtomicU64::new(0));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    // Memory: sampled every 15 s while the load runs.
    let sampler = tokio::spawn(async move {
        let mut rss = Vec::new();
        while Instant::now() < deadline {
            rss.push(rss_mb(pid, "VmRSS:").unwrap_or(0.0));
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
        rss
    });
    let mut tasks = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let (next, s, cookie, counts) = (next.clone(), s.clone(), cookie.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            let (mut send, conn) = connect(addr).await?;
            tokio::spawn(conn);
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let req = match i % 10 {
                    0..=2 => request(&s, Path_::Get, i, None)?,
                    3 => request(&s, Path_::List, i, None)?,
                    4 => request(&s, Path_::SearchCn, i, None)?,
                    5 => request(&s, Path_::SearchPhone, i, None)?,
                    6 => request(&s, Path_::Page360, i, Some(&cookie))?,
                    7 => request(&s, Path_::Create, i, None)?,
                    _ => {
                        let body = serde_json::json!({
                            "contact_id": s.ids[(i as usize) % s.ids.len()],
                            "lines": [{"name": "压测茶叶", "unit_price": 1000 + (i % 997) as i64, "quantity": 1 + (i % 5) as i64}],
                        });
                        hyper::Request::post("/api/v1/orders")
                            .header(header::HOST, "bench")
                            .header(header::AUTHORIZATION, format!("Bearer {}", s.token))
                            .header(header::CONTENT_TYPE, "application/json")
                            .body(Full::new(Bytes::from(body.to_string())))?
                    }
                };
                let resp = send.send_request(req).await?;
                let status = resp.status();
                resp.into_body().collect().await?;
                let class = match status.as_u16() {
                    200..=299 => 0,
                    500..=599 => 2,
                    _ => 1,
                };
                if class == 2 {
                    eprintln!("{label} soak: request {i} answered {status}");
                }
                counts[class].fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rss = sampler.await?;
    let peak = rss_mb(pid, "VmHWM:")?;
    server.kill().await?;
    let [ok, refused, failed] = [0, 1, 2].map(|k| counts[k].load(Ordering::Relaxed));
    let total = ok + refused + failed;
    let first = rss.iter().take(4).copied().fold(0.0, f64::max);
    let last = rss.iter().rev().take(4).copied().fold(0.0, f64::max);
    notes.push(format!(
        "{label}, {scale} contacts, {minutes}-minute soak at {CONNS} connections: {total} requests ({:.0}/s), {ok} 2xx, {refused} 4xx, {failed} 5xx; server RSS {first:.0} MB in the first minute, {last:.0} MB in the last, peak {peak:.0} MB.",
        total as f64 / (minutes * 60) as f64
    ));
    eprintln!("{}", notes.last().map(String::as_str).unwrap_or(""));
    if failed > 0 {
        bail!("{label} soak: {failed} server errors");
    }
    Ok(())
}

/// A tenant with `scale` generated contacts, statistics refreshed, an admin token, and one
/// contact given 1,000 timeline entries.
async fn seed(url: &str, scale: usize) -> anyhow::Result<Seeded> {
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let db = Db::connect(url, 4).await.map_err(e)?;
    migrate::run(&db, guanxi_web::MIGRATIONS).await.map_err(e)?;
    let password = secret::random_secret();
    let email = "bench@bench.test".to_owned();
    let (tenant, admin) = tenants::create(
        &db,
        NewTenant {
            name: "Bench 基准".into(),
            admin_email: email.clone(),
            admin_name: Some("Bench".into()),
            admin_password: password.clone(),
            locale: Some("zh-CN".into()),
        },
    )
    .await
    .map_err(e)?;
    let ctx: Ctx = auth::ctx_for_user(&db, tenant.id, admin.id)
        .await
        .map_err(e)?;
    guanxi_customers::demo::scale(&db, &ctx, scale, 2024, |_| {})
        .await
        .map_err(e)?;
    // As many leads as contacts, for the lead list and search beside the contacts'.
    guanxi_sales::demo::scale(&db, &ctx, scale, 2025)
        .await
        .map_err(e)?;
    let ids: Vec<(Uuid,)> = db
        .fetch_all(
            "SELECT id FROM contacts WHERE tenant_id = $1 ORDER BY phone_e164 LIMIT 1000",
            args![tenant.id],
        )
        .await
        .map_err(e)?;
    let ids: Vec<Uuid> = ids.into_iter().map(|(id,)| id).collect();
    // The searched-for terms come from a generated contact with a three-character Chinese name.
    let named: Vec<(Uuid, String, Option<String>)> = db
        .fetch_all(
            "SELECT id, name, phone_e164 FROM contacts WHERE tenant_id = $1 ORDER BY phone_e164 LIMIT 200",
            args![tenant.id],
        )
        .await
        .map_err(e)?;
    let (hub, name, phone) = named
        .into_iter()
        .find(|(_, n, p)| n.chars().count() == 3 && !n.is_ascii() && p.is_some())
        .context("no generated contact with a three-character Chinese name")?;
    let cn: String = name.chars().skip(1).collect();
    let (_, initials) = guanxi_records::normalize::pinyin(&name);
    let digits: String = phone.unwrap_or_default().chars().skip(6).take(5).collect();
    for i in 0..1000 {
        guanxi_customers::activities::create(
            &db,
            &ctx,
            guanxi_customers::activities::ActivityInput {
                kind: Some(["call", "note", "meeting", "visit"][i % 4].into()),
                subject: Some(format!("第 {i} 次跟进：报价与交付")),
                contact_id: Some(hub),
                ..Default::default()
            },
        )
        .await
        .map_err(e)?;
    }
    db.analyze(true).await.map_err(e)?;
    let token = guanxi_platform::api_tokens::create(
        &db,
        &ctx,
        guanxi_platform::api_tokens::NewToken {
            name: Some("bench".into()),
            expires_in_days: None,
        },
    )
    .await
    .map_err(e)?
    .secret;
    let form = guanxi_sales::forms::create(
        &db,
        &ctx,
        serde_json::from_value(serde_json::json!({
            "name": "基准表单",
            "fields": [
                {"field": "name", "labels": {"zh-CN": "姓名"}},
                {"field": "phone", "labels": {"zh-CN": "手机"}},
                {"field": "notes", "labels": {"zh-CN": "留言"}}
            ],
            "min_fill_seconds": 0, "per_ip_hour": 10000, "per_minute": 100000
        }))?,
    )
    .await
    .map_err(e)?;
    let known: Vec<(Option<String>,)> = db
        .fetch_all(
            "SELECT phone_e164 FROM contacts WHERE tenant_id = $1 AND phone_e164 IS NOT NULL ORDER BY id DESC LIMIT 1000",
            args![tenant.id],
        )
        .await
        .map_err(e)?;
    db.close().await;
    Ok(Seeded {
        form_key: form.key,
        known_phones: known.into_iter().filter_map(|(p,)| p).collect(),
        tenant: tenant.id,
        admin: admin.id,
        token,
        email,
        password,
        ids,
        hub,
        cn,
        initials: initials.to_lowercase(),
        digits,
    })
}

/// The shared pool's daily return pass over every generated lead: a company pool returning
/// what nobody changed for 30 days (most of them), timed as one set-based pass.
async fn pool_returns(label: &str, url: &str, s: &Seeded, scale: usize) -> anyhow::Result<String> {
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let db = Db::connect(url, 2).await.map_err(e)?;
    let ctx: Ctx = auth::ctx_for_user(&db, s.tenant, s.admin)
        .await
        .map_err(e)?;
    guanxi_sales::pools::create(
        &db,
        &ctx,
        serde_json::from_value(serde_json::json!({"name": "公海", "return_days": 30}))?,
    )
    .await
    .map_err(e)?;
    let at = guanxi_platform::time::now();
    let started = Instant::now();
    let mut tx = db.begin().await.map_err(e)?;
    let returned = guanxi_sales::pools::run_returns(&mut tx, s.tenant, at)
        .await
        .map_err(e)?;
    tx.commit().await.map_err(e)?;
    let secs = started.elapsed().as_secs_f64();
    db.close().await;
    Ok(format!(
        "{label}, {scale} leads: the pool's return pass moved {returned} leads (and wrote their events) in {secs:.1} s = {:.0} leads/s, set-based batches.",
        returned as f64 / secs
    ))
}

/// The benchmarks' six-stage pipeline (four open stages, won, lost).
async fn bench_pipeline(db: &Db, ctx: &Ctx) -> anyhow::Result<guanxi_sales::pipelines::Pipeline> {
    guanxi_sales::pipelines::create(
        db,
        ctx,
        serde_json::from_value(serde_json::json!({"name": "基准流程", "stages": [
            {"name": "接触"}, {"name": "需求"}, {"name": "报价", "category": "best_case"},
            {"name": "谈判", "category": "commit"}, {"name": "赢单", "category": "won"},
            {"name": "输单", "category": "lost"}
        ]}))?,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The deal board's first page (every column's count, sums and first 20 cards) over `scale`
/// open deals, beside its bare SQL (the same grouped sums and one keyset page a column, no
/// joins, scope or decoding into deals), each the mean of 30 runs after a warm-up.
async fn board(label: &str, url: &str, s: &Seeded, scale: usize) -> anyhow::Result<String> {
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let db = Db::connect(url, 2).await.map_err(e)?;
    let ctx: Ctx = auth::ctx_for_user(&db, s.tenant, s.admin)
        .await
        .map_err(e)?;
    let pipeline = bench_pipeline(&db, &ctx).await?;
    let started = Instant::now();
    guanxi_sales::demo::scale_deals(&db, &ctx, &pipeline, scale, 0.0, 7)
        .await
        .map_err(e)?;
    let seeded = started.elapsed().as_secs_f64();
    let filter = guanxi_sales::opportunities::BoardFilter::default();
    const RUNS: u32 = 30;
    guanxi_sales::opportunities::board(&db, &ctx, pipeline.id, &filter)
        .await
        .map_err(e)?;
    let t = Instant::now();
    for _ in 0..RUNS {
        guanxi_sales::opportunities::board(&db, &ctx, pipeline.id, &filter)
            .await
            .map_err(e)?;
    }
    let ours = t.elapsed().as_secs_f64() * 1000.0 / f64::from(RUNS);
    let bare = || async {
        let _: Vec<(Uuid, i64, i64, i64)> = db
            .fetch_all(
                "SELECT stage_id, COUNT(*), CAST(SUM(amount) AS BIGINT), CAST(SUM(amount * probability / 100) AS BIGINT)
                 FROM opportunities WHERE tenant_id = $1 AND pipeline_id = $2 AND deleted_at IS NULL GROUP BY stage_id",
                args![s.tenant, pipeline.id],
            )
            .await?;
        for st in &pipeline.stages {
            let _: Vec<(Uuid, String, i64)> = db
                .fetch_all(
                    "SELECT id, name, amount FROM opportunities WHERE tenant_id = $1 AND stage_id = $2
                       AND deleted_at IS NULL ORDER BY position, id LIMIT 21",
                    args![s.tenant, st.id],
                )
                .await?;
        }
        Ok::<(), guanxi_platform::Error>(())
    };
    bare().await.map_err(e)?;
    let t = Instant::now();
    for _ in 0..RUNS {
        bare().await.map_err(e)?;
    }
    let floor = t.elapsed().as_secs_f64() * 1000.0 / f64::from(RUNS);
    db.close().await;
    Ok(format!(
        "{label}, {scale} open deals over 4 open stages (generated in {seeded:.1} s): the board's first page (counts, sums, 20 cards a column) {ours:.1} ms, its bare SQL {floor:.1} ms; bare/board {:.0}%.",
        100.0 * floor / ours
    ))
}

/// The service desk over `n` generated tickets: the SLA evaluation of up to 20,000 open ones
/// (500 a transaction, as `sla_reevaluate` runs) beside reading each one's log and writing its
/// due time bare; then the queue's first page (open, due first, 50) and a search, each the mean
/// of 30 runs beside its bare SQL.
async fn service(
    label: &str,
    url: &str,
    s: &Seeded,
    n: usize,
    args: &BenchArgs,
) -> anyhow::Result<String> {
    use guanxi_service::tickets::{self, TicketFilter};
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let db = Db::connect(url, 2).await.map_err(e)?;
    let ctx: Ctx = auth::ctx_for_user(&db, s.tenant, s.admin)
        .await
        .map_err(e)?;
    eprintln!("{label}: generating {n} tickets");
    let started = Instant::now();
    let open = guanxi_service::demo::scale_tickets(&db, &ctx, n, 13)
        .await
        .map_err(e)?;
    db.analyze(true).await.map_err(e)?;
    let seeded = started.elapsed().as_secs_f64();
    guanxi_service::sla::create(
        &db,
        &ctx,
        serde_json::from_value(
            serde_json::json!({"name": "bench", "first_response_minutes": 240,
            "next_response_minutes": 480, "resolution_minutes": 2400}),
        )
        .map_err(|x| anyhow::anyhow!("{x}"))?,
    )
    .await
    .map_err(e)?;
    let k = open.len().min(20_000);
    let at = guanxi_platform::time::now();
    let t = Instant::now();
    for chunk in open[..k].chunks(500) {
        let mut tx = db.begin().await.map_err(e)?;
        guanxi_service::sla::evaluate_many(&mut tx, &ctx, chunk, at)
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)?;
    }
    let ours = k as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for chunk in open[..k].chunks(500) {
        let mut tx = db.begin().await.map_err(e)?;
        for id in chunk {
            let _: Vec<(String, Option<String>, chrono::DateTime<chrono::Utc>)> = tx
                .fetch_all(
                    "SELECT kind, to_value, at FROM ticket_events WHERE tenant_id = $1 AND ticket_id = $2 ORDER BY at, id",
                    args![s.tenant, *id],
                )
                .await
                .map_err(e)?;
            tx.execute(
                "UPDATE tickets SET sla_due_key = sla_due_key WHERE tenant_id = $1 AND id = $2",
                args![s.tenant, *id],
            )
            .await
            .map_err(e)?;
        }
        tx.commit().await.map_err(e)?;
    }
    let bare = k as f64 / t.elapsed().as_secs_f64();
    const RUNS: u32 = 30;
    let queue = TicketFilter {
        status: Some("active".into()),
        sort: Some("due".into()),
        limit: Some(50),
        ..Default::default()
    };
    let page = timed(RUNS, || async {
        tickets::list(&db, &ctx, &queue).await.map(|_| ())
    })
    .await?;
    let page_bare = timed(RUNS, || async {
        let _: Vec<(Uuid, String, String)> = db
            .fetch_all(
                "SELECT id, number, subject FROM tickets WHERE tenant_id = $1 AND deleted_at IS NULL
                   AND status NOT IN ('resolved', 'closed') ORDER BY sla_due_key, id LIMIT 51",
                args![s.tenant],
            )
            .await?;
        Ok(())
    })
    .await?;
    let search = TicketFilter {
        q: Some("设备".into()),
        limit: Some(50),
        ..Default::default()
    };
    let found = timed(RUNS, || async {
        tickets::list(&db, &ctx, &search).await.map(|_| ())
    })
    .await?;
    let found_bare = timed(RUNS, || async {
        let _: Vec<(Uuid,)> = db
            .fetch_all(
                "SELECT id FROM tickets WHERE tenant_id = $1 AND deleted_at IS NULL
                   AND search LIKE '%设备%' ORDER BY id DESC LIMIT 51",
                args![s.tenant],
            )
            .await?;
        Ok(())
    })
    .await?;
    // A calendar change: every open ticket's clocks counted again, through the job queue as
    // the worker runs it (batches of 500 a job).
    let t = Instant::now();
    guanxi_platform::calendars::create(
        &db,
        &ctx,
        guanxi_platform::calendars::CalendarInput {
            name: Some("bench".into()),
            is_default: Some(true),
            ..Default::default()
        },
    )
    .await
    .map_err(e)?;
    let handlers = guanxi_web::job_handlers(&Config::resolve(&[]));
    let mailer = guanxi_platform::mail::Mailer::new(None, "bench@guanxi.test")?;
    loop {
        let r = guanxi_platform::jobs::run_due(
            &db,
            &mailer,
            &handlers,
            guanxi_platform::time::now(),
            100,
        )
        .await
        .map_err(e)?;
        if r.done + r.dead + r.overtaken == 0 {
            break;
        }
    }
    let reeval = open.len() as f64 / t.elapsed().as_secs_f64();
    let mail = match &args.imap {
        Some(line) => ingestion(&db, &ctx, line, args.mails).await?,
        None => String::new(),
    };
    db.close().await;
    Ok(format!(
        "{label}, {n} tickets, {} open (generated in {seeded:.1} s): re-evaluation of every open ticket \
         after a calendar change {reeval:.0} tickets/s; SLA evaluation {ours:.0} tickets/s \
         (bare read of the log and write {bare:.0}/s, {:.0}%); the queue's first page (open, due first) \
         {page:.1} ms beside {page_bare:.1} ms bare ({:.0}%); a search for 设备 {found:.1} ms beside a \
         substring scan {found_bare:.1} ms.{mail}",
        open.len(),
        100.0 * ours / bare,
        100.0 * page_bare / page
    ))
}

/// The mean milliseconds of `runs` runs of `f` after one warm-up.
async fn timed<F, Fut>(runs: u32, mut f: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = guanxi_platform::error::Result<()>>,
{
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    f().await.map_err(e)?;
    let t = Instant::now();
    for _ in 0..runs {
        f().await.map_err(e)?;
    }
    Ok(t.elapsed().as_secs_f64() * 1000.0 / f64::from(runs))
}

/// The sales analytics over `n` generated deals (a third closed today, two in five of those
/// won; the rest open, expected over this quarter and the next), each timed in-process (mean
/// of 10 runs after a warm-up) beside its bare SQL — the same grouped read without joins for
/// names, scope or anything done with the rows after.
async fn analytics(label: &str, url: &str, s: &Seeded, n: usize) -> anyhow::Result<String> {
    use guanxi_sales::{forecast, funnel};
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let db = Db::connect(url, 2).await.map_err(e)?;
    let ctx: Ctx = auth::ctx_for_user(&db, s.tenant, s.admin)
        .await
        .map_err(e)?;
    let pipeline = bench_pipeline(&db, &ctx).await?;
    eprintln!("{label}: generating {n} deals");
    let started = Instant::now();
    guanxi_sales::demo::scale_deals(&db, &ctx, &pipeline, n, 1.0 / 3.0, 11)
        .await
        .map_err(e)?;
    // A settled table, as autovacuum leaves it: statistics, and on PostgreSQL the visibility
    // map that lets an index answer alone.
    if db.backend() == guanxi_platform::db::Backend::Postgres {
        db.execute("VACUUM ANALYZE opportunities", args![])
            .await
            .map_err(e)?;
    } else {
        db.analyze(true).await.map_err(e)?;
    }
    let seeded = started.elapsed().as_secs_f64();
    const RUNS: u32 = 10;
    let fq = forecast::ForecastQuery::default();
    let f = forecast::forecast(&db, &ctx, &fq).await.map_err(e)?;
    let (from, until) = (f.from.clone(), f.until.clone());
    let at = |d: &str| -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
        Ok(chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")?
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            - chrono::Duration::hours(8))
    };
    let (from_t, until_t) = (at(&from)?, at(&until)?);
    let board = timed(RUNS, || async {
        guanxi_sales::opportunities::board(&db, &ctx, pipeline.id, &Default::default())
            .await
            .map(|_| ())
    })
    .await?;
    let fc = timed(RUNS, || async {
        forecast::forecast(&db, &ctx, &fq).await.map(|_| ())
    })
    .await?;
    let fc_bare = timed(RUNS, || async {
        let _: Vec<(Uuid, Uuid, i64, i64)> = db
            .fetch_all(
                "SELECT owner_id, stage_id, CAST(SUM(amount) AS BIGINT), CAST(SUM(amount * probability / 100) AS BIGINT)
                 FROM opportunities WHERE tenant_id = $1 AND deleted_at IS NULL AND currency = 'CNY'
                   AND ((status = 'open' AND expected_close >= $2 AND expected_close < $3)
                     OR (status = 'won' AND closed_at >= $4 AND closed_at < $5))
                 GROUP BY owner_id, stage_id",
                args![s.tenant, from.as_str(), until.as_str(), from_t, until_t],
            )
            .await?;
        Ok(())
    })
    .await?;
    let fq2 = funnel::FunnelQuery::default();
    let fun = timed(RUNS, || async {
        funnel::funnel(&db, &ctx, pipeline.id, &fq2)
            .await
            .map(|_| ())
    })
    .await?;
    let fun_bare = timed(RUNS, || async {
        let _: Vec<(Option<Uuid>, String, i64, i64)> = db
            .fetch_all(
                "SELECT reached_stage_id, status, COUNT(*), CAST(SUM(amount) AS BIGINT)
                 FROM opportunities WHERE tenant_id = $1 AND pipeline_id = $2 AND deleted_at IS NULL
                   AND created_at >= $3 AND created_at < $4
                 GROUP BY reached_stage_id, status",
                args![s.tenant, pipeline.id, from_t, until_t],
            )
            .await?;
        Ok(())
    })
    .await?;
    let pq = forecast::PerformanceQuery::default();
    let perf = timed(RUNS, || async {
        forecast::performance(&db, &ctx, &pq).await.map(|_| ())
    })
    .await?;
    let perf_bare = timed(RUNS, || async {
        let _: Vec<(Uuid, String, i64, i64)> = db
            .fetch_all(
                "SELECT owner_id, status, COUNT(*), CAST(SUM(amount) AS BIGINT)
                 FROM opportunities WHERE tenant_id = $1 AND deleted_at IS NULL
                   AND status IN ('won', 'lost') AND closed_at >= $2 AND closed_at < $3
                 GROUP BY owner_id, status",
                args![s.tenant, from_t, until_t],
            )
            .await?;
        Ok(())
    })
    .await?;
    db.close().await;
    let pct = |bare: f64, ours: f64| 100.0 * bare / ours;
    Ok(format!(
        "{label}, {n} deals (generated in {seeded:.1} s): board first page {board:.1} ms; \
         forecast {fc:.1} ms, bare {fc_bare:.1} ms ({:.0}%); funnel {fun:.1} ms, bare {fun_bare:.1} ms ({:.0}%); \
         rep performance {perf:.1} ms, bare {perf_bare:.1} ms ({:.0}%).",
        pct(fc_bare, fc),
        pct(fun_bare, fun),
        pct(perf_bare, perf)
    ))
}

/// Customer value over a generated history (nine in ten contacts buying for themselves, the
/// rest for their company), each step timed in-process beside the bare
/// aggregate it starts from (per customer: orders, revenue and the latest purchase over the
/// same year of purchases — no joins for names or scope, nothing done with the rows after):
/// ABC and RFM (mean of 3 runs after a warm-up), a 4V evaluation queued and worked to the end
/// (once: it writes every customer's scores and, the first time, their timeline events), a
/// lifetime-value fit on the contacts (once), the management dashboard (this quarter and all
/// time) and a report of revenue by province beside its hand-written SQL.
async fn value(label: &str, url: &str, s: &Seeded, scale: usize) -> anyhow::Result<String> {
    use guanxi_analytics::{abc, clv, dashboards, facts::Party, grading_runs, reports, rfm};
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let db = Db::connect(url, 4).await.map_err(e)?;
    let ctx: Ctx = auth::ctx_for_user(&db, s.tenant, s.admin)
        .await
        .map_err(e)?;
    // Nine in ten generated contacts become consumers, of no company: their orders are
    // placed for no account (a contact's purchases, graded as the contact's); the tenth's stay
    // their company's (an account's).
    for sql in [
        "UPDATE orders SET account_id = NULL WHERE tenant_id = $1 AND contact_id IN
           (SELECT id FROM contacts WHERE tenant_id = $1 AND phone_e164 NOT LIKE '%9')",
        "UPDATE contacts SET account_id = NULL WHERE tenant_id = $1 AND phone_e164 NOT LIKE '%9'",
    ] {
        db.execute(sql, args![s.tenant]).await.map_err(e)?;
    }
    if db.backend() == guanxi_platform::db::Backend::Postgres {
        db.execute("VACUUM ANALYZE", args![]).await.map_err(e)?;
    } else {
        db.analyze(true).await.map_err(e)?;
    }
    const RUNS: u32 = 3;
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let from = today - chrono::Duration::days(364);
    let (from_t, until_t) = (
        from.and_time(chrono::NaiveTime::MIN).and_utc() - chrono::Duration::hours(8),
        (today + chrono::Duration::days(1))
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            - chrono::Duration::hours(8),
    );
    let orders: i64 = db
        .scalar(
            "SELECT COUNT(*) FROM orders WHERE tenant_id = $1",
            args![s.tenant],
        )
        .await
        .map_err(e)?;
    let lines: i64 = db
        .scalar(
            "SELECT COUNT(*) FROM order_lines WHERE tenant_id = $1",
            args![s.tenant],
        )
        .await
        .map_err(e)?;
    let mut out = format!(
        "{label}, customer value over {scale} contacts, {} accounts, {orders} orders, {lines} lines (in-process, ms):",
        scale / 10
    );
    for party in [Party::Contacts, Party::Accounts] {
        let col = match party {
            Party::Contacts => "contact_id",
            Party::Accounts => "account_id",
        };
        let bare = timed(RUNS, || async {
            let _: Vec<(Option<Uuid>, i64, i64, i64)> = db
                .fetch_all(
                    &format!(
                        "SELECT {col}, COUNT(*), CAST(SUM(total) AS BIGINT),
                           CAST(CASE WHEN MAX(ordered_at) IS NULL THEN 0 ELSE 1 END AS BIGINT)
                         FROM orders WHERE tenant_id = $1 AND deleted_at IS NULL AND currency = 'CNY'
                           AND status NOT IN ('draft', 'cancelled', 'returned')
                           AND ordered_at >= $2 AND ordered_at < $3 AND {col} IS NOT NULL
                         GROUP BY {col}"
                    ),
                    args![s.tenant, from_t, until_t],
                )
                .await?;
            Ok(())
        })
        .await?;
        // The 4V default scheme also reads the period's lines (margin, product breadth): the
        // bare aggregate over those rows too.
        let bare_lines = timed(RUNS, || async {
            let _: Vec<(Option<Uuid>, i64, i64)> = db
                .fetch_all(
                    &format!(
                        "SELECT o.{col}, CAST(SUM(l.amount) AS BIGINT), COUNT(*)
                         FROM orders o JOIN order_lines l ON l.tenant_id = o.tenant_id AND l.order_id = o.id
                         WHERE o.tenant_id = $1 AND o.deleted_at IS NULL AND o.currency = 'CNY'
                           AND o.status NOT IN ('draft', 'cancelled', 'returned')
                           AND o.ordered_at >= $2 AND o.ordered_at < $3 AND o.{col} IS NOT NULL
                         GROUP BY o.{col}"
                    ),
                    args![s.tenant, from_t, until_t],
                )
                .await?;
            Ok(())
        })
        .await?;
        let aq = abc::AbcQuery {
            party: Some(party),
            from: Some(from),
            to: Some(today),
            ..Default::default()
        };
        let abc_ms = timed(RUNS, || async {
            abc::abc(&db, &ctx, &aq).await.map(|_| ())
        })
        .await?;
        let rq = rfm::RfmQuery {
            party: Some(party),
            from: Some(from),
            to: Some(today),
            ..Default::default()
        };
        let rfm_ms = timed(RUNS, || async {
            rfm::rfm(&db, &ctx, &rq).await.map(|_| ())
        })
        .await?;
        let started = Instant::now();
        let (run, _) = grading_runs::create(
            &db,
            &ctx,
            grading_runs::GradingRunInput {
                party: Some(party),
                as_of: Some(today),
            },
        )
        .await
        .map_err(e)?;
        loop {
            let r = grading_runs::get(&db, &ctx, run.id).await.map_err(e)?;
            match r.status.as_str() {
                "done" => break,
                "failed" => bail!("the 4V evaluation failed: {:?}", r.error),
                _ => {
                    grading_runs::work(&db).await.map_err(e)?;
                }
            }
        }
        let grade_ms = started.elapsed().as_secs_f64() * 1000.0;
        out.push_str(&format!(
            " {party:?}: bare aggregate {bare:.0} (with the lines {bare_lines:.0}); ABC {abc_ms:.0} ({:.1}×); RFM {rfm_ms:.0} ({:.1}×); 4V evaluation {grade_ms:.0} ({:.1}×, {:.1}× the aggregate with the lines).",
            abc_ms / bare,
            rfm_ms / bare,
            grade_ms / bare,
            grade_ms / bare_lines
        ));
    }
    let started = Instant::now();
    let model = clv::create(
        &db,
        &ctx,
        clv::ModelInput {
            party: Some(Party::Contacts),
            calibration_from: today - chrono::Duration::days(729),
            calibration_to: today - chrono::Duration::days(183),
            holdout_to: Some(today),
            ..Default::default()
        },
    )
    .await
    .map_err(e)?;
    out.push_str(&format!(
        " Lifetime-value fit (contacts, 78-week calibration, 26-week holdout): {:.0} ({}).",
        started.elapsed().as_secs_f64() * 1000.0,
        model.status
    ));
    for (name, f) in [
        ("this quarter", dashboards::DashboardFilters::default()),
        (
            "all time",
            dashboards::DashboardFilters {
                period: Some(dashboards::PeriodPreset::All),
                ..Default::default()
            },
        ),
    ] {
        let ms = timed(RUNS, || async {
            dashboards::open(&db, &ctx, dashboards::MANAGEMENT, &f)
                .await
                .map(|_| ())
        })
        .await?;
        out.push_str(&format!(" Management dashboard, {name}: {ms:.0}."));
    }
    let spec: reports::Spec = serde_json::from_value(serde_json::json!({
        "entity": "orders", "group_by": [{"field": "province"}],
        "filters": [{"field": "status", "op": "in", "value": ["confirmed", "paid", "shipped", "completed"]}],
        "measures": [{"agg": "sum", "field": "total"}, {"agg": "count"}]}))?;
    let report_ms = timed(RUNS, || async {
        reports::run(&db, &ctx, &spec).await.map(|_| ())
    })
    .await?;
    let report_bare = timed(RUNS, || async {
        let _: Vec<(Option<String>, i64, i64)> = db
            .fetch_all(
                "SELECT COALESCE(a.province, c.province), CAST(SUM(o.total) AS BIGINT), COUNT(*)
                 FROM orders o LEFT JOIN accounts a ON a.tenant_id = o.tenant_id AND a.id = o.account_id
                   LEFT JOIN contacts c ON c.tenant_id = o.tenant_id AND c.id = o.contact_id
                 WHERE o.tenant_id = $1 AND o.deleted_at IS NULL AND o.currency = 'CNY'
                   AND o.status IN ('confirmed', 'paid', 'shipped', 'completed')
                 GROUP BY COALESCE(a.province, c.province)",
                args![s.tenant],
            )
            .await?;
        Ok(())
    })
    .await?;
    out.push_str(&format!(
        " Report, revenue by province: {report_ms:.0}, its hand-written SQL {report_bare:.0} ({:.1}×).",
        report_ms / report_bare
    ));
    db.close().await;
    Ok(out)
}

/// Starts the server or the floor on a free loopback port; returns once it listens.
async fn start(
    target: Target,
    url: &str,
    dir: &std::path::Path,
    floor_for: Option<&Seeded>,
) -> anyhow::Result<(Child, SocketAddr)> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut cmd = Command::new(std::env::current_exe()?);
    match target {
        Target::Server => cmd.args(["serve", "--workers", "false", "--log-format", "json"]),
        Target::Floor => cmd.arg("bench-floor"),
    };
    if let Some(s) = floor_for {
        cmd.arg("--tenant").arg(s.tenant.to_string());
    }
    cmd.arg("--listen")
        .arg(addr.to_string())
        .arg("--database-url")
        .arg(url)
        .arg("--data-dir")
        .arg(dir)
        .env("GUANXI_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("starting the measured process")?;
    wait_ready(&mut child).await?;
    Ok((child, addr))
}

/// Waits until the process prints that it is listening (an event, not a sleep).
async fn wait_ready(child: &mut Child) -> anyhow::Result<()> {
    let out = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(out).lines();
    while let Some(line) = lines.next_line().await? {
        if line.contains("is running at") || line.contains("floor listening") {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(());
        }
    }
    bail!("the measured process exited before listening")
}

/// A field of /proc/PID/status in MB (Linux).
fn rss_mb(pid: u32, field: &str) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc (the benchmark measures memory on Linux)")?;
    let kb: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("{field} missing from /proc/{pid}/status"))?;
    Ok(kb / 1024.0)
}

/// Percent-encodes a query value.
fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Passed as the "cookie" of a search path: ask the floor for the raw index query instead.
const RAW_INDEX: &str = "raw-index";

/// The `i`-th request of a path.
fn request(
    s: &Seeded,
    p: Path_,
    i: u64,
    cookie: Option<&str>,
) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
    let get = |uri: String| hyper::Request::get(uri);
    let b = match p {
        Path_::Healthz => get("/healthz".into()),
        Path_::Get => get(format!(
            "/api/v1/contacts/{}",
            s.ids[(i as usize) % s.ids.len()]
        )),
        Path_::List => get(format!(
            "/api/v1/contacts?province={}&sort=-updated_at&limit=50",
            enc("浙江省")
        )),
        Path_::SearchCn if cookie == Some(RAW_INDEX) => {
            get(format!("/floor/index?q={}", enc(&s.cn)))
        }
        Path_::SearchInitials if cookie == Some(RAW_INDEX) => {
            get(format!("/floor/index?q={}", s.initials))
        }
        Path_::SearchPhone if cookie == Some(RAW_INDEX) => {
            get(format!("/floor/index?q={}", s.digits))
        }
        Path_::SearchCn => get(format!("/api/v1/contacts?q={}&limit=50", enc(&s.cn))),
        Path_::SearchInitials => get(format!("/api/v1/contacts?q={}&limit=50", s.initials)),
        Path_::SearchPhone => get(format!("/api/v1/contacts?q={}&limit=50", s.digits)),
        Path_::Page360 => get(format!("/customers/contacts/{}", s.hub)),
        Path_::LeadList => get(format!(
            "/api/v1/leads?province={}&sort=-score&limit=50",
            enc("浙江省")
        )),
        Path_::LeadSearch => get(format!("/api/v1/leads?q={}&limit=50", enc(&s.cn))),
        Path_::FormPost => {
            // Half new people, half contacts already known (matched, recorded as a touch).
            // Numbered across runs, not by the run's `i`: a post the warm-up or the run before
            // sent is a repeat within the intake's window, answered without a write.
            let i = FORM_POSTS.fetch_add(1, Ordering::Relaxed);
            let phone = if i % 2 == 1 && !s.known_phones.is_empty() {
                s.known_phones[(i as usize / 2) % s.known_phones.len()].clone()
            } else {
                format!("136{:08}", i % 100_000_000)
            };
            let body = serde_json::json!({
                "name": format!("表单访客 {i}"),
                "phone": phone,
                "notes": format!("第 {i} 次咨询"),
            });
            return Ok(
                hyper::Request::post(format!("/public/forms/{}", s.form_key))
                    .header(header::HOST, "bench")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))?,
            );
        }
        Path_::Create => {
            let body = serde_json::json!({
                "name": format!("压测联系人 {i}"),
                // Counting down from 139 9999 9999: no run of zeros, so the contacts the
                // floor's creates add before the product's searches never match the phone
                // term (`00015`): both search the same data.
                "phone": format!("139{:08}", 99_999_999 - i % 100_000_000),
                "province": "浙江省",
            });
            return Ok(hyper::Request::post("/api/v1/contacts")
                .header(header::HOST, "bench")
                .header(header::AUTHORIZATION, format!("Bearer {}", s.token))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.to_string())))?);
        }
    };
    let b = b.header(header::HOST, "bench");
    let b = match (p, cookie) {
        (Path_::Page360, Some(c)) if c != RAW_INDEX => b.header(header::COOKIE, c),
        _ => b.header(header::AUTHORIZATION, format!("Bearer {}", s.token)),
    };
    Ok(b.body(Full::new(Bytes::new()))?)
}

/// Signs in through the API for the pages; returns the `Cookie` header value.
async fn sign_in(addr: SocketAddr, s: &Seeded) -> anyhow::Result<String> {
    let body = serde_json::json!({"email": s.email, "password": s.password}).to_string();
    let req = hyper::Request::post("/api/v1/sessions")
        .header(header::HOST, "bench")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let (mut send, conn) = connect(addr).await?;
    tokio::spawn(conn);
    let resp = send.send_request(req).await?;
    if resp.status() != StatusCode::CREATED {
        bail!("signing in answered {}", resp.status());
    }
    let cookie = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("gx_session="))
        .and_then(|v| v.split(';').next())
        .context("no session cookie")?
        .to_owned();
    Ok(cookie)
}

type Conn = (
    hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    hyper::client::conn::http1::Connection<TokioIo<tokio::net::TcpStream>, Full<Bytes>>,
);

async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?)
}

/// Sends a warm-up of a tenth, then `total` requests of path `p` over `conns` keep-alive
/// connections; every answer must be 200 (201 for a create).
async fn load(
    addr: SocketAddr,
    s: &Arc<Seeded>,
    p: Path_,
    conns: usize,
    total: u64,
    cookie: Option<&str>,
) -> anyhow::Result<Lat> {
    run_load(addr, s, p, conns, (total / 10).max(1), cookie).await?;
    run_load(addr, s, p, conns, total, cookie).await
}

/// Form posts sent by this process, so every post is a new arrival.
static FORM_POSTS: AtomicU64 = AtomicU64::new(0);

async fn run_load(
    addr: SocketAddr,
    s: &Arc<Seeded>,
    p: Path_,
    conns: usize,
    total: u64,
    cookie: Option<&str>,
) -> anyhow::Result<Lat> {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (next, s, cookie) = (next.clone(), s.clone(), cookie.map(str::to_owned));
        tasks.push(tokio::spawn(async move {
            let (mut send, conn) = connect(addr).await?;
            tokio::spawn(conn);
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let req = request(&s, p, i, cookie.as_deref())?;
                let t = Instant::now();
                let resp = send.send_request(req).await?;
                let status = resp.status();
                resp.into_body().collect().await?;
                if !(status == StatusCode::OK || status == StatusCode::CREATED) {
                    bail!("{p:?} answered {status}");
                }
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all: Vec<Duration> = Vec::with_capacity(total as usize);
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    Ok(Lat {
        rps: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    })
}

/// Downloads the whole contact export; returns its size in bytes.
async fn export(addr: SocketAddr, s: &Seeded) -> anyhow::Result<u64> {
    let (mut send, conn) = connect(addr).await?;
    tokio::spawn(conn);
    let req = hyper::Request::get("/api/v1/contacts/export.csv")
        .header(header::HOST, "bench")
        .header(header::AUTHORIZATION, format!("Bearer {}", s.token))
        .body(Full::new(Bytes::new()))?;
    let resp = send.send_request(req).await?;
    if resp.status() != StatusCode::OK {
        bail!("export answered {}", resp.status());
    }
    let mut body = resp.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            n += data.len() as u64;
        }
    }
    Ok(n)
}

/// The generated contacts as an import file (name, phone, email, province, city, title), read
/// back a page at a time.
/// Writes the generated `kind` as an import file: every contact (name, phone, email, province,
/// city, title), every account (name, industry, province, city, phone), or the first
/// `scale / 2` orders of contacts, a row per line (number, time, the contact's name, product,
/// quantity, unit price). Returns the rows (orders: the orders).
async fn write_csv(
    url: &str,
    s: &Seeded,
    kind: &str,
    scale: usize,
    file: &std::path::Path,
) -> anyhow::Result<u64> {
    use std::io::Write;
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let db = Db::connect(url, 1).await.map_err(e)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(file)?);
    let (header, sql) = match kind {
        "contacts" => (
            "姓名,手机,邮箱,省,市,职位",
            "SELECT id, name, phone, email, province, city, title FROM contacts
             WHERE tenant_id = $1 AND id > $2 AND name NOT LIKE '压测%' ORDER BY id LIMIT 5000",
        ),
        "accounts" => (
            "公司名称,行业,省份,城市,电话",
            "SELECT id, name, industry, province, city, phone, NULL FROM accounts
             WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT 5000",
        ),
        _ => (
            "订单号,下单时间,联系人,商品,数量,单价",
            "SELECT o.id, o.number, c.name, o.ordered_at FROM orders o
             JOIN contacts c ON c.tenant_id = o.tenant_id AND c.id = o.contact_id
             WHERE o.tenant_id = $1 AND o.id > $2 ORDER BY o.id LIMIT 5000",
        ),
    };
    writeln!(out, "{header}")?;
    let mut after = Uuid::nil();
    let mut n = 0u64;
    let wanted = if kind == "orders" {
        scale as u64 / 2
    } else {
        u64::MAX
    };
    type R = (
        Uuid,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let clean = |c: &Option<String>| c.clone().unwrap_or_default().replace([',', '"', '\n'], " ");
    'pages: loop {
        if kind != "orders" {
            let rows: Vec<R> = db.fetch_all(sql, args![s.tenant, after]).await.map_err(e)?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            for (_, name, a, b, c, d, f) in &rows {
                let cells = [
                    Some(name.clone()),
                    a.clone(),
                    b.clone(),
                    c.clone(),
                    d.clone(),
                ];
                let mut line: Vec<String> = cells.iter().map(clean).collect();
                if kind == "contacts" {
                    line.push(clean(f));
                }
                writeln!(out, "{}", line.join(","))?;
                n += 1;
            }
            continue;
        }
        let rows: Vec<(Uuid, String, String, chrono::DateTime<chrono::Utc>)> =
            db.fetch_all(sql, args![s.tenant, after]).await.map_err(e)?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
        let mut q = Sql::new(
            "SELECT order_id, name, quantity, unit_price FROM order_lines WHERE tenant_id = ",
        );
        q.bind(s.tenant)
            .push(" AND order_id IN ")
            .bind_list(ids.iter().copied())
            .push(" ORDER BY order_id, line_no");
        let lines: Vec<(Uuid, String, i64, i64)> = db.fetch_sql(q).await.map_err(e)?;
        let mut by_order: std::collections::HashMap<Uuid, Vec<(String, i64, i64)>> =
            std::collections::HashMap::new();
        for (id, name, qty, price) in lines {
            by_order.entry(id).or_default().push((name, qty, price));
        }
        for (id, number, contact, at) in &rows {
            if n >= wanted {
                break 'pages;
            }
            for (product, qty, price) in by_order.get(id).into_iter().flatten() {
                writeln!(
                    out,
                    "{},{},{},{},{qty},{}.{:02}",
                    clean(&Some(number.clone())),
                    at.to_rfc3339(),
                    clean(&Some(contact.clone())),
                    clean(&Some(product.clone())),
                    price / 100,
                    price % 100
                )?;
            }
            n += 1;
        }
    }
    out.flush()?;
    db.close().await;
    Ok(n)
}

/// Runs `guanxi import <kind>` (or the floor) on `file` into `tenant` (a new one when `None`);
/// returns seconds, the process's peak RSS in MB (its `VmHWM`, read until it exits) and the
/// tenant.
async fn import_run(
    url: &str,
    dir: &std::path::Path,
    file: &std::path::Path,
    kind: &str,
    floor: bool,
    tenant: Option<Uuid>,
) -> anyhow::Result<(f64, f64, Uuid)> {
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let tenant = match tenant {
        Some(t) => t,
        None => {
            let db = Db::connect(url, 1).await.map_err(e)?;
            let (tenant, _) = tenants::create(
                &db,
                NewTenant {
                    name: if floor { "Floor import" } else { "Import" }.into(),
                    admin_email: "import@bench.test".into(),
                    admin_name: None,
                    admin_password: secret::random_secret(),
                    locale: None,
                },
            )
            .await
            .map_err(e)?;
            db.close().await;
            tenant.id
        }
    };
    let mut cmd = Command::new(std::env::current_exe()?);
    if floor {
        cmd.args(["bench-floor-import", "--kind", kind]);
    } else {
        cmd.args(["import", kind]);
    }
    cmd.arg(file)
        .arg("--tenant")
        .arg(tenant.to_string())
        .arg("--database-url")
        .arg(url)
        .arg("--data-dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("import.err"))?)
        .kill_on_drop(true);
    let t = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id().context("import exited")?;
    let mut peak = 0.0f64;
    let status = loop {
        if let Ok(mb) = rss_mb(pid, "VmHWM:") {
            peak = peak.max(mb);
        }
        tokio::select! {
            s = child.wait() => break s?,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    };
    let secs = t.elapsed().as_secs_f64();
    if !status.success() {
        let err = std::fs::read_to_string(dir.join("import.err")).unwrap_or_default();
        let err = err
            .rsplit(['\r', '\n'])
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        let what = if floor { "floor" } else { "import" };
        bail!("the {kind} {what} exited with {status}: {}", err.trim());
    }
    Ok((secs, peak, tenant))
}

/// The `q` quantile (nearest rank) of sorted durations, in milliseconds.
fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

async fn fresh_pg_database(base: &str) -> anyhow::Result<(String, String)> {
    let name = format!("gx_bench_{}", Uuid::now_v7().simple());
    let admin = Db::connect(base, 1).await?;
    admin
        .execute(&format!("CREATE DATABASE {name}"), vec![])
        .await?;
    admin.close().await;
    let (prefix, _) = base
        .rsplit_once('/')
        .context("the PostgreSQL URL needs a database path")?;
    Ok((format!("{prefix}/{name}"), name))
}

async fn drop_pg_database(base: &str, name: &str) {
    if let Ok(admin) = Db::connect(base, 1).await {
        let _ = admin
            .execute(
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                vec![],
            )
            .await;
        admin.close().await;
    }
}

// ---- the floors --------------------------------------------------------------------------

struct Floor {
    db: Db,
    ctx: Ctx,
    token_sql: String,
    one_sql: String,
}

/// `guanxi bench-floor`: bare handlers for the contact paths that run the same statements as
/// the real ones — the token lookup, then the contact by id, the list statement built by
/// `contacts::list_sql` from the same query string, or one INSERT — through the same pool, and
/// nothing else: no middleware, permission check, audit, metrics or logging.
pub async fn floor(config: &Config, listen: SocketAddr, tenant: Uuid) -> anyhow::Result<()> {
    let db = crate::open_db(config).await?;
    let (admin,): (Uuid,) = db
        .fetch_one(
            "SELECT id FROM users WHERE tenant_id = $1 ORDER BY created_at LIMIT 1",
            args![tenant],
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ctx = auth::ctx_for_user(&db, tenant, admin)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    use guanxi_records::record::Record;
    let state = Arc::new(Floor {
        db,
        ctx,
        token_sql: auth::token_sql(),
        one_sql: Contact::select_one(),
    });
    let app = axum::Router::new()
        .route(
            "/api/v1/contacts",
            axum::routing::get(floor_list).post(floor_create),
        )
        .route("/api/v1/contacts/{id}", axum::routing::get(floor_get))
        .route("/floor/index", axum::routing::get(floor_index))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("floor listening on {listen}");
    axum::serve(listener, app).await?;
    Ok(())
}

/// The token lookup every API request runs; `None` answers 401.
async fn floor_auth(s: &Floor, headers: &HeaderMap) -> Result<(), Response> {
    let parsed = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer gx_"))
        .and_then(|v| v.split_once('_'))
        .and_then(|(t, secret)| Some((Uuid::try_parse(t).ok()?, secret)));
    let Some((tenant, secret)) = parsed else {
        return Err(StatusCode::UNAUTHORIZED.into_response());
    };
    let now = guanxi_platform::time::now();
    let found: Result<Option<(Uuid,)>, _> =
        s.db.fetch_optional(
            &s.token_sql,
            args![tenant, secret::digest(secret), now, true],
        )
        .await;
    match found {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(StatusCode::UNAUTHORIZED.into_response()),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

async fn floor_get(
    State(s): State<Arc<Floor>>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = floor_auth(&s, &headers).await {
        return r;
    }
    match s
        .db
        .fetch_optional::<Contact>(&s.one_sql, args![s.ctx.tenant_id, id])
        .await
    {
        Ok(Some(c)) => axum::Json(c).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn floor_list(
    State(s): State<Arc<Floor>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = floor_auth(&s, &headers).await {
        return r;
    }
    let Ok(f) = serde_urlencoded_lite(query.as_deref().unwrap_or("")) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Ok((q, _, _)) = contacts::list_sql(s.db.backend(), &s.ctx, &f, &[]) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    items(s.db.fetch_sql::<Contact>(q).await)
}

/// A floor's list answer: `{"items": […]}`, or 500.
fn items(rows: guanxi_platform::error::Result<Vec<Contact>>) -> Response {
    match rows {
        Ok(rows) => axum::Json(serde_json::json!({ "items": rows })).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The raw index query of a search term: the first 50 contacts whose index tokens hold the
/// term's (FTS5 `MATCH` on SQLite, GIN containment on PostgreSQL) — no confirmation, no
/// trash or permission condition, no order.
async fn floor_index(
    State(s): State<Arc<Floor>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = floor_auth(&s, &headers).await {
        return r;
    }
    let term = query
        .as_deref()
        .and_then(|q| q.strip_prefix("q="))
        .and_then(|t| percent_decode(t).ok())
        .unwrap_or_default();
    let grams = guanxi_records::normalize::query_grams(&term.to_lowercase());
    let select = s.one_sql.split(" WHERE ").next().unwrap_or_default();
    let (sql, arg) = match s.db.backend() {
        guanxi_platform::db::Backend::Sqlite => (
            format!("{select} WHERE c.tenant_id = $1 AND c.rowid IN (SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH $2) LIMIT 50"),
            grams.iter().map(|g| format!("\"{g}\"")).collect::<Vec<_>>().join(" "),
        ),
        guanxi_platform::db::Backend::Postgres => (
            format!("{select} WHERE c.tenant_id = $1 AND string_to_array(c.grams, ' ') @> string_to_array($2, ' ') LIMIT 50"),
            grams.join(" "),
        ),
    };
    items(
        s.db.fetch_all::<Contact>(&sql, args![s.ctx.tenant_id, arg])
            .await,
    )
}

/// The list filter from a query string (the floor's stand-in for the API's extractor).
fn serde_urlencoded_lite(q: &str) -> anyhow::Result<ContactFilter> {
    let mut m = serde_json::Map::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v)?;
        let v = match k {
            "limit" => serde_json::Value::from(v.parse::<i64>()?),
            _ => serde_json::Value::String(v),
        };
        m.insert(k.to_owned(), v);
    }
    Ok(serde_json::from_value(serde_json::Value::Object(m))?)
}

fn percent_decode(v: &str) -> anyhow::Result<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(
                    std::str::from_utf8(&b[i + 1..i + 3])?,
                    16,
                )?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8(out)?)
}

async fn floor_create(State(s): State<Arc<Floor>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = floor_auth(&s, &headers).await {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let name = v["name"].as_str().unwrap_or_default();
    let phone = v["phone"]
        .as_str()
        .and_then(|p| guanxi_records::normalize::phone(p, "CN").ok());
    match floor_insert(&s.db, &s.ctx, name, phone, v["province"].as_str()).await {
        Ok(id) => (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({ "id": id })),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The one INSERT of a contact, with no checks: the floor of creating and of importing.
async fn floor_insert(
    db: &Db,
    ctx: &Ctx,
    name: &str,
    phone: Option<guanxi_records::normalize::Phone>,
    province: Option<&str>,
) -> Result<Uuid, guanxi_platform::Error> {
    let mut q = Sql::new("");
    let id = guanxi_platform::time::new_id();
    floor_row(&mut q, ctx, id, name, phone, None, province, None, None);
    db.execute(&q.sql, q.args).await?;
    Ok(id)
}

const FLOOR_INSERT: &str = "INSERT INTO contacts (tenant_id, id, name, phone, phone_e164, email, province, city,
    title, country, owner_id, team_id, search, grams, created_at, updated_at, created_by, updated_by,
    version, custom, tags) VALUES ";

/// One row of a floor INSERT (the statement's head is written with the first row).
#[allow(clippy::too_many_arguments)]
fn floor_row(
    q: &mut Sql,
    ctx: &Ctx,
    id: Uuid,
    name: &str,
    phone: Option<guanxi_records::normalize::Phone>,
    email: Option<&str>,
    province: Option<&str>,
    city: Option<&str>,
    title: Option<&str>,
) {
    q.push(if q.sql.is_empty() { FLOOR_INSERT } else { ", " });
    let search = guanxi_records::record::search_of(
        name,
        phone.as_ref().map(|p| p.national.as_str()),
        phone.as_ref().map(|p| p.e164.as_str()),
        &[email],
    );
    let grams = guanxi_records::normalize::grams(&search);
    let t = guanxi_platform::time::now();
    let values: [Val; 21] = [
        ctx.tenant_id.into(),
        id.into(),
        name.into(),
        phone.as_ref().map(|p| p.raw.clone()).into(),
        phone.as_ref().map(|p| p.e164.clone()).into(),
        email.map(str::to_owned).into(),
        province.map(str::to_owned).into(),
        city.map(str::to_owned).into(),
        title.map(str::to_owned).into(),
        "CN".into(),
        ctx.user_id.into(),
        ctx.team_id.into(),
        search.into(),
        grams.into(),
        t.into(),
        t.into(),
        ctx.user_id.into(),
        ctx.user_id.into(),
        Val::I64(Some(1)),
        serde_json::json!({}).into(),
        serde_json::json!([]).into(),
    ];
    q.bind_list(values);
}

/// `guanxi bench-floor-import FILE --tenant ID`: the import's floor — the same file read by
/// the same table reader, each row's phone read and search text built (the columns need
/// them), and bulk-inserted 40 rows a statement, 4,000 a transaction, with no other check.
pub async fn floor_import(
    config: &Config,
    file: &std::path::Path,
    tenant: Uuid,
    kind: &str,
) -> anyhow::Result<()> {
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let db = crate::open_db(config).await?;
    let (admin,): (Uuid,) = db
        .fetch_one(
            "SELECT id FROM users WHERE tenant_id = $1 ORDER BY created_at LIMIT 1",
            args![tenant],
        )
        .await
        .map_err(e)?;
    let ctx = auth::ctx_for_user(&db, tenant, admin).await.map_err(e)?;
    let f = std::io::BufReader::new(std::fs::File::open(file)?);
    let table = guanxi_records::tables::open(guanxi_records::tables::Format::Csv, f).map_err(e)?;
    match kind {
        "contacts" => {}
        "accounts" => return floor_accounts(&db, &ctx, table).await,
        "orders" => return floor_orders(&db, &ctx, table).await,
        other => bail!("unknown kind {other}"),
    }
    let mut tx = db.begin().await.map_err(e)?;
    tx.bulk_load().await.map_err(e)?;
    let (mut q, mut in_stmt, mut in_tx, mut n) = (Sql::new(""), 0, 0, 0u64);
    for row in table.rows {
        let Ok((_, c)) = row else { continue };
        let cell = |i: usize| c.get(i).map(String::as_str).filter(|v| !v.is_empty());
        let phone = cell(1).and_then(|p| guanxi_records::normalize::phone(p, "CN").ok());
        floor_row(
            &mut q,
            &ctx,
            guanxi_platform::time::new_id(),
            cell(0).unwrap_or_default(),
            phone,
            cell(2),
            cell(3),
            cell(4),
            cell(5),
        );
        in_stmt += 1;
        n += 1;
        if in_stmt == 40 {
            let stmt = std::mem::take(&mut q);
            tx.execute(&stmt.sql, stmt.args).await.map_err(e)?;
            in_stmt = 0;
            in_tx += 40;
            if in_tx >= 4_000 {
                tx.commit().await.map_err(e)?;
                tx = db.begin().await.map_err(e)?;
                tx.bulk_load().await.map_err(e)?;
                in_tx = 0;
            }
        }
    }
    if in_stmt > 0 {
        tx.execute(&q.sql, q.args).await.map_err(e)?;
    }
    tx.commit().await.map_err(e)?;
    db.finish_bulk_load().await.map_err(e)?;
    db.close().await;
    println!("{n} rows inserted");
    Ok(())
}

/// Writes a floor's statements: each row's values, `per_statement` rows a statement and a
/// transaction every `per_tx` rows.
struct FloorWriter<'a> {
    db: &'a Db,
    /// Always there between calls.
    tx: Option<guanxi_platform::db::Tx>,
    head: &'static str,
    q: Sql,
    in_stmt: usize,
    in_tx: usize,
    per_statement: usize,
}

impl<'a> FloorWriter<'a> {
    async fn new(db: &'a Db, head: &'static str, per_statement: usize) -> anyhow::Result<Self> {
        let mut tx = db.begin().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        tx.bulk_load().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(FloorWriter {
            db,
            tx: Some(tx),
            head,
            q: Sql::new(head),
            in_stmt: 0,
            in_tx: 0,
            per_statement,
        })
    }

    async fn row<const N: usize>(&mut self, values: [Val; N]) -> anyhow::Result<()> {
        let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
        self.q
            .push(if self.in_stmt == 0 { "" } else { ", " })
            .bind_list(values);
        self.in_stmt += 1;
        if self.in_stmt == self.per_statement {
            self.flush().await?;
            self.in_tx += self.per_statement;
            if self.in_tx >= 4_000 {
                // Committed before the next begins: SQLite has one writer connection.
                if let Some(done) = self.tx.take() {
                    done.commit().await.map_err(e)?;
                }
                let mut tx = self.db.begin().await.map_err(e)?;
                tx.bulk_load().await.map_err(e)?;
                self.tx = Some(tx);
                self.in_tx = 0;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.in_stmt > 0 {
            let stmt = std::mem::replace(&mut self.q, Sql::new(self.head));
            self.tx_mut()?
                .execute(&stmt.sql, stmt.args)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            self.in_stmt = 0;
        }
        Ok(())
    }

    fn tx_mut(&mut self) -> anyhow::Result<&mut guanxi_platform::db::Tx> {
        self.tx.as_mut().context("no transaction")
    }

    async fn finish(mut self) -> anyhow::Result<()> {
        self.flush().await?;
        match self.tx.take() {
            Some(tx) => tx.commit().await.map_err(|e| anyhow::anyhow!("{e}")),
            None => Ok(()),
        }
    }
}

/// The accounts import's floor: name, industry, province, city and phone (read), with the
/// search text, bulk-inserted with no check.
async fn floor_accounts(
    db: &Db,
    ctx: &Ctx,
    table: guanxi_records::tables::Table,
) -> anyhow::Result<()> {
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let mut w = FloorWriter::new(
        db,
        "INSERT INTO accounts (tenant_id, id, name, industry, province, city, phone, phone_e164,
             country, owner_id, team_id, search, grams, created_at, updated_at, created_by,
             updated_by, custom, tags, held_since, followed_at, version) VALUES ",
        40,
    )
    .await?;
    let mut n = 0u64;
    for row in table.rows {
        let Ok((_, c)) = row else { continue };
        let cell = |i: usize| c.get(i).cloned().filter(|v| !v.is_empty());
        let name = cell(0).unwrap_or_default();
        let phone = cell(4).and_then(|p| guanxi_records::normalize::phone(&p, "CN").ok());
        let search = guanxi_records::record::search_of(
            &name,
            phone.as_ref().map(|p| p.national.as_str()),
            phone.as_ref().map(|p| p.e164.as_str()),
            &[],
        );
        let grams = guanxi_records::normalize::grams(&search);
        let t = guanxi_platform::time::now();
        w.row([
            ctx.tenant_id.into(),
            guanxi_platform::time::new_id().into(),
            name.into(),
            cell(1).into(),
            cell(2).into(),
            cell(3).into(),
            phone.as_ref().map(|p| p.raw.clone()).into(),
            phone.as_ref().map(|p| p.e164.clone()).into(),
            "CN".into(),
            ctx.user_id.into(),
            ctx.team_id.into(),
            search.into(),
            grams.into(),
            t.into(),
            t.into(),
            ctx.user_id.into(),
            ctx.user_id.into(),
            serde_json::json!({}).into(),
            serde_json::json!([]).into(),
            t.into(),
            t.into(),
            Val::I64(Some(1)),
        ])
        .await?;
        n += 1;
    }
    w.finish().await?;
    db.finish_bulk_load().await.map_err(e)?;
    db.close().await;
    println!("{n} accounts inserted");
    Ok(())
}

/// The orders import's floor: consecutive rows of one number are an order's lines; its
/// contact is the oldest of the name (every contact's id read once at the start); order and
/// lines bulk-inserted with no other check.
async fn floor_orders(
    db: &Db,
    ctx: &Ctx,
    table: guanxi_records::tables::Table,
) -> anyhow::Result<()> {
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let known: Vec<(String, Uuid)> = db
        .fetch_all(
            "SELECT name, id FROM contacts WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC",
            args![ctx.tenant_id],
        )
        .await
        .map_err(e)?;
    let contacts: std::collections::HashMap<String, Uuid> = known.into_iter().collect();
    let mut orders = FloorWriter::new(
        db,
        "INSERT INTO orders (tenant_id, id, number, channel, external_id, status, contact_id,
             ordered_at, currency, total, created_at, updated_at, created_by, updated_by, custom,
             version) VALUES ",
        40,
    )
    .await?;
    // Lines go in after their orders, in the orders' transactions: one writer each would be two
    // transactions, so lines are held until their orders' statement is written.
    let mut lines: Vec<[Val; 9]> = Vec::new();
    let mut n = 0u64;
    // The order being read: number, time, contact, and its lines (product, quantity, price).
    type Reading = (String, String, Option<Uuid>, Vec<(String, i64, i64)>);
    let mut current: Option<Reading> = None;
    let mut rows = table
        .rows
        .filter_map(|r| r.ok())
        .map(Some)
        .chain(std::iter::once(None));
    loop {
        let next = rows.next().flatten();
        let same = match (&current, &next) {
            (Some((number, ..)), Some((_, c))) => c.first() == Some(number),
            _ => false,
        };
        if !same {
            if let Some((number, at, contact, items)) = current.take() {
                let id = guanxi_platform::time::new_id();
                let total: i64 = items.iter().map(|(_, q, p)| q * p).sum();
                let when = chrono::DateTime::parse_from_rfc3339(&at)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or_else(|_| guanxi_platform::time::now());
                let t = guanxi_platform::time::now();
                for (i, (name, qty, price)) in items.into_iter().enumerate() {
                    lines.push([
                        ctx.tenant_id.into(),
                        id.into(),
                        Val::I64(Some(i as i64 + 1)),
                        name.into(),
                        Val::I64(Some(qty)),
                        Val::I64(Some(price)),
                        Val::I64(Some(0)),
                        Val::I64(Some(qty * price)),
                        None::<Uuid>.into(),
                    ]);
                }
                orders
                    .row([
                        ctx.tenant_id.into(),
                        id.into(),
                        number.as_str().into(),
                        "erp".into(),
                        number.into(),
                        "confirmed".into(),
                        contact.into(),
                        when.into(),
                        "CNY".into(),
                        Val::I64(Some(total)),
                        t.into(),
                        t.into(),
                        ctx.user_id.into(),
                        ctx.user_id.into(),
                        serde_json::json!({}).into(),
                        Val::I64(Some(1)),
                    ])
                    .await?;
                n += 1;
                if orders.in_stmt == 0 {
                    floor_lines(orders.tx_mut()?, std::mem::take(&mut lines)).await?;
                }
            }
        }
        let Some((_, c)) = next else { break };
        let cell = |i: usize| c.get(i).cloned().unwrap_or_default();
        let price = guanxi_records::normalize::money(&cell(5)).unwrap_or(0);
        let item = (cell(3), cell(4).parse().unwrap_or(1), price);
        match &mut current {
            Some((.., items)) if same => items.push(item),
            _ => {
                current = Some((
                    cell(0),
                    cell(1),
                    contacts.get(&cell(2)).copied(),
                    vec![item],
                ))
            }
        }
    }
    orders.flush().await?;
    floor_lines(orders.tx_mut()?, lines).await?;
    orders.finish().await?;
    db.finish_bulk_load().await.map_err(e)?;
    db.close().await;
    println!("{n} orders inserted");
    Ok(())
}

/// Order lines, 60 a statement.
async fn floor_lines(tx: &mut guanxi_platform::db::Tx, lines: Vec<[Val; 9]>) -> anyhow::Result<()> {
    for chunk in lines.chunks(60) {
        let mut q = Sql::new(
            "INSERT INTO order_lines (tenant_id, order_id, line_no, name, quantity, unit_price,
                 discount, amount, product_id) VALUES ",
        );
        for (i, values) in chunk.iter().enumerate() {
            q.push(if i == 0 { "" } else { ", " })
                .bind_list(values.iter().cloned());
        }
        tx.execute(&q.sql, q.args)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// Mail ingestion: `m` mails (one sender in ten writes twice, the second a reply) delivered to a
/// fresh IMAP user, then fetched by a support mailbox until none is left — stored, parsed,
/// threaded into tickets — beside downloading the same mails bare over one connection.
async fn ingestion(db: &Db, ctx: &Ctx, line: &str, m: usize) -> anyhow::Result<String> {
    use guanxi_service::imap::{self, Security, Server};
    let e = |e: guanxi_platform::Error| anyhow::anyhow!("{e}");
    let p: Vec<&str> = line.splitn(4, ':').collect();
    if p.len() != 4 {
        bail!("--imap is host:starttls-port:tls-port:ca.pem");
    }
    let ca = std::fs::read_to_string(p[3]).context("the CA of --imap")?;
    let user = format!("bench{}", Uuid::now_v7().simple());
    let server = Server {
        host: p[0].to_owned(),
        port: p[1].parse().context("the STARTTLS port of --imap")?,
        security: Security::StartTls,
        ca_pem: Some(ca.clone()),
        username: user.clone(),
        password: "secret".into(),
    };
    eprintln!("delivering {m} mails to {user}");
    let mut c = imap::connect(&server)
        .await
        .map_err(|x| anyhow::anyhow!("{x}"))?;
    for i in 0..m {
        let sender = i % (m / 10).max(1);
        let reply = if i >= m / 10 && i < m / 5 {
            format!("In-Reply-To: <m{sender}@bench.test>\r\n")
        } else {
            String::new()
        };
        let raw = format!(
            "From: 客户{sender} <c{sender}@bench.test>\r\nTo: {user}@support.test\r\n\
             Subject: =?UTF-8?B?6K6+5aSH5pWF6Zqc?= {i}\r\nMessage-ID: <m{i}@bench.test>\r\n{reply}\
             Date: Fri, 04 Dec 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n您好，设备在运行中报警，请安排检查。编号 {i}。\r\n"
        );
        c.append("INBOX", None, None, raw.as_bytes())
            .await
            .map_err(|x| anyhow::anyhow!("append: {x}"))?;
    }
    // The floor: every mail downloaded whole over one connection.
    let t = Instant::now();
    c.select("INBOX")
        .await
        .map_err(|x| anyhow::anyhow!("select: {x}"))?;
    let got = imap::bodies(&mut c, "1:*", false)
        .await
        .map_err(|x| anyhow::anyhow!("{x}"))?;
    let bare = got.len() as f64 / t.elapsed().as_secs_f64();
    imap::logout(c).await;
    let mailbox = guanxi_service::mailboxes::create(
        db,
        ctx,
        serde_json::from_value(serde_json::json!({
            "name": "bench", "address": format!("{user}@support.test"), "host": server.host,
            "port": server.port, "security": "starttls", "ca_pem": ca, "username": user,
            "password": "secret", "folder": "INBOX"}))?,
    )
    .await
    .map_err(e)?;
    let t = Instant::now();
    let mut stored = 0u64;
    for _ in 0..10_000 {
        let r = guanxi_service::mailboxes::work(db, Some((ctx.tenant_id, mailbox.id)), &|_| {})
            .await
            .map_err(e)?;
        stored += r.stored;
        if r.backlog == 0 && r.stored == 0 {
            break;
        }
    }
    let ours = stored as f64 / t.elapsed().as_secs_f64();
    Ok(format!(
        " Mail: {stored} of {m} mails fetched, stored and made tickets or replies at {ours:.0}/s \
         beside {bare:.0}/s downloaded bare ({:.0}%).",
        100.0 * ours / bare
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.50), 50.0);
        assert_eq!(percentile(&d, 0.99), 99.0);
        assert_eq!(percentile(&d[..1], 0.99), 1.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
