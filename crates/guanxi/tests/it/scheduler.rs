//! The scheduler: jobs planned for a due time fire once per due time — planned twice, run by two
//! app nodes (two pools on one database) at once, recurring, and when a stalled worker is
//! overtaken after its lock expired (its work is rolled back, not doubled).

use crate::both;
use crate::harness::{pool_size, TestApp};
use chrono::{DateTime, Duration, Utc};
use guanxi_platform::db::Tx;
use guanxi_platform::jobs::{self, Due, HandlerFuture, Handlers};
use guanxi_platform::{args, Db};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::Notify;
use uuid::Uuid;

/// What the test handlers did, one row an effect (the table a real module would change).
async fn effects_table(db: &Db) {
    db.execute(
        "CREATE TABLE tick_effects (tenant_id TEXT NOT NULL, job_id TEXT NOT NULL, label TEXT NOT NULL)",
        args![],
    )
    .await
    .unwrap();
}

async fn effect(tx: &mut Tx, due: Due<'_>, label: &str) -> guanxi_platform::Result<()> {
    tx.execute(
        "INSERT INTO tick_effects (tenant_id, job_id, label) VALUES ($1, $2, $3)",
        args![due.tenant_id.to_string(), due.job_id.to_string(), label],
    )
    .await
    .map(|_| ())
}

fn tick<'a>(tx: &'a mut Tx, due: Due<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let label = due.payload["label"].as_str().unwrap_or("").to_owned();
        effect(tx, due, &label).await
    })
}

/// Hourly: does its work and plans the next hour in the same transaction.
fn hourly<'a>(tx: &'a mut Tx, due: Due<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let this: DateTime<Utc> = serde_json::from_value(due.payload["at"].clone()).unwrap();
        effect(tx, due, &format!("hourly {}", this.format("%H:%M"))).await?;
        let next = this + Duration::hours(1);
        jobs::schedule(
            tx,
            due.tenant_id,
            "test_hourly",
            &format!("hourly:{}", next.timestamp()),
            &serde_json::json!({ "at": next }),
            next,
        )
        .await
        .map(|_| ())
    })
}

/// Jobs whose handler waits at a gate: (entered, release) by job id.
static GATES: LazyLock<Mutex<HashMap<Uuid, (Arc<Notify>, Arc<Notify>)>>> =
    LazyLock::new(Default::default);

fn stalls<'a>(tx: &'a mut Tx, due: Due<'a>) -> HandlerFuture<'a> {
    Box::pin(async move {
        let gate = GATES.lock().unwrap().remove(&due.job_id);
        if let Some((entered, release)) = gate {
            entered.notify_one();
            release.notified().await;
        }
        effect(tx, due, "stalls").await
    })
}

fn handlers() -> Handlers {
    Handlers::default()
        .with("test_tick", tick)
        .with("test_hourly", hourly)
        .with("test_stalls", stalls)
}

/// Runs the queue at `at` on both nodes at once until neither finds work.
async fn drain(a: &Db, b: &Db, app: &TestApp, at: DateTime<Utc>) -> jobs::RunStats {
    let h = handlers();
    let mut total = jobs::RunStats::default();
    loop {
        let (x, y) = tokio::join!(
            jobs::run_due(a, &app.state.mailer, &h, at, 3),
            jobs::run_due(b, &app.state.mailer, &h, at, 3)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let n =
            x.done + y.done + x.retried + y.retried + x.dead + y.dead + x.overtaken + y.overtaken;
        total.done += x.done + y.done;
        total.retried += x.retried + y.retried;
        total.overtaken += x.overtaken + y.overtaken;
        if n == 0 {
            return total;
        }
    }
}

async fn labels(db: &Db) -> Vec<String> {
    let rows: Vec<(String,)> = db
        .fetch_all("SELECT label FROM tick_effects ORDER BY label", args![])
        .await
        .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

both!(
    a_due_time_fires_once_on_two_nodes,
    |app: TestApp| async move {
        effects_table(&app.db).await;
        // The second app node: its own pool on the same database.
        let node_b = Db::connect(
            app.state.config.database_url.as_ref().unwrap().expose(),
            pool_size(),
        )
        .await
        .unwrap();
        let tenant: Uuid = app.tenant_id.parse().unwrap();
        let t0 = guanxi_platform::time::now() + Duration::days(1);
        // 30 due times, each planned by both nodes: one job each.
        let mut queued = 0;
        for node in [&app.db, &node_b] {
            for i in 0..30 {
                let mut tx = node.begin().await.unwrap();
                let id = jobs::schedule(
                    &mut tx,
                    tenant,
                    "test_tick",
                    &format!("tick:{i}"),
                    &serde_json::json!({ "label": format!("tick {i:02}") }),
                    t0 + Duration::minutes(i),
                )
                .await
                .unwrap();
                tx.commit().await.unwrap();
                queued += usize::from(id.is_some());
            }
        }
        assert_eq!(queued, 30, "planned twice, queued once");
        // Nothing is due yet.
        assert_eq!(
            drain(&app.db, &node_b, &app, t0 - Duration::minutes(1))
                .await
                .done,
            0
        );
        let stats = drain(&app.db, &node_b, &app, t0 + Duration::hours(1)).await;
        assert_eq!(stats.done, 30);
        let got = labels(&app.db).await;
        let want: Vec<String> = (0..30).map(|i| format!("tick {i:02}")).collect();
        assert_eq!(got, want, "each due time's work done once");

        // Recurring work plans its next due time itself: from 00:00 to 03:30 it fires at 00, 01,
        // 02 and 03, and 04:00 waits.
        let midnight = (t0 + Duration::days(1))
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        for node in [&app.db, &node_b] {
            let mut tx = node.begin().await.unwrap();
            jobs::schedule(
                &mut tx,
                tenant,
                "test_hourly",
                &format!("hourly:{}", midnight.timestamp()),
                &serde_json::json!({ "at": midnight }),
                midnight,
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        drain(&app.db, &node_b, &app, midnight + Duration::minutes(210)).await;
        let hourly: Vec<String> = labels(&app.db)
            .await
            .into_iter()
            .filter(|l| l.starts_with("hourly"))
            .collect();
        assert_eq!(
            hourly,
            [
                "hourly 00:00",
                "hourly 01:00",
                "hourly 02:00",
                "hourly 03:00"
            ]
        );
        let pending: i64 = app
            .db
            .scalar(
                "SELECT COUNT(*) FROM jobs WHERE kind = 'test_hourly' AND status = 'pending'",
                args![],
            )
            .await
            .unwrap();
        assert_eq!(pending, 1, "04:00 is planned, once");

        // A planned job whose deadline moved is taken back.
        let mut tx = app.db.begin().await.unwrap();
        jobs::schedule(
            &mut tx,
            tenant,
            "test_tick",
            "moved",
            &serde_json::json!({"label": "moved"}),
            t0,
        )
        .await
        .unwrap();
        assert!(jobs::unschedule(&mut tx, tenant, "test_tick", "moved")
            .await
            .unwrap());
        tx.commit().await.unwrap();
        drain(&app.db, &node_b, &app, t0 + Duration::hours(2)).await;
        assert!(!labels(&app.db).await.contains(&"moved".to_owned()));
    }
);

/// Several app nodes share one PostgreSQL. (SQLite is one node: a stalled worker's transaction
/// holds the write lock, so no one can take its job over meanwhile.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overtaken_worker_changes_nothing() {
    let Some(app) = TestApp::start_postgres().await else {
        return;
    };
    effects_table(&app.db).await;
    let node_b = Db::connect(
        app.state.config.database_url.as_ref().unwrap().expose(),
        pool_size(),
    )
    .await
    .unwrap();
    let tenant: Uuid = app.tenant_id.parse().unwrap();
    let t0 = guanxi_platform::time::now() + Duration::days(1);
    let mut tx = app.db.begin().await.unwrap();
    let id = jobs::schedule(
        &mut tx,
        tenant,
        "test_stalls",
        "stall",
        &serde_json::json!({}),
        t0,
    )
    .await
    .unwrap()
    .unwrap();
    tx.commit().await.unwrap();
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    GATES
        .lock()
        .unwrap()
        .insert(id, (entered.clone(), release.clone()));
    // Node A claims the job and stalls inside it (a long GC pause, a frozen VM)…
    let (db_a, mailer) = (app.db.clone(), app.state.mailer.clone());
    let a = tokio::spawn(async move { jobs::run_due(&db_a, &mailer, &handlers(), t0, 5).await });
    entered.notified().await;
    // …its lock runs out, node B takes the job over and does it.
    let b = jobs::run_due(
        &node_b,
        &app.state.mailer,
        &handlers(),
        t0 + Duration::seconds(jobs::LOCK_SECONDS + 60),
        5,
    )
    .await
    .unwrap();
    assert_eq!(b.done, 1);
    // Node A wakes and finishes: its work is rolled back, not done a second time.
    release.notify_one();
    let a = a.await.unwrap().unwrap();
    assert_eq!((a.done, a.overtaken), (0, 1));
    assert_eq!(labels(&app.db).await, ["stalls"]);
    let (status, attempts): (String, i64) = app
        .db
        .fetch_one("SELECT status, attempts FROM jobs WHERE id = $1", args![id])
        .await
        .unwrap();
    assert_eq!((status.as_str(), attempts), ("done", 2));
}
