//! Schema checks: both migration trees describe the same tables and columns; every business
//! table has tenant_id NOT NULL leading its primary key and inside every foreign key; the
//! OpenAPI document is stable (snapshot).

use crate::harness::{fresh_pg_database, pg_url, temp_dir, TestApp};
use guanxi_platform::{args, migrate, Db};
use std::collections::{BTreeMap, BTreeSet};

type Columns = BTreeSet<(String, String, bool)>;

async fn sqlite_columns(db: &Db) -> Columns {
    let rows: Vec<(String, String, i64, i64)> = db
        .fetch_all(
            // table_xinfo: generated columns too (hidden 2 and 3), not a virtual table's own
            // hidden ones (1).
            "SELECT m.name, p.name, p.\"notnull\", p.pk FROM sqlite_master m JOIN pragma_table_xinfo(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND p.hidden <> 1",
            args![],
        )
        .await
        .unwrap();
    rows.into_iter()
        .filter(|(t, ..)| !is_fts(t))
        .map(|(t, c, nn, pk)| (t, c, nn == 1 || pk > 0))
        .collect()
}

/// SQLite's full-text search index (`<table>_fts` and its shadow tables) is the search index's
/// SQLite form; PostgreSQL keeps the same index as a GIN index on the table itself.
fn is_fts(table: &str) -> bool {
    table.ends_with("_fts") || table.contains("_fts_")
}

#[tokio::test]
async fn every_business_table_is_keyed_by_tenant() {
    let dir = temp_dir();
    let db = Db::connect(&dir.0.join("s.db").to_string_lossy(), 1)
        .await
        .unwrap();
    migrate::run(&db, guanxi_web::MIGRATIONS).await.unwrap();
    let tables: Vec<(String,)> = db
        .fetch_all(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            args![],
        )
        .await
        .unwrap();
    assert!(tables.len() >= 10);
    for (t,) in tables {
        if t == "tenants" || t == "schema_migrations" || is_fts(&t) {
            continue;
        }
        let pk: Vec<(String, i64, i64)> = db
            .fetch_all(&format!("SELECT name, pk, \"notnull\" FROM pragma_table_info('{t}') WHERE pk > 0 ORDER BY pk"), args![])
            .await
            .unwrap();
        assert_eq!(
            pk.first().map(|p| p.0.as_str()),
            Some("tenant_id"),
            "{t}: primary key must start with tenant_id"
        );
        assert_eq!(pk[0].2, 1, "{t}.tenant_id must be NOT NULL");
        let fks: Vec<(i64, String, String)> = db
            .fetch_all(
                &format!("SELECT id, \"from\", \"table\" FROM pragma_foreign_key_list('{t}')"),
                args![],
            )
            .await
            .unwrap();
        let mut groups: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (id, from, _) in &fks {
            groups.entry(*id).or_default().push(from.clone());
        }
        for (id, cols) in groups {
            assert!(
                cols.contains(&"tenant_id".to_owned()),
                "{t}: foreign key {id} ({cols:?}) must include tenant_id"
            );
        }
    }
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_agree() {
    let Some(base) = pg_url() else { return };
    let dir = temp_dir();
    let lite = Db::connect(&dir.0.join("p.db").to_string_lossy(), 1)
        .await
        .unwrap();
    migrate::run(&lite, guanxi_web::MIGRATIONS).await.unwrap();
    let (url, name) = fresh_pg_database(&base).await;
    let pg = Db::connect(&url, 1).await.unwrap();
    migrate::run(&pg, guanxi_web::MIGRATIONS).await.unwrap();
    // Running again applies nothing.
    assert_eq!(migrate::run(&pg, guanxi_web::MIGRATIONS).await.unwrap(), 0);
    let rows: Vec<(String, String, String)> = pg
        .fetch_all("SELECT table_name::text, column_name::text, is_nullable::text FROM information_schema.columns WHERE table_schema = 'public'", args![])
        .await
        .unwrap();
    let pg_cols: Columns = rows
        .into_iter()
        .map(|(t, c, n)| (t, c, n == "NO"))
        .collect();
    let lite_cols = sqlite_columns(&lite).await;
    let only_lite: Vec<_> = lite_cols.difference(&pg_cols).collect();
    let only_pg: Vec<_> = pg_cols.difference(&lite_cols).collect();
    assert!(
        only_lite.is_empty() && only_pg.is_empty(),
        "only in SQLite: {only_lite:?}\nonly in PostgreSQL: {only_pg:?}"
    );
    pg.close().await;
    let admin = Db::connect(&base, 1).await.unwrap();
    admin
        .execute(&format!("DROP DATABASE {name} WITH (FORCE)"), args![])
        .await
        .unwrap();
}

#[test]
fn openapi_document_is_stable() {
    let doc = serde_json::to_value(guanxi_web::openapi()).unwrap();
    // Every operation documents its error responses with the shared problem schema.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
        }
    }
    insta::assert_json_snapshot!("openapi", doc);
}

/// Two types documented under one name: the OpenAPI document keeps one of them and every
/// operation naming the other shows the wrong shape (nine pairs did — a quote's lines shown as
/// an order's, an SLA target as a sales target). Every type that derives `ToSchema` has a name
/// of its own in the workspace, its `#[schema(as = …)]` if it has one.
#[test]
fn every_documented_type_has_a_name_of_its_own() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for c in std::fs::read_dir(&crates).unwrap().flatten() {
        let src = c.path().join("src");
        if src.is_dir() {
            walk(&src, &mut files);
        }
    }
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let mut derives = false;
        let mut alias: Option<String> = None;
        // A derive list rustfmt split over several lines, until its `)]`.
        let mut derive_list: Option<String> = None;
        for line in text.lines().map(str::trim) {
            if let Some(list) = derive_list.as_mut() {
                list.push_str(line);
                if line.contains(")]") {
                    derives = list.contains("ToSchema");
                    derive_list = None;
                }
                continue;
            }
            if line.starts_with("#[derive(") && !line.contains(")]") {
                derive_list = Some(line.to_owned());
            } else if line.starts_with("#[derive(") && line.contains("ToSchema") {
                derives = true;
            } else if let Some(rest) = line.strip_prefix("#[schema(as = ") {
                alias = rest.split([')', ',']).next().map(|a| a.trim().to_owned());
            } else if derives {
                let item = ["pub struct ", "pub enum ", "struct ", "enum "]
                    .iter()
                    .find_map(|k| line.strip_prefix(k));
                if let Some(item) = item {
                    let ident: String = item
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    let name = alias.take().unwrap_or(ident);
                    seen.entry(name).or_default().push(f.display().to_string());
                    derives = false;
                } else if !line.starts_with("#[") && !line.starts_with("///") && !line.is_empty() {
                    derives = false;
                    alias = None;
                }
            }
        }
    }
    assert!(seen.len() > 100, "{} documented types found", seen.len());
    let twice: Vec<_> = seen.iter().filter(|(_, at)| at.len() > 1).collect();
    assert!(twice.is_empty(), "documented under one name: {twice:#?}");
}

// The bulk writer (COPY on PostgreSQL, multi-row INSERT on SQLite) stores every value as the
// ordinary statements would: separators and backslashes inside text, NULLs, numbers, flags.
crate::both!(bulk_rows_keep_every_character, |app: TestApp| async move {
    use guanxi_platform::db::Val;
    app.db
        .execute(
            "CREATE TABLE bulk_probe (t TEXT, n BIGINT, b BOOLEAN)",
            vec![],
        )
        .await
        .unwrap();
    let texts = [
        "tab\there",
        "line\nbreak\r\n",
        "back\\slash \\N",
        "张三 ‘引号’",
        "",
    ];
    let rows: Vec<Vec<Val>> = (0..3_000i64)
        .map(|i| {
            let t = texts[i as usize % texts.len()];
            vec![
                if i % 7 == 0 {
                    Val::Text(None)
                } else {
                    t.into()
                },
                i.into(),
                (i % 2 == 0).into(),
            ]
        })
        .collect();
    let mut tx = app.db.begin().await.unwrap();
    let n = tx
        .insert_rows("bulk_probe", &["t", "n", "b"], rows)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(n, 3_000);
    let back: Vec<(Option<String>, i64, bool)> = app
        .db
        .fetch_all("SELECT t, n, b FROM bulk_probe ORDER BY n", vec![])
        .await
        .unwrap();
    assert_eq!(back.len(), 3_000);
    for (t, n, b) in back {
        let want = (n % 7 != 0).then(|| texts[n as usize % texts.len()].to_owned());
        assert_eq!((t, b), (want, n % 2 == 0), "row {n}");
    }
});
