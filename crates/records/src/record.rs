//! What every declared record shares: applying a PATCH-style input field by field with the
//! same validation on create and update, resolving the owner (and with it the team), tags, the
//! search box and list pages, loading within the caller's scope, trash and restore, and
//! hand-over to another owner.

use guanxi_platform::ctx::ActorKind;
use guanxi_platform::db::{Backend, Conn, Db, Sql, Tx};
use guanxi_platform::error::{Error, Errors, Result};
use guanxi_platform::perms::Action;
use guanxi_platform::time::now;
use guanxi_platform::{args, audit, notifications, Ctx};
use uuid::Uuid;

use crate::custom_fields;
use crate::normalize;
use crate::shares;
use crate::Entity;

/// Applies one clearable text field: absent → unchanged; `null` or blank → cleared; otherwise
/// validated by `check` (which returns the stored form or an error code).
pub fn apply_text(
    errs: &mut Errors,
    field: &str,
    input: &Option<Option<String>>,
    current: &mut Option<String>,
    check: impl Fn(&str) -> std::result::Result<String, &'static str>,
) {
    match input {
        None => {}
        Some(None) => *current = None,
        Some(Some(raw)) if raw.trim().is_empty() => *current = None,
        Some(Some(raw)) => match check(raw) {
            Ok(v) => *current = Some(v),
            Err(code) => errs.add(field, code),
        },
    }
}

/// Applies the phone field, read as a number of `country` (so a country change re-reads it):
/// sets the raw and E.164 forms and returns the national digits (for search).
pub fn apply_phone(
    errs: &mut Errors,
    input: &Option<Option<String>>,
    country_changed: bool,
    country: &str,
    phone: &mut Option<String>,
    e164: &mut Option<String>,
) -> Option<String> {
    if input.is_none() && !country_changed {
        return phone
            .as_deref()
            .and_then(|raw| normalize::phone(raw, country).ok())
            .map(|p| p.national);
    }
    let mut raw = phone.clone();
    apply_text(errs, "phone", input, &mut raw, |s| Ok(s.trim().to_owned()));
    match raw.as_deref().map(|r| normalize::phone(r, country)) {
        None => {
            (*phone, *e164) = (None, None);
            None
        }
        Some(Ok(p)) => {
            (*phone, *e164) = (Some(p.raw), Some(p.e164));
            Some(p.national)
        }
        Some(Err(code)) => {
            errs.add("phone", code);
            None
        }
    }
}

/// Free text up to `max` characters.
/// A list filter of comma-separated choices (`status=open,won`): `AND {col} IN (…)`, each value
/// one of `allowed`, else the `field`'s error. Blank adds nothing.
pub fn one_of(
    q: &mut Sql,
    col: &str,
    field: &str,
    raw: Option<&str>,
    allowed: &[&str],
) -> Result<()> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(());
    };
    let wanted: Vec<&str> = raw.split(',').map(str::trim).collect();
    if wanted.iter().any(|w| !allowed.contains(w)) {
        return Err(Error::field(field, "invalid"));
    }
    q.push(&format!(" AND {col} IN ")).bind_list(wanted);
    Ok(())
}

pub fn plain(max: usize) -> impl Fn(&str) -> std::result::Result<String, &'static str> {
    move |raw| normalize::text(raw, max).map(Option::unwrap_or_default)
}

/// What a batch of writes asks again and again — whether a linked record is live, an owner's
/// team — asked once per batch (an import); a single write uses a fresh one.
#[derive(Default)]
pub struct Lookups {
    live: std::collections::HashSet<(&'static str, Uuid)>,
    owners: std::collections::HashMap<Uuid, Option<Option<Uuid>>>,
}

impl Lookups {
    /// Whether the record of `table` exists and is not in the trash.
    pub async fn live(
        &mut self,
        tx: &mut Tx,
        tenant_id: Uuid,
        table: &'static str,
        id: Uuid,
    ) -> Result<bool> {
        if self.live.contains(&(table, id)) {
            return Ok(true);
        }
        let n: i64 = tx
            .scalar(
                &format!(
                    "SELECT COUNT(*) FROM {table} WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
                ),
                args![tenant_id, id],
            )
            .await?;
        if n > 0 {
            self.live.insert((table, id));
        }
        Ok(n > 0)
    }

    /// What the caller already read about the user `owner`: `None` if not an active user of
    /// the tenant, else their team — [`resolve_owner`] asks no more.
    pub fn owner_known(&mut self, owner: Uuid, team: Option<Option<Uuid>>) {
        self.owners.insert(owner, team);
    }

    /// Records a record of `table` this batch created.
    pub fn add_live(&mut self, table: &'static str, id: Uuid) {
        self.live.insert((table, id));
    }
}

/// The owner a record gets: the one asked for, else the current one, else (creating) the
/// caller. The owner must be an active user of the tenant; the record's team is the owner's
/// team. A record waiting in a pool (no owner) keeps none: it is taken by a claim or an
/// assignment from its pool, never by an edit (`owner_id: in_pool`). `None`: nothing changes.
pub async fn resolve_owner(
    tx: &mut Tx,
    ctx: &Ctx,
    errs: &mut Errors,
    requested: Option<Uuid>,
    current: Option<Uuid>,
    creating: bool,
    lk: &mut Lookups,
) -> Result<Option<(Uuid, Option<Uuid>)>> {
    if !creating && current.is_none() {
        if requested.is_some() {
            errs.add("owner_id", "in_pool");
        }
        return Ok(None);
    }
    let Some(owner) = requested.or(current).or(ctx.user_id) else {
        errs.add("owner_id", "required");
        return Ok(None);
    };
    let team = match lk.owners.get(&owner) {
        Some(known) => *known,
        // The caller as owner (most records): signed in or holding a token, they are an active
        // user of this tenant and their team was read with them — no statement inside the
        // writer's turn.
        None if Some(owner) == ctx.user_id
            && matches!(ctx.actor, ActorKind::Session | ActorKind::Token) =>
        {
            Some(ctx.team_id)
        }
        None => {
            let row: Option<(Option<Uuid>,)> = tx
                .fetch_optional(
                    "SELECT team_id FROM users WHERE tenant_id = $1 AND id = $2 AND active = $3 AND deleted_at IS NULL",
                    args![ctx.tenant_id, owner, true],
                )
                .await?;
            let team = row.map(|(t,)| t);
            lk.owners.insert(owner, team);
            team
        }
    };
    match team {
        Some(team) => Ok(Some((owner, team))),
        None => {
            errs.add("owner_id", "unknown");
            Ok(None)
        }
    }
}

/// Appends the search-box condition on a `search` column: every term must appear.
pub fn search_sql(q: &mut Sql, column: &str, query: &str) {
    for term in normalize::search_terms(query) {
        q.push(&format!(" AND {column} LIKE "))
            .bind(like_pattern(&term));
        q.push(" ESCAPE '\\'");
    }
}

/// One search term against an account or contact row (`alias` of `table`): the gram index
/// narrows to the rows having all the term's tokens (when it has any), and a substring test on
/// the `search` text confirms — the index never changes what is found, only how fast.
///
/// SQLite: the FTS5 table, then `LIKE` (skipped when the term is one token). PostgreSQL:
/// `strpos(search, term) > 0`, then GIN containment. `strpos` rather than `LIKE` for the
/// planner's sake: it estimates a LIKE pattern at a few percent of the rows and a function
/// comparison at a third, and the estimate decides between walking the id index and reading
/// every GIN match (a token in 1.1% of a million contacts: 115 ms with LIKE, 4 ms with strpos
/// — tokens from 0.5% to 2.6% were sorted instead of walked). It comes first so a walk tests
/// each row with it before building the row's token array.
pub fn term_sql(backend: Backend, q: &mut Sql, table: &str, alias: &str, term: &str) {
    let grams = normalize::query_grams(term);
    match backend {
        Backend::Sqlite => {
            q.push("(");
            if !grams.is_empty() {
                q.push(&format!(
                    "{alias}.rowid IN (SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH "
                ))
                .bind(fts_query(&grams))
                .push(")");
                if is_one_token(term, &grams) {
                    q.push(")");
                    return;
                }
                q.push(" AND ");
            }
            q.push(&format!("{alias}.search LIKE "))
                .bind(like_pattern(term))
                .push(" ESCAPE '\\')");
        }
        Backend::Postgres => {
            q.push(&format!("(strpos({alias}.search, "))
                .bind(term)
                .push(") > 0");
            if !grams.is_empty() {
                q.push(&format!(
                    " AND string_to_array({alias}.grams, ' ') @> string_to_array("
                ))
                .bind(grams.join(" "))
                .push(", ' ')");
            }
            q.push(")");
        }
    }
}

/// Narrows to the records holding at least one of `grams` (index tokens, as
/// [`normalize::query_grams`] makes them): what "related text" asks — a ticket's subject
/// looking for articles — where [`term_sql`] asks for all of a term's. The index answers it
/// alone (an FTS `OR`; a GIN overlap `&&`); the caller ranks what comes back. No tokens: no
/// rows.
pub fn any_token_sql(backend: Backend, q: &mut Sql, table: &str, alias: &str, grams: &[String]) {
    if grams.is_empty() {
        q.push("1 = 0");
        return;
    }
    match backend {
        Backend::Sqlite => {
            q.push(&format!(
                "{alias}.rowid IN (SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH "
            ))
            .bind(
                grams
                    .iter()
                    .map(|g| format!("\"{g}\""))
                    .collect::<Vec<_>>()
                    .join(" OR "),
            )
            .push(")");
        }
        Backend::Postgres => {
            q.push(&format!(
                "string_to_array({alias}.grams, ' ') && string_to_array("
            ))
            .bind(grams.join(" "))
            .push(", ' ')");
        }
    }
}

/// Whether a term is exactly one index token (one or two Chinese characters, two or three
/// letters or digits): a record has the token exactly when its search text holds the term
/// (tokens are made within runs, and the term is one run), so SQLite has nothing to confirm.
/// (PostgreSQL keeps its `strpos`: as cheap as a confirmation gets, and the filter a walk of the
/// id index applies first.)
fn is_one_token(term: &str, grams: &[String]) -> bool {
    matches!(grams, [g] if g == term)
}

/// A list of records being built: the search box, the trash, the caller's scope,
/// then the list's own filters, then [`ListQuery::finish`] for the order and page.
///
/// A search without a chosen sort is answered in the search index's own order, newest
/// first, so the first page stops at its last row: a frequent term (建华 in a million
/// contacts: 28,000 matches) costs what a rare one does, where ordering by a field must read
/// and sort every match first. SQLite: the FTS table drives the query and the order is its
/// rowid (insertion order). PostgreSQL's GIN index has no order: the page is read era by era
/// (see [`crate::eras`]) — the newest era's matches, then the one before, then every older
/// era's at once, each through the era-keyed index and ordered by id (UUIDv7: creation
/// time) — and stops when it is full. A term too short for the index (one letter or digit)
/// walks the id index instead.
pub struct ListQuery {
    pub q: Sql,
    backend: Backend,
    index: Option<IndexOrder>,
}

/// How an index-ordered search pages.
enum IndexOrder {
    /// Descending on this column: SQLite's rowid, or PostgreSQL's id (no index tokens).
    Column(String),
    /// PostgreSQL: era by era. `select` is the list's own (`q` then holds only its WHERE).
    Eras {
        select: String,
        table: String,
        alias: String,
        grams: Vec<String>,
        tenant: Uuid,
    },
}

/// How a list page is ordered: by a field (then id), or a search's index order.
pub enum ListOrder {
    Field(guanxi_platform::page::Sort),
    Index,
}

/// Marks the value of an index-order cursor: then SQLite's rowid, PostgreSQL's era (or
/// nothing, when the order is the id alone).
const INDEX_CURSOR: &str = "index:";

/// The newest eras a PostgreSQL search page reads one at a time before all older ones at once.
const ERA_BRANCHES: i64 = 2;

impl ListQuery {
    /// `select` is the list's `SELECT … FROM {table} {alias} …` (joins allowed, no WHERE).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        backend: Backend,
        ctx: &Ctx,
        scope: guanxi_platform::perms::Scope,
        select: &str,
        (entity, alias): (Entity, &str),
        search: Option<&str>,
        sort: Option<&str>,
        trash: bool,
    ) -> ListQuery {
        let table = entity.table();
        let terms = search.map(normalize::search_terms).unwrap_or_default();
        let term = match (terms.as_slice(), sort) {
            ([term], None) => Some(term.as_str()),
            _ => None,
        };
        let grams = term.map(normalize::query_grams).unwrap_or_default();
        let from = format!("FROM {table} {alias}");
        let (select, index) = match (backend, term) {
            (_, None) => (select.to_owned(), None),
            (Backend::Sqlite, Some(_)) if !grams.is_empty() => (
                select.replacen(
                    &from,
                    &format!(
                        ", {alias}.rowid AS seq FROM {table}_fts f JOIN {table} {alias} ON {alias}.rowid = f.rowid"
                    ),
                    1,
                ),
                Some(IndexOrder::Column("f.rowid".to_owned())),
            ),
            (Backend::Sqlite, Some(_)) => (
                select.replacen(&from, &format!(", {alias}.rowid AS seq {from}"), 1),
                Some(IndexOrder::Column(format!("{alias}.rowid"))),
            ),
            (Backend::Postgres, Some(_)) if grams.is_empty() => (
                select.to_owned(),
                Some(IndexOrder::Column(format!("{alias}.id"))),
            ),
            (Backend::Postgres, Some(_)) => (
                String::new(),
                Some(IndexOrder::Eras {
                    select: select.to_owned(),
                    table: table.to_owned(),
                    alias: alias.to_owned(),
                    grams: grams.clone(),
                    tenant: ctx.tenant_id,
                }),
            ),
        };
        let mut q = Sql::new(&select);
        // An era-ordered page's plan does not depend on the values (see `by_eras`): it is
        // prepared once per connection. Every other search is planned with its term.
        if !terms.is_empty() && !matches!(index, Some(IndexOrder::Eras { .. })) {
            q.plan_with_values();
        }
        q.push(&format!(" WHERE {alias}.tenant_id = "))
            .bind(ctx.tenant_id);
        q.push(&format!(
            " AND {alias}.deleted_at IS {}NULL",
            if trash { "NOT " } else { "" }
        ));
        shares::scope_sql(ctx, &mut q, scope, entity, alias);
        match (term, &index) {
            (Some(term), _) if backend == Backend::Sqlite && !grams.is_empty() => {
                q.push(&format!(" AND f.{table}_fts MATCH "))
                    .bind(fts_query(&grams));
                if !is_one_token(term, &grams) {
                    q.push(&format!(" AND {alias}.search LIKE "))
                        .bind(like_pattern(term))
                        .push(" ESCAPE '\\'");
                }
            }
            // The index conditions come per era, in `finish`.
            (Some(term), Some(IndexOrder::Eras { .. })) => {
                q.push(&format!(" AND strpos({alias}.search, "))
                    .bind(term)
                    .push(") > 0");
            }
            _ => {
                for term in &terms {
                    q.push(" AND ");
                    term_sql(backend, &mut q, table, alias, term);
                }
            }
        }
        ListQuery { q, backend, index }
    }

    /// Appends the keyset condition, ORDER BY and LIMIT; `sort` resolves the page's sort
    /// (used unless this is an index-ordered search). Returns the SQL, the order the
    /// cursor is made from, and the page size.
    pub fn finish(
        mut self,
        page: &guanxi_platform::page::PageReq,
        id_col: &str,
        sort: impl FnOnce() -> Result<guanxi_platform::page::Sort>,
    ) -> Result<(Sql, ListOrder, i64)> {
        let column = match self.index {
            None => {
                let sort = sort()?;
                let limit = page.apply(&mut self.q, &sort, id_col)?;
                return Ok((self.q, ListOrder::Field(sort), limit));
            }
            Some(IndexOrder::Eras {
                select,
                table,
                alias,
                grams,
                tenant,
            }) => {
                let limit = page.limit()?;
                let q = by_eras(
                    self.q,
                    page,
                    (&select, &table, &alias),
                    &grams,
                    tenant,
                    limit,
                )?;
                return Ok((q, ListOrder::Index, limit));
            }
            Some(IndexOrder::Column(column)) => column,
        };
        let limit = page.limit()?;
        if let Some(c) = page.cursor_value()? {
            // A cursor of a field order (or of the other database) is refused, not misread.
            let invalid = || Error::field("cursor", "invalid");
            let seq = c.v.strip_prefix(INDEX_CURSOR).ok_or_else(invalid)?;
            self.q.push(&format!(" AND {column} < "));
            match self.backend {
                Backend::Sqlite => self.q.bind(seq.parse::<i64>().map_err(|_| invalid())?),
                Backend::Postgres if seq.is_empty() => self.q.bind(c.id),
                Backend::Postgres => return Err(invalid()),
            };
        }
        self.q
            .push(&format!(" ORDER BY {column} DESC LIMIT "))
            .bind(limit + 1);
        Ok((self.q, ListOrder::Index, limit))
    }
}

/// Whether a term's matches are few at any size, so reading and sorting all of them costs less
/// than looking in the newest eras first (two index lookups more): five or
/// more digits, a phone fragment — a uniformly random one is held by about 0.025% of contacts
/// (some 25 digit positions each), where four digits are held by ten times as many and
/// pinyin initials such as `cjh` by 0.17%. (A structured fragment can be common — `86138`
/// starts the international form of every 138 number — and is then sorted in full.)
fn is_specific(grams: &[String]) -> bool {
    grams.len() >= 2
        && grams
            .iter()
            .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_digit()))
}

/// A PostgreSQL search page read era by era (see [`ListQuery`]): `filter` is the list's
/// WHERE clause (the term's `strpos` included). Each branch of the UNION ALL takes the
/// matching rows of one era through the era-keyed index, the last one every older era's
/// through the plain token index; PostgreSQL runs the branches in turn and stops once the page
/// is full (a subquery with a LIMIT is never run by parallel workers, so the branches keep
/// their order). The union stands in for the table in the list's own SELECT (its joins
/// apply to the page's rows only), and the page is ordered again by era and id, newest
/// first. The cursor is the last row's era and id.
///
/// The first page starts in the table's newest era, which the statement reads itself (no
/// round trip before it), and the tokens each branch looks up are subqueries too: nothing the
/// planner could estimate from is a value, so the plan is the same for every term and
/// PostgreSQL keeps one per connection (planning this statement with its values cost 0.5 ms, a
/// third of a rare term's page at a million contacts). The plan cannot go wrong by it: no
/// index has the page's order, so every branch reads its matches through its index and sorts
/// them, whatever their number.
fn by_eras(
    filter: Sql,
    page: &guanxi_platform::page::PageReq,
    (select, table, alias): (&str, &str, &str),
    grams: &[String],
    tenant: Uuid,
    limit: i64,
) -> Result<Sql> {
    let cursor = match page.cursor_value()? {
        None => None,
        Some(c) => {
            let invalid = || Error::field("cursor", "invalid");
            let era =
                c.v.strip_prefix(INDEX_CURSOR)
                    .and_then(|s| s.parse::<i64>().ok())
                    .filter(|e| (0..=i64::from(i32::MAX)).contains(e))
                    .ok_or_else(invalid)?;
            Some((era, c.id))
        }
    };
    // The era `back` eras before the page's first one: the cursor's, or the newest.
    let era_sql = |q: &mut Sql, back: i64| match cursor {
        Some((era, _)) => {
            q.bind(era - back);
        }
        None => {
            q.push("(")
                .append(crate::eras::newest_sql(tenant, table))
                .push(&format!(" - {back})"));
        }
    };
    let from = format!("FROM {table} {alias}");
    let (head, tail) = select
        .split_once(&from)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("a list select without {from}")))?;
    let Sql {
        sql: filter,
        args,
        plan_with_values,
    } = filter;
    let mut q = Sql {
        sql: format!("{head}, {alias}.era AS seq FROM (SELECT * FROM ("),
        args,
        plan_with_values,
    };
    let branch = format!("(SELECT {alias}.* {from}{filter}");
    let order = format!(" ORDER BY {alias}.era DESC, {alias}.id DESC LIMIT ");
    let specific = is_specific(grams);
    let grams = grams.join(" ");
    // Eras read one at a time (the newest first; on a first page an era below 0 is an empty
    // lookup), then every older era at once.
    let singles = match cursor {
        _ if specific => 0,
        Some((era, _)) => ERA_BRANCHES.min(era + 1),
        None => ERA_BRANCHES,
    };
    for back in 0..singles {
        if back > 0 {
            q.push(" UNION ALL ");
        }
        q.push(&branch).push(&format!(
            " AND {} @> (SELECT {} FROM (SELECT ",
            crate::eras::index_expr(alias),
            crate::eras::keyed_sql("n.e", "n.g")
        ));
        era_sql(&mut q, back);
        q.push(" AS e, ").bind(grams.clone()).push(" AS g) n)");
        if let (Some((_, id)), 0) = (cursor, back) {
            q.push(&format!(" AND {alias}.id < ")).bind(id);
        }
        q.push(&order).bind(limit + 1).push(")");
    }
    let rest = match cursor {
        Some((era, _)) => era + 1 - singles > 0,
        None => true,
    };
    if rest {
        if singles > 0 {
            q.push(" UNION ALL ");
        }
        q.push(&branch);
        match (cursor, singles) {
            // A first page of a specific term: every era.
            (None, 0) => {}
            // The cursor's own era is among these: its rows after the cursor only.
            (Some((era, id)), 0) => {
                q.push(&format!(" AND ({alias}.era < "))
                    .bind(era)
                    .push(&format!(" OR ({alias}.era = "))
                    .bind(era)
                    .push(&format!(" AND {alias}.id < "))
                    .bind(id)
                    .push("))");
            }
            _ => {
                q.push(&format!(" AND {alias}.era < "));
                era_sql(&mut q, singles - 1);
            }
        }
        q.push(&format!(
            " AND string_to_array({alias}.grams, ' ') @> (SELECT string_to_array("
        ))
        .bind(grams)
        .push(", ' '))")
        .push(&order)
        .bind(limit + 1)
        .push(")");
    }
    q.push(") branches LIMIT ").bind(limit + 1).push(&format!(
        ") {alias}{tail} ORDER BY {alias}.era DESC, {alias}.id DESC"
    ));
    Ok(q)
}

impl ListOrder {
    /// The next page's cursor after a row: `seq` is its rowid when the list read one, `field`
    /// gives the row's value of the sort's field.
    pub fn cursor(
        &self,
        seq: Option<i64>,
        id: Uuid,
        field: impl FnOnce(&guanxi_platform::page::Sort) -> String,
    ) -> String {
        match self {
            ListOrder::Index => guanxi_platform::page::Cursor {
                v: format!(
                    "{INDEX_CURSOR}{}",
                    seq.map(|s| s.to_string()).unwrap_or_default()
                ),
                id,
            }
            .encode(),
            ListOrder::Field(sort) => sort.cursor(field(sort), id),
        }
    }
}

/// An FTS5 query asking for every one of `grams` (each quoted: a token, never an operator).
fn fts_query(grams: &[String]) -> String {
    grams
        .iter()
        .map(|g| format!("\"{g}\""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `%term%` with LIKE's wildcards escaped.
pub fn like_pattern(term: &str) -> String {
    format!(
        "%{}%",
        term.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// A record with an owner, a team and a trash: what the shared load/scope/trash functions
/// below need to know about it.
pub trait Record: serde::Serialize + guanxi_platform::db::DbRow {
    /// The entity the record type declared.
    const ENTITY: Entity;
    /// Table, and module name for permissions and audit (`accounts`, `contacts`, `leads`).
    const TABLE: &'static str = Self::ENTITY.table();
    /// `SELECT … FROM table x …` ready for `WHERE x.tenant_id = $1 AND x.id = $2`.
    fn select_one() -> String;
    /// The owner; `None` while the record waits in a pool.
    fn owner(&self) -> Option<Uuid>;
    fn team(&self) -> Option<Uuid>;
    fn in_trash(&self) -> bool;
    /// The record's custom field values (`{}` for records without custom fields).
    fn custom(&self) -> Option<&serde_json::Value> {
        None
    }
    /// A unique column a restore must not collide on (column, value).
    fn unique_on_restore(&self) -> Option<(&'static str, String)> {
        None
    }
    /// The shared record whose collaborators may read this one too (a deal's quote): its
    /// entity and id.
    fn shared_through(&self) -> Option<(Entity, Uuid)> {
        None
    }
}

/// The caller's share of `r` (record `id`): its own, or read access through the record it
/// belongs to ([`Record::shared_through`]).
async fn share_of<R: Record>(
    conn: impl Into<Conn<'_>>,
    ctx: &Ctx,
    id: Uuid,
    r: &R,
) -> Result<Option<shares::Access>> {
    match r.shared_through() {
        _ if R::ENTITY.shared() => shares::mine(conn, ctx, R::ENTITY, id).await,
        Some((parent, parent_id)) => Ok(shares::mine(conn, ctx, parent, parent_id)
            .await?
            .map(|_| shares::Access::Read)),
        None => Ok(None),
    }
}

/// A record's owner column as the machinery sees it: always set (`Uuid`), or absent while the
/// record waits in a pool (`Option<Uuid>`).
pub trait AsOwner {
    fn as_owner(&self) -> Option<Uuid>;
}

impl AsOwner for Uuid {
    fn as_owner(&self) -> Option<Uuid> {
        Some(*self)
    }
}

impl AsOwner for Option<Uuid> {
    fn as_owner(&self) -> Option<Uuid> {
        *self
    }
}

/// An input's owner field from a bulk assignment's owner: a plain `Option<Uuid>`, or the
/// `Option<Option<Uuid>>` of a record that may be unassigned (`null` there unassigns).
pub trait FromOwner {
    fn from_owner(owner: Option<Uuid>) -> Self;
}

impl FromOwner for Option<Uuid> {
    fn from_owner(owner: Option<Uuid>) -> Self {
        owner
    }
}

impl FromOwner for Option<Option<Uuid>> {
    fn from_owner(owner: Option<Uuid>) -> Self {
        owner.map(Some)
    }
}

/// Declares a module's row type to the machinery: [`Record`] and [`crate::bulk::Editable`]
/// for a type with the shared columns under their usual names (`owner_id`, `team_id`,
/// `deleted_at`, `custom`, `tags`, `version`). `select` is its one-row `SELECT … FROM table
/// alias …` (before `WHERE`), `alias` the table's alias in it, `input` its input type (with
/// `version`, `owner_id` and `tags`, and `Default`), `update` its update function
/// `(db, ctx, id, if_match, input)`; optionally the unique column a restore must not collide on.
#[macro_export]
macro_rules! declare_record {
    ($ty:ty, entity: $entity:expr, select: $select:expr, alias: $alias:literal, input: $input:ident,
     update: $update:path $(, unique_on_restore: $col:literal => $field:ident)?) => {
        impl $crate::record::Record for $ty {
            const ENTITY: $crate::Entity = $entity;
            fn select_one() -> String {
                format!(
                    concat!("{} WHERE ", $alias, ".tenant_id = $1 AND ", $alias, ".id = $2"),
                    $select
                )
            }
            fn owner(&self) -> Option<uuid::Uuid> {
                $crate::record::AsOwner::as_owner(&self.owner_id)
            }
            fn team(&self) -> Option<uuid::Uuid> {
                self.team_id
            }
            fn in_trash(&self) -> bool {
                self.deleted_at.is_some()
            }
            fn custom(&self) -> Option<&serde_json::Value> {
                Some(&self.custom.0)
            }
            $(
                fn unique_on_restore(&self) -> Option<(&'static str, String)> {
                    self.$field.clone().map(|v| ($col, v))
                }
            )?
        }

        impl $crate::bulk::Editable for $ty {
            fn version(&self) -> i64 {
                self.version
            }
            fn tags(&self) -> &[String] {
                &self.tags.0
            }
            async fn update_owner_or_tags(
                db: &guanxi_platform::db::Db,
                ctx: &guanxi_platform::Ctx,
                id: uuid::Uuid,
                version: i64,
                owner_id: Option<uuid::Uuid>,
                tags: Option<Vec<String>>,
            ) -> guanxi_platform::error::Result<()> {
                let patch = $input {
                    version: Some(version),
                    owner_id: $crate::record::FromOwner::from_owner(owner_id),
                    tags,
                    ..Default::default()
                };
                $update(db, ctx, id, None, patch).await.map(|_| ())
            }
        }
    };
}

/// Reads one record inside a transaction, with no permission check (callers check).
pub async fn load<R: Record>(tx: &mut Tx, tenant_id: Uuid, id: Uuid) -> Result<R> {
    tx.fetch_one(&R::select_one(), args![tenant_id, id]).await
}

/// Reads records by id inside a transaction, in no particular order and with no permission
/// check (callers check): [`Record::select_one`]'s statement with the id compared against a
/// list, 200 ids a statement. Ids that do not exist are left out.
pub async fn load_many<R: Record>(tx: &mut Tx, tenant_id: Uuid, ids: &[Uuid]) -> Result<Vec<R>> {
    let one = R::select_one();
    let head = one.strip_suffix(" = $2").ok_or_else(|| {
        Error::Internal(anyhow::anyhow!(
            "{}: select_one does not end with its id's `= $2`",
            R::TABLE
        ))
    })?;
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(200) {
        let mut q = Sql::new(head);
        q.args.push(tenant_id.into());
        q.push(" IN ").bind_list(chunk.iter().copied());
        out.extend(tx.fetch_sql::<R>(q).await?);
    }
    Ok(out)
}

/// Loads a record for a change the caller's `action` scope must cover (or a share granting it,
/// see [`crate::shares`]): outside the read scope and unshared it does not exist (404);
/// readable but not changeable is 403.
pub async fn load_for<R: Record>(tx: &mut Tx, ctx: &Ctx, id: Uuid, action: Action) -> Result<R> {
    let read = ctx.require(R::TABLE, Action::Read)?;
    let scope = ctx.require(R::TABLE, action)?;
    let r: R = load(tx, ctx.tenant_id, id).await?;
    let (reads, may) = (
        ctx.covers(read, r.owner(), r.team()),
        ctx.covers(scope, r.owner(), r.team()),
    );
    if reads && may {
        return Ok(r);
    }
    let share = share_of(&mut *tx, ctx, id, &r).await?;
    if !reads && share.is_none() {
        return Err(Error::NotFound);
    }
    if !may && !shares::grants(share, action) {
        return Err(Error::Forbidden);
    }
    Ok(r)
}

/// One record the caller may read (its scope or a share), in the trash or not.
pub async fn get<R: Record>(conn: impl Into<Conn<'_>>, ctx: &Ctx, id: Uuid) -> Result<R> {
    let scope = ctx.require(R::TABLE, Action::Read)?;
    let mut conn = conn.into();
    let r: R = conn
        .reborrow()
        .fetch_one(&R::select_one(), args![ctx.tenant_id, id])
        .await?;
    if !ctx.covers(scope, r.owner(), r.team()) && share_of(conn, ctx, id, &r).await?.is_none() {
        return Err(Error::NotFound);
    }
    Ok(r)
}

/// Whether the caller may read row `id` of the declared entity whose table is `table` — the
/// read scope of its module over the row's owner and team, as [`get`] decides — for what hangs
/// off any record by naming its table (an activity about a lead). `None` when it does not exist
/// or is out of scope; otherwise whether it is in the trash.
pub async fn readable(
    conn: impl Into<Conn<'_>>,
    ctx: &Ctx,
    table: &str,
    id: Uuid,
) -> Result<Option<bool>> {
    if table.is_empty() || !table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Ok(None);
    }
    let Some(scope) = ctx.can(table, Action::Read) else {
        return Ok(None);
    };
    type Holder = (
        Option<Uuid>,
        Option<Uuid>,
        Option<chrono::DateTime<chrono::Utc>>,
    );
    let mut conn = conn.into();
    let row: Option<Holder> = conn
        .reborrow()
        .fetch_optional(
            &format!("SELECT owner_id, team_id, deleted_at FROM {table} WHERE tenant_id = $1 AND id = $2"),
            args![ctx.tenant_id, id],
        )
        .await?;
    let Some((owner, team, deleted)) = row else {
        return Ok(None);
    };
    if ctx.covers(scope, owner, team) {
        return Ok(Some(deleted.is_some()));
    }
    let shared = shares::held(conn, ctx, table, id).await?;
    Ok(shared.map(|_| deleted.is_some()))
}

/// Appends (`OR …`) the condition that the row of `type_col`/`id_col` (a record named by its
/// table and id) is one of `entities` the caller may read: [`readable`] in SQL, for lists.
pub fn readable_sql(
    ctx: &Ctx,
    q: &mut Sql,
    entities: &[Entity],
    type_col: &str,
    id_col: &str,
    tenant_col: &str,
) {
    for e in entities {
        let table = e.table();
        if let Some(scope) = ctx.can(table, Action::Read) {
            q.push(&format!(
                " OR ({type_col} = '{table}' AND EXISTS (SELECT 1 FROM {table} r
                    WHERE r.tenant_id = {tenant_col} AND r.id = {id_col}"
            ));
            shares::scope_sql(ctx, q, scope, *e, "r");
            q.push("))");
        }
    }
}

/// Moves a record to the trash (`deleted = true`) or back, audited. Doing it twice is a no-op.
pub async fn set_deleted<R: Record>(db: &Db, ctx: &Ctx, id: Uuid, deleted: bool) -> Result<R> {
    let mut tx = db.begin().await?;
    let before: R = load_for(&mut tx, ctx, id, Action::Delete).await?;
    if before.in_trash() == deleted {
        return Ok(before);
    }
    if let (false, Some((col, value))) = (deleted, before.unique_on_restore()) {
        let taken: i64 = tx
            .scalar(
                &format!(
                    "SELECT COUNT(*) FROM {} WHERE tenant_id = $1 AND {col} = $2 AND deleted_at IS NULL",
                    R::TABLE
                ),
                args![ctx.tenant_id, value],
            )
            .await?;
        if taken > 0 {
            return Err(Error::field(col, "taken"));
        }
    }
    let t = now();
    tx.execute(
        &format!(
            "UPDATE {} SET deleted_at = $1, updated_at = $2, updated_by = $3, version = version + 1
             WHERE tenant_id = $4 AND id = $5",
            R::TABLE
        ),
        args![
            if deleted { Some(t) } else { None },
            t,
            ctx.user_id,
            ctx.tenant_id,
            id
        ],
    )
    .await?;
    let after: R = load(&mut tx, ctx.tenant_id, id).await?;
    // A record in the trash holds no unique custom values; one coming back takes them again.
    let entity = R::ENTITY;
    if deleted {
        custom_fields::release_unique(&mut tx, ctx.tenant_id, entity, id).await?;
    } else {
        let defs = custom_fields::active(&mut tx, ctx.tenant_id, entity).await?;
        let values = after
            .custom()
            .and_then(|c| c.as_object().cloned())
            .unwrap_or_default();
        custom_fields::hold_unique(&mut tx, ctx.tenant_id, entity, id, &defs, &values).await?;
    }
    let action = if deleted { "delete" } else { "restore" };
    audit::record(
        &mut tx,
        ctx,
        action,
        R::TABLE,
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Refuses a new record its creator could not see afterwards (a role limited to its own or its
/// team's records creating one for someone else).
pub fn check_create_scope(
    ctx: &Ctx,
    module: &str,
    owner: Option<Uuid>,
    team: Option<Uuid>,
) -> Result<()> {
    let scope = ctx.require(module, Action::Create)?;
    if ctx.covers(scope, owner, team) {
        Ok(())
    } else {
        Err(Error::field("owner_id", "out_of_scope"))
    }
}

/// Records an ownership change as its own audit event (`transfer`), so the customer's timeline
/// shows who handed the record to whom. With the record's `name`, the new owner is told
/// (`assigned`; a whole book passed on is told once, by `transfer`).
pub async fn audit_transfer(
    tx: &mut Tx,
    ctx: &Ctx,
    entity: Entity,
    id: Uuid,
    before: (Uuid, &str),
    after: (Uuid, &str),
    name: Option<&str>,
) -> Result<()> {
    if before.0 == after.0 {
        return Ok(());
    }
    let table = entity.table();
    if let Some(name) = name {
        notifications::notify(
            tx,
            ctx,
            after.0,
            notifications::Notice {
                kind: "assigned",
                params: serde_json::json!({"entity": table, "name": name, "from": before.1}),
                link: Some(entity.link(id)),
                entity: Some(table),
                entity_id: Some(id),
            },
        )
        .await?;
    }
    let side =
        |(owner, name): (Uuid, &str)| serde_json::json!({"owner_id": owner, "owner_name": name});
    audit::record(
        tx,
        ctx,
        "transfer",
        table,
        Some(id),
        Some(&side(before)),
        Some(&side(after)),
    )
    .await
}

/// Applies the record's `name` (required, kept when absent on update) and `country`.
pub fn apply_name_and_country(
    errs: &mut Errors,
    name_in: &Option<String>,
    country_in: &Option<String>,
    name: &mut String,
    country: &mut String,
) {
    if let Some(n) = name_in {
        match guanxi_platform::validate::name(n) {
            Ok(n) => *name = n,
            Err(c) => errs.add("name", c),
        }
    } else if name.is_empty() {
        errs.add("name", "required");
    }
    if let Some(c) = country_in {
        match normalize::country_code(c) {
            Ok(c) => *country = c,
            Err(code) => errs.add("country", code),
        }
    }
}

/// The search text of a named record: its name with pinyin and initials, phone digits
/// (national and E.164), and any other identifying values (`extra`: email, WeChat id, credit
/// code, company).
pub fn search_of(
    name: &str,
    phone_national: Option<&str>,
    phone_e164: Option<&str>,
    extra: &[Option<&str>],
) -> String {
    let (py, initials) = normalize::pinyin(name);
    let e164_digits = phone_e164.map(normalize::digits);
    normalize::search_text(
        [
            Some(name),
            Some(py.as_str()),
            Some(initials.as_str()),
            phone_national,
            e164_digits.as_deref(),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .flatten(),
    )
}

/// At most this many tags per record, each up to 50 characters.
pub const MAX_TAGS: usize = 30;

/// Replaces a record's tags: each trimmed, blank ones dropped, each kept once in the order
/// given.
pub fn apply_tags(errs: &mut Errors, input: &[String], current: &mut Vec<String>) {
    // Counted before any work: each tag is compared with the ones kept so far.
    if input.len() > MAX_TAGS {
        errs.add("tags", "too_many");
        return;
    }
    let mut tags: Vec<String> = Vec::new();
    for (i, t) in input.iter().enumerate() {
        match normalize::text(t, 50) {
            Ok(Some(t)) if !tags.contains(&t) => tags.push(t),
            Ok(_) => {}
            Err(c) => errs.add(&format!("tags[{i}]"), c),
        }
    }
    if tags.len() > MAX_TAGS {
        errs.add("tags", "too_many");
    }
    *current = tags;
}

/// Appends "has this tag" on a JSON array column.
pub fn tag_sql(backend: Backend, q: &mut Sql, column: &str, tag: &str) {
    match backend {
        Backend::Sqlite => q
            .push(&format!(
                " AND EXISTS (SELECT 1 FROM json_each({column}) t WHERE t.value = "
            ))
            .bind(tag)
            .push(")"),
        Backend::Postgres => q
            .push(&format!(" AND {column} @> "))
            .bind(serde_json::json!([tag])),
    };
}
