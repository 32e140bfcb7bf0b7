//! `guanxi bench`: the HTTP benchmark. For each database (a fresh SQLite file, and a fresh
//! PostgreSQL database when a server URL is given) it seeds a tenant, starts two processes of
//! this same binary — the real server (`guanxi serve`) and the floor (`guanxi bench-floor`, a
//! bare handler running only the same SQL) — and drives each with the same bounded number of
//! requests from a load generator over loopback, reporting req/s, p50/p99 and RSS side by side.
//! See docs/benchmarks.md.

use anyhow::{bail, Context};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use guanxi_platform::config::Config;
use guanxi_platform::tenants::{self, NewTenant};
use guanxi_platform::{api_tokens, args, auth, migrate, secret, users, Ctx, Db};
use http_body_util::{BodyExt, Empty};
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
    /// Measured requests per target (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 20_000)]
    pub requests: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Users seeded in the tenant (the requests cycle through them).
    #[arg(long, default_value_t = 1_000)]
    pub users: usize,
    /// A PostgreSQL server to measure too; a fresh database is created on it and dropped after.
    #[arg(long, env = "GUANXI_BENCH_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,
}

/// One measured run of one target.
#[derive(Debug, Clone, Copy)]
struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    idle_rss_mb: f64,
    peak_rss_mb: f64,
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Server,
    Floor,
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.requests == 0 || args.connections == 0 || args.users == 0 {
        bail!("--requests, --connections and --users must be at least 1");
    }
    let dir = std::env::temp_dir().join(format!("guanxi-bench-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    let sqlite = dir.join("bench.db").to_string_lossy().into_owned();
    let result = measure_backend("SQLite", &sqlite, &dir, args).await;
    rows.push(("SQLite", result));
    match &args.postgres_url {
        Some(base) => {
            let (url, name) = fresh_pg_database(base).await?;
            let result = measure_backend("PostgreSQL", &url, &dir, args).await;
            drop_pg_database(base, &name).await;
            rows.push(("PostgreSQL", result));
        }
        None => eprintln!("no --postgres-url (GUANXI_BENCH_POSTGRES_URL): PostgreSQL not measured"),
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "\nGET /api/v1/users/{{id}} with a bearer token, {} connections, {} requests per target\n",
        args.connections, args.requests
    );
    println!("| database | target | req/s | p50 ms | p99 ms | idle RSS MB | peak RSS MB | server/floor req/s |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (db, r) in &rows {
        let (server, floor) = r.as_ref().map_err(|e| anyhow::anyhow!("{db}: {e:#}"))?;
        for (name, x) in [("floor", floor), ("guanxi", server)] {
            let ratio = if name == "guanxi" {
                format!("{:.0}%", 100.0 * server.rps / floor.rps)
            } else {
                String::new()
            };
            println!(
                "| {db} | {name} | {:.0} | {:.2} | {:.2} | {:.1} | {:.1} | {ratio} |",
                x.rps, x.p50_ms, x.p99_ms, x.idle_rss_mb, x.peak_rss_mb
            );
        }
    }
    Ok(())
}

async fn measure_backend(
    label: &str,
    url: &str,
    dir: &std::path::Path,
    args: &BenchArgs,
) -> anyhow::Result<(Run, Run)> {
    eprintln!("{label}: seeding {} users", args.users);
    let (token, ids) = seed(url, args.users).await?;
    let ids = Arc::new(ids);
    // The floor first, then the server, each in a fresh process with the same warm-up.
    let floor = measure(Target::Floor, url, dir, &token, &ids, args).await?;
    let server = measure(Target::Server, url, dir, &token, &ids, args).await?;
    Ok((server, floor))
}

/// A tenant with `n` users and an admin API token; returns the token and the user ids.
async fn seed(url: &str, n: usize) -> anyhow::Result<(String, Vec<Uuid>)> {
    let db = Db::connect(url, 4).await?;
    migrate::run(&db, guanxi_web::MIGRATIONS).await?;
    let (tenant, admin) = tenants::create(
        &db,
        NewTenant {
            name: "Bench 基准".into(),
            admin_email: "bench@bench.test".into(),
            admin_name: Some("Bench".into()),
            admin_password: secret::random_secret(),
            locale: None,
        },
    )
    .await?;
    let ctx: Ctx = auth::ctx_for_user(&db, tenant.id, admin.id).await?;
    let (sales,): (Uuid,) = db
        .fetch_one(
            "SELECT id FROM roles WHERE tenant_id = $1 AND key = $2",
            args![tenant.id, "sales"],
        )
        .await?;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let u = users::create(
            &db,
            &ctx,
            "http://localhost",
            users::NewUser {
                email: Some(format!("user{i}@bench.test")),
                name: Some(format!("用户 {i}")),
                role_id: Some(sales),
                ..Default::default()
            },
        )
        .await?;
        ids.push(u.id);
    }
    let token = api_tokens::create(
        &db,
        &ctx,
        api_tokens::NewToken {
            name: Some("bench".into()),
            expires_in_days: None,
        },
    )
    .await?
    .secret;
    db.close().await;
    Ok((token, ids))
}

async fn measure(
    target: Target,
    url: &str,
    dir: &std::path::Path,
    token: &str,
    ids: &Arc<Vec<Uuid>>,
    args: &BenchArgs,
) -> anyhow::Result<Run> {
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
    cmd.arg("--listen")
        .arg(addr.to_string())
        .arg("--database-url")
        .arg(url)
        .arg("--data-dir")
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("starting the measured process")?;
    wait_ready(&mut child).await?;
    let pid = child.id().context("measured process exited")?;
    // Idle: started, migrated, not yet asked anything.
    let idle = rss_mb(pid, "VmRSS:")?;
    load(
        addr,
        token,
        ids,
        args.connections,
        (args.requests / 10).max(1),
    )
    .await?;
    let lat = load(addr, token, ids, args.connections, args.requests).await?;
    let peak = rss_mb(pid, "VmHWM:")?;
    child.kill().await?;
    Ok(Run {
        rps: lat.rps,
        p50_ms: lat.p50_ms,
        p99_ms: lat.p99_ms,
        idle_rss_mb: idle,
        peak_rss_mb: peak,
    })
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

struct Latency {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Sends `total` requests over `conns` keep-alive connections; every answer must be 200.
async fn load(
    addr: SocketAddr,
    token: &str,
    ids: &Arc<Vec<Uuid>>,
    conns: usize,
    total: u64,
) -> anyhow::Result<Latency> {
    let next = Arc::new(AtomicU64::new(0));
    let auth = format!("Bearer {token}");
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (next, ids, auth) = (next.clone(), ids.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let id = ids[(i as usize) % ids.len()];
                let req = hyper::Request::get(format!("/api/v1/users/{id}"))
                    .header(header::HOST, "bench")
                    .header(header::AUTHORIZATION, &auth)
                    .body(Empty::<Bytes>::new())?;
                let t = Instant::now();
                let resp = send.send_request(req).await?;
                let status = resp.status();
                resp.into_body().collect().await?;
                if status != StatusCode::OK {
                    bail!("GET /api/v1/users/{id} answered {status}");
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
    Ok(Latency {
        rps: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    })
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

// ---- the floor ---------------------------------------------------------------------------

struct Floor {
    db: Db,
    token_sql: String,
    user_sql: String,
}

/// `guanxi bench-floor`: a bare handler for `GET /api/v1/users/{id}` that runs the same two
/// statements as the real path (token lookup, user by id) through the same pool, and nothing
/// else: no middleware, permission check, audit, metrics or logging.
pub async fn floor(config: &Config, listen: SocketAddr) -> anyhow::Result<()> {
    let db = crate::open_db(config).await?;
    let state = Arc::new(Floor {
        db,
        token_sql: auth::token_sql(),
        user_sql: users::by_id_sql(),
    });
    let app = axum::Router::new()
        .route("/api/v1/users/{id}", axum::routing::get(floor_get))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("floor listening on {listen}");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn floor_get(
    State(s): State<Arc<Floor>>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> Response {
    let parsed = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer gx_"))
        .and_then(|v| v.split_once('_'))
        .and_then(|(t, secret)| Some((Uuid::try_parse(t).ok()?, secret)));
    let Some((tenant, secret)) = parsed else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let now = guanxi_platform::time::now();
    let found: Result<Option<(Uuid,)>, _> =
        s.db.fetch_optional(
            &s.token_sql,
            args![tenant, secret::digest(secret), now, true],
        )
        .await;
    match found {
        Ok(Some(_)) => {}
        Ok(None) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
    match s
        .db
        .fetch_optional::<users::User>(&s.user_sql, args![tenant, id])
        .await
    {
        Ok(Some(u)) => axum::Json(u).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
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
