//! Public forms: an admin designs a form — fields mapped to lead fields and custom fields,
//! labels per language, an optional consent checkbox, a thank-you message or redirect — and
//! embeds it on a web site. Visitors post to `/public/forms/{key}`; each post goes through the
//! lead intake ([`crate::intake`]), so a person already known is matched, not entered again.
//!
//! Every submission is kept (what was posted, address, browser, referrer, UTM parameters, the
//! outcome and the record it landed on) — also those refused as invalid, spam or too many.
//! Spam is held off without a captcha service: a honeypot field people never see, a minimum
//! time between showing the form and posting it (a token signed with the form's secret), and
//! limits per address per hour and per form per minute. The public key names its tenant, so a
//! key is looked up within that tenant only: one tenant's key can never write into another.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use guanxi_platform::db::{Db, Tx};
use guanxi_platform::error::{Errors, Result};
use guanxi_platform::page::{Page, PageReq, SortKind};
use guanxi_platform::perms::Action;
use guanxi_platform::settings::Setting;
use guanxi_platform::time::{new_id, now};
use guanxi_platform::{
    args, audit, keylock, notifications, ratelimit, teams, validate, version, Ctx, Error,
};
use guanxi_records::custom_fields;
use guanxi_records::normalize;
use guanxi_records::record::Lookups;

use crate::intake::{self, Arrival};
use crate::leads::LeadInput;

/// The lead fields a form may ask for.
pub const LEAD_FIELDS: &[&str] = &[
    "name",
    "company",
    "title",
    "phone",
    "email",
    "wechat",
    "province",
    "city",
    "industry",
    "product_interest",
    "notes",
];

/// What a form's posts become: leads (through the lead intake) or service tickets.
pub const TARGETS: &[&str] = &["leads", "tickets"];

/// The ticket fields a form may ask for (a ticket form: the service desk's web form).
pub const TICKET_FIELDS: &[&str] = &[
    "name",
    "email",
    "phone",
    "company",
    "subject",
    "description",
    "category",
];

/// The fields a form of `target` may ask for (besides its entity's custom fields).
pub fn fields_of(target: &str) -> &'static [&'static str] {
    if target == "tickets" {
        TICKET_FIELDS
    } else {
        LEAD_FIELDS
    }
}

/// The fields a form of `target` must ask, always required: a lead needs a name; a ticket
/// someone to answer and what to answer.
pub fn must_ask(target: &str) -> &'static [&'static str] {
    if target == "tickets" {
        &["name", "email", "description"]
    } else {
        &["name"]
    }
}

/// A post to a ticket form, validated, for the service desk to open as a ticket.
#[derive(Debug, Clone)]
pub struct TicketRequest {
    pub form_name: String,
    /// Who owns a contact made for someone new.
    pub owner_id: Uuid,
    pub tags: Vec<String>,
    /// The answers to the form's own fields (trimmed, empty ones left out).
    pub values: BTreeMap<String, String>,
    pub custom: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Opens tickets from forms: the service desk, handed in by the app (sales does not know
/// tickets). Runs in the submission's transaction, so the post is kept with its ticket or
/// not at all; a refusal naming fields is kept as an invalid post.
pub trait TicketDesk: Send + Sync {
    fn open<'a>(
        &'a self,
        tx: &'a mut Tx,
        ctx: &'a Ctx,
        request: TicketRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Uuid>> + Send + 'a>>;
}

/// The hidden field people never see and robots fill in.
pub const HONEYPOT: &str = "homepage";
/// The signed time the form was shown.
pub const TOKEN: &str = "_t";
/// The consent checkbox.
pub const CONSENT: &str = "consent";
/// Query parameters kept as the submission's campaign attribution.
pub const UTM: &[&str] = &[
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
];
/// At most this many fields on a form, and this many values in a post.
pub const MAX_FIELDS: usize = 30;
pub const MAX_VALUES: usize = 60;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormField {
    /// What the answer fills: a lead field (`name`, `company`, `title`, `phone`, `email`,
    /// `wechat`, `province`, `city`, `industry`, `product_interest`, `notes`) or
    /// `custom.<key>` of a lead custom field. Also the input's name in the posted form.
    pub field: String,
    /// Labels by language (`en`, `zh-CN`, `zh-TW`); at least one.
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Form {
    pub id: Uuid,
    /// What its posts become: `leads` or `tickets`.
    pub target: String,
    /// The public key: the form's address is `/public/forms/{key}`.
    pub key: String,
    #[serde(skip)]
    pub secret: String,
    pub name: String,
    #[schema(value_type = Vec<FormField>)]
    pub fields: sqlx::types::Json<Vec<FormField>>,
    /// The consent checkbox's text by language; absent: no checkbox.
    #[schema(value_type = Option<Object>)]
    pub consent: Option<sqlx::types::Json<BTreeMap<String, String>>>,
    /// The thank-you message by language.
    #[schema(value_type = Object)]
    pub thanks: sqlx::types::Json<BTreeMap<String, String>>,
    /// Where a browser goes after posting (instead of the thank-you message).
    pub redirect_url: Option<String>,
    /// Recorded as the lead's source detail (the campaign, the page).
    pub source_detail: Option<String>,
    /// Tags new leads from this form get.
    #[schema(value_type = Vec<String>)]
    pub tags: sqlx::types::Json<Vec<String>>,
    /// Who owns new leads from this form (until assignment rules decide).
    pub owner_id: Uuid,
    pub owner_name: Option<String>,
    /// The owner's team, if the owner is an active user (read with the form, so a post does
    /// not look the owner up again).
    #[serde(skip)]
    pub owner_team_id: Option<Uuid>,
    #[serde(skip)]
    pub owner_live: i64,
    /// A post sooner than this after the form was shown is taken for a robot.
    pub min_fill_seconds: i64,
    /// Posts one address may make in an hour: a burst of this many, then one each hour/n
    /// (counted per app node).
    pub per_ip_hour: i64,
    /// Posts the form takes in a minute from everyone: a burst of this many, then one each
    /// minute/n (counted per app node).
    pub per_minute: i64,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormInput {
    /// Required on update (or send `If-Match`).
    pub version: Option<i64>,
    /// What its posts become: `leads` (default) or `tickets` (the service desk's web form);
    /// fixed once the form is made.
    pub target: Option<String>,
    pub name: Option<String>,
    /// What it asks. A lead form: the lead's fields (`name`, `company`, `title`, `phone`,
    /// `email`, `wechat`, `province`, `city`, `industry`, `product_interest`, `notes`); a ticket
    /// form: `name`, `email`, `phone`, `company`, `subject`, `description`, `category`. Either:
    /// `custom.<key>` of its entity's custom fields.
    pub fields: Option<Vec<FormField>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<Object>)]
    pub consent: Option<Option<BTreeMap<String, String>>>,
    pub thanks: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub redirect_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub source_detail: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    /// Default: the creator.
    pub owner_id: Option<Uuid>,
    /// Default 3.
    pub min_fill_seconds: Option<i64>,
    /// Default 20.
    pub per_ip_hour: Option<i64>,
    /// Default 60.
    pub per_minute: Option<i64>,
    /// `false` takes the form offline (its address answers 404); default `true`.
    pub active: Option<bool>,
}

const SELECT: &str =
    "SELECT f.id, f.target, f.key, f.secret, f.name, f.fields, f.consent, f.thanks,
    f.redirect_url, f.source_detail, f.tags, f.owner_id, o.name AS owner_name,
    CASE WHEN o.active = TRUE AND o.deleted_at IS NULL THEN o.team_id END AS owner_team_id,
    CAST(CASE WHEN o.active = TRUE AND o.deleted_at IS NULL THEN 1 ELSE 0 END AS BIGINT)
        AS owner_live,
    f.min_fill_seconds, f.per_ip_hour, f.per_minute, f.active, f.created_at, f.updated_at,
    f.version
    FROM forms f LEFT JOIN users o ON o.tenant_id = f.tenant_id AND o.id = f.owner_id";

const LANGUAGES: &[&str] = &["en", "zh-CN", "zh-TW"];

fn labels_ok(errs: &mut Errors, field: &str, labels: &BTreeMap<String, String>, max: usize) {
    if labels.values().all(|l| l.trim().is_empty()) {
        errs.add(field, "required");
    }
    for (lang, l) in labels {
        if !LANGUAGES.contains(&lang.as_str()) {
            errs.add(&format!("{field}.{lang}"), "invalid");
        } else if l.chars().count() > max {
            errs.add(&format!("{field}.{lang}"), "too_long");
        }
    }
}

/// Validates `input` onto `f` (create and update alike).
async fn apply(
    tx: &mut Tx,
    ctx: &Ctx,
    input: &FormInput,
    f: &mut Form,
    creating: bool,
) -> Result<()> {
    let mut errs = Errors::default();
    match &input.target {
        Some(t) if creating && TARGETS.contains(&t.as_str()) => f.target = t.clone(),
        Some(_) if creating => errs.add("target", "invalid"),
        Some(t) if *t != f.target => errs.add("target", "fixed"),
        _ => {}
    }
    if let Some(n) = &input.name {
        match validate::name(n) {
            Ok(n) => f.name = n,
            Err(c) => errs.add("name", c),
        }
    } else if creating {
        errs.add("name", "required");
    }
    if let Some(fields) = &input.fields {
        let defs = custom_fields::live(&mut *tx, ctx.tenant_id, &f.target).await?;
        let own = fields_of(&f.target);
        let must = must_ask(&f.target);
        if fields.len() > MAX_FIELDS {
            errs.add("fields", "too_many");
        }
        let mut seen = std::collections::HashSet::new();
        for (i, fl) in fields.iter().take(MAX_FIELDS).enumerate() {
            let known = own.contains(&fl.field.as_str())
                || fl
                    .field
                    .strip_prefix("custom.")
                    .is_some_and(|k| defs.iter().any(|d| d.key == k));
            if !known {
                errs.add(&format!("fields.{i}.field"), "unknown_field");
            } else if !seen.insert(fl.field.clone()) {
                errs.add(&format!("fields.{i}.field"), "duplicate");
            }
            labels_ok(&mut errs, &format!("fields.{i}.labels"), &fl.labels, 200);
        }
        for m in must {
            if !fields.iter().any(|fl| fl.field == *m) {
                errs.add("fields", &format!("{m}_required"));
            }
        }
        let mut fields = fields.clone();
        for fl in &mut fields {
            // What the record needs is always required.
            fl.required |= must.contains(&fl.field.as_str());
        }
        f.fields = sqlx::types::Json(fields);
    } else if creating {
        errs.add("fields", "required");
    }
    if let Some(consent) = &input.consent {
        if let Some(c) = consent {
            labels_ok(&mut errs, "consent", c, 1000);
        }
        f.consent = consent.clone().map(sqlx::types::Json);
    }
    if let Some(thanks) = &input.thanks {
        labels_ok(&mut errs, "thanks", thanks, 1000);
        f.thanks = sqlx::types::Json(thanks.clone());
    }
    match &input.redirect_url {
        None => {}
        Some(None) => f.redirect_url = None,
        Some(Some(u)) if u.trim().is_empty() => f.redirect_url = None,
        Some(Some(u)) => match normalize::url(u) {
            Ok(u) if u.starts_with("https://") || u.starts_with("http://") => {
                f.redirect_url = Some(u)
            }
            Ok(_) => errs.add("redirect_url", "invalid"),
            Err(c) => errs.add("redirect_url", c),
        },
    }
    if let Some(d) = &input.source_detail {
        match d.as_deref().map(|d| normalize::text(d, 200)) {
            None => f.source_detail = None,
            Some(Ok(d)) => f.source_detail = d,
            Some(Err(c)) => errs.add("source_detail", c),
        }
    }
    if let Some(tags) = &input.tags {
        guanxi_records::record::apply_tags(&mut errs, tags, &mut f.tags.0);
    }
    if let Some(owner) = input.owner_id.or(if creating { ctx.user_id } else { None }) {
        let active: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND id = $2 AND active = $3
                 AND deleted_at IS NULL",
                args![ctx.tenant_id, owner, true],
            )
            .await?;
        if active == 0 {
            errs.add("owner_id", "unknown");
        }
        f.owner_id = owner;
    } else if creating {
        errs.add("owner_id", "required");
    }
    for (field, value, current, range) in [
        (
            "min_fill_seconds",
            input.min_fill_seconds,
            &mut f.min_fill_seconds,
            0..=600,
        ),
        (
            "per_ip_hour",
            input.per_ip_hour,
            &mut f.per_ip_hour,
            1..=10_000,
        ),
        (
            "per_minute",
            input.per_minute,
            &mut f.per_minute,
            1..=100_000,
        ),
    ] {
        match value {
            Some(v) if range.contains(&v) => *current = v,
            Some(_) => errs.add(field, "out_of_range"),
            None => {}
        }
    }
    if let Some(a) = input.active {
        f.active = a;
    }
    errs.finish()
}

fn default_thanks() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "en".to_owned(),
            "Thank you — we will be in touch soon.".to_owned(),
        ),
        ("zh-CN".to_owned(), "谢谢！我们会尽快与您联系。".to_owned()),
        ("zh-TW".to_owned(), "謝謝！我們會盡快與您聯繫。".to_owned()),
    ])
}

/// A new public key: the tenant (so a key is only ever looked up in its own tenant) and 20
/// random characters.
fn new_key(tenant: Uuid) -> String {
    let random = guanxi_platform::secret::random_secret();
    let tail: String = random
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(20)
        .collect();
    format!("{}-{tail}", tenant.simple())
}

pub async fn create(db: &Db, ctx: &Ctx, input: FormInput) -> Result<Form> {
    ctx.require("forms", Action::Create)?;
    let t = now();
    let mut f = Form {
        id: new_id(),
        target: "leads".to_owned(),
        key: new_key(ctx.tenant_id),
        secret: guanxi_platform::secret::random_secret(),
        name: String::new(),
        fields: sqlx::types::Json(vec![]),
        consent: None,
        thanks: sqlx::types::Json(default_thanks()),
        redirect_url: None,
        source_detail: None,
        tags: sqlx::types::Json(vec![]),
        owner_id: Uuid::nil(),
        owner_name: None,
        owner_team_id: None,
        owner_live: 0,
        min_fill_seconds: 3,
        per_ip_hour: 20,
        per_minute: 60,
        active: true,
        created_at: t,
        updated_at: t,
        version: 1,
    };
    let mut tx = db.begin().await?;
    apply(&mut tx, ctx, &input, &mut f, true).await?;
    let taken: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM forms WHERE tenant_id = $1 AND name = $2",
            args![ctx.tenant_id, f.name.as_str()],
        )
        .await?;
    if taken > 0 {
        return Err(Error::field("name", "taken"));
    }
    tx.execute(
        "INSERT INTO forms (tenant_id, id, key, secret, name, fields, consent, thanks, redirect_url,
             source_detail, tags, owner_id, min_fill_seconds, per_ip_hour, per_minute, active,
             created_at, updated_at, created_by, updated_by, version, target)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
             $19, $20, 1, $21)",
        args![
            ctx.tenant_id, f.id, f.key.as_str(), f.secret.as_str(), f.name.as_str(),
            serde_json::json!(f.fields.0), f.consent.as_ref().map(|c| serde_json::json!(c.0)),
            serde_json::json!(f.thanks.0), f.redirect_url.clone(), f.source_detail.clone(),
            serde_json::json!(f.tags.0), f.owner_id, f.min_fill_seconds, f.per_ip_hour,
            f.per_minute, f.active, t, t, ctx.user_id, ctx.user_id, f.target.as_str()
        ],
    )
    .await?;
    let f = load(&mut tx, ctx.tenant_id, f.id).await?;
    audit::record(&mut tx, ctx, "create", "forms", Some(f.id), None, Some(&f)).await?;
    tx.commit().await?;
    Ok(f)
}

async fn load(tx: &mut Tx, tenant: Uuid, id: Uuid) -> Result<Form> {
    tx.fetch_one(
        &format!("{SELECT} WHERE f.tenant_id = $1 AND f.id = $2"),
        args![tenant, id],
    )
    .await
}

pub async fn get(db: &Db, ctx: &Ctx, id: Uuid) -> Result<Form> {
    ctx.require("forms", Action::Read)?;
    db.fetch_one(
        &format!("{SELECT} WHERE f.tenant_id = $1 AND f.id = $2"),
        args![ctx.tenant_id, id],
    )
    .await
}

/// Every form of the tenant, by name.
pub async fn list(db: &Db, ctx: &Ctx) -> Result<Vec<Form>> {
    ctx.require("forms", Action::Read)?;
    db.fetch_all(
        &format!("{SELECT} WHERE f.tenant_id = $1 ORDER BY f.name, f.id LIMIT 500"),
        args![ctx.tenant_id],
    )
    .await
}

pub async fn update(
    db: &Db,
    ctx: &Ctx,
    id: Uuid,
    if_match: Option<i64>,
    input: FormInput,
) -> Result<Form> {
    ctx.require("forms", Action::Update)?;
    let expected = version::expected(if_match, input.version)?;
    let mut tx = db.begin().await?;
    let before = load(&mut tx, ctx.tenant_id, id).await?;
    version::check(expected, before.version)?;
    let mut f = before.clone();
    apply(&mut tx, ctx, &input, &mut f, false).await?;
    if f.name != before.name {
        let taken: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM forms WHERE tenant_id = $1 AND name = $2 AND id <> $3",
                args![ctx.tenant_id, f.name.as_str(), id],
            )
            .await?;
        if taken > 0 {
            return Err(Error::field("name", "taken"));
        }
    }
    version::update(
        &mut tx,
        version::Row {
            table: "forms",
            tenant_id: ctx.tenant_id,
            id,
        },
        expected,
        "name = $1, fields = $2, consent = $3, thanks = $4, redirect_url = $5,
             source_detail = $6, tags = $7, owner_id = $8, min_fill_seconds = $9,
             per_ip_hour = $10, per_minute = $11, active = $12, updated_at = $13,
             updated_by = $14",
        args![
            f.name.as_str(),
            serde_json::json!(f.fields.0),
            f.consent.as_ref().map(|c| serde_json::json!(c.0)),
            serde_json::json!(f.thanks.0),
            f.redirect_url.clone(),
            f.source_detail.clone(),
            serde_json::json!(f.tags.0),
            f.owner_id,
            f.min_fill_seconds,
            f.per_ip_hour,
            f.per_minute,
            f.active,
            now(),
            ctx.user_id
        ],
    )
    .await?;
    let after = load(&mut tx, ctx.tenant_id, id).await?;
    audit::record(
        &mut tx,
        ctx,
        "update",
        "forms",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

// ---- the public side -----------------------------------------------------------------------

/// A live form by its public key (the key's tenant only); anything else is a 404.
pub async fn public(db: &Db, key: &str) -> Result<(Uuid, Form)> {
    let tenant = key
        .split_once('-')
        .and_then(|(t, _)| Uuid::try_parse(t).ok())
        .ok_or(Error::NotFound)?;
    let cache = db.settings();
    if let Some(f) = cache.get(&LIVE, tenant, key) {
        return Ok((tenant, f));
    }
    let f: Form = db
        .fetch_optional(
            &format!("{SELECT} WHERE f.tenant_id = $1 AND f.key = $2 AND f.active = $3"),
            args![tenant, key, true],
        )
        .await?
        .ok_or(Error::NotFound)?;
    cache.put(&LIVE, tenant, key, f.clone());
    Ok((tenant, f))
}

/// A live form by its key with its owner (active, team), read by every post: cached in the
/// process. An unknown key is not kept (posts to made-up keys would crowd out the live ones).
const LIVE: Setting = Setting {
    name: "forms.public",
    tables: &["forms", "users"],
};

/// Every form's flood limits in this process.
static FLOODS: std::sync::LazyLock<ratelimit::Limits> =
    std::sync::LazyLock::new(ratelimit::Limits::default);

/// Who owns what a post to `form` opens (until assignment rules decide), and their team if
/// they are an active user: the form's owner — or, once the owner has left (deactivated or
/// deleted), the longest-standing administrator, told at most once a day to choose a new one,
/// so a visitor is never turned away for the company's settings. With no administrator left
/// the owner stands, and the post is refused naming it.
async fn owner_now(tx: &mut Tx, ctx: &Ctx, form: &Form) -> Result<(Uuid, Option<Option<Uuid>>)> {
    if form.owner_live == 1 {
        return Ok((form.owner_id, Some(form.owner_team_id)));
    }
    let Some((admin, team)) = teams::admins(tx, ctx.tenant_id).await?.into_iter().next() else {
        return Ok((form.owner_id, None));
    };
    let key = format!("form-owner-left:{}", form.id);
    if keylock::hold_noting(
        tx,
        ctx.tenant_id,
        &[],
        &key,
        now(),
        chrono::Duration::days(1),
    )
    .await?
    {
        notifications::notify(
            tx,
            ctx,
            admin,
            notifications::Notice {
                kind: "form_owner_left",
                params: serde_json::json!({"form": form.name,
                    "owner": form.owner_name.clone().unwrap_or_default()}),
                link: Some(format!("/admin/forms/{}", form.id)),
                entity: Some("forms"),
                entity_id: Some(form.id),
            },
        )
        .await?;
    }
    Ok((admin, Some(team)))
}

/// A token saying when the form was shown: `<unix seconds>.<signature>`.
pub fn token(form: &Form, at: DateTime<Utc>) -> String {
    let ts = at.timestamp();
    format!("{ts}.{}", signature(form, ts))
}

fn signature(form: &Form, ts: i64) -> String {
    let digest = Sha256::digest(format!("{}:{}:{ts}", form.secret, form.key).as_bytes());
    hex::encode(&digest[..16])
}

/// When a token says the form was shown, if it is the form's own.
fn shown_at(form: &Form, token: &str) -> Option<i64> {
    let (ts, sig) = token.split_once('.')?;
    let ts: i64 = ts.parse().ok()?;
    (signature(form, ts) == sig).then_some(ts)
}

/// One post to a form, as received.
#[derive(Debug, Clone, Default)]
pub struct Posted {
    pub values: BTreeMap<String, String>,
    pub ip: String,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
}

/// What became of a post the visitor is thanked for.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Submitted {
    /// `created`, `matched` or `repeated` — or `spam`, which is thanked like the rest so a
    /// robot learns nothing.
    pub outcome: String,
    /// The thank-you message in the visitor's language.
    pub message: String,
    pub redirect_url: Option<String>,
}

/// Takes a post to the form `key`: kept whatever happens; a person arriving through the lead
/// intake. Refused: an unknown or offline form (404), too many posts (429), missing or invalid
/// fields (422, each named). Spam is kept and thanked.
pub async fn submit(
    db: &Db,
    key: &str,
    posted: Posted,
    lang: &str,
    desk: &dyn TicketDesk,
) -> Result<Submitted> {
    let (tenant, form) = public(db, key).await?;
    let at = now();
    let utm: BTreeMap<&str, &str> = UTM
        .iter()
        .filter_map(|k| posted.values.get(*k).map(|v| (*k, v.as_str())))
        .collect();
    let utm = serde_json::json!(utm);
    let thanks = Submitted {
        outcome: String::new(),
        message: pick(&form.thanks.0, lang),
        redirect_url: form.redirect_url.clone(),
    };
    let keep = |outcome: &'static str,
                reason: Option<String>,
                payload: bool,
                landed: Option<(String, Uuid)>| Keep {
        tenant,
        form: form.id,
        at,
        posted: &posted,
        utm: utm.clone(),
        outcome,
        reason,
        payload,
        landed,
    };
    // Floods: a burst of a form's limits, then their rate (`ratelimit`), counted in memory —
    // constant work however hard a form is hit.
    let limits = [
        ratelimit::Limit {
            key: format!("form:{}:ip:{}", form.id, posted.ip),
            n: form.per_ip_hour,
            period: Duration::from_secs(3600),
        },
        ratelimit::Limit {
            key: format!("form:{}:minute", form.id),
            n: form.per_minute,
            period: Duration::from_secs(60),
        },
    ];
    if let Err(r) = FLOODS.take(&limits, Instant::now()) {
        let reason = if r.index == 0 {
            "per_ip_hour"
        } else {
            "per_minute"
        };
        keep("rate_limited", Some(reason.into()), false, None)
            .store_in(db)
            .await?;
        return Err(Error::rate_limited(r.wait));
    }
    let spam = if posted
        .values
        .get(HONEYPOT)
        .is_some_and(|v| !v.trim().is_empty())
    {
        Some("honeypot")
    } else if posted.values.len() > MAX_VALUES {
        Some("too_many_values")
    } else {
        match posted.values.get(TOKEN).filter(|t| !t.is_empty()) {
            // A plain HTML form (no script) has no token: the honeypot and the limits hold it.
            None => None,
            Some(t) => match shown_at(&form, t) {
                None => Some("bad_token"),
                Some(ts) if at.timestamp() - ts < form.min_fill_seconds => Some("too_fast"),
                Some(_) => None,
            },
        }
    };
    if let Some(reason) = spam {
        keep("spam", Some(reason.into()), true, None)
            .store_in(db)
            .await?;
        return Ok(Submitted {
            outcome: "spam".into(),
            ..thanks
        });
    }
    if form.target == "tickets" {
        let (values, custom) = match answers(db, tenant, &form, &posted).await {
            Ok(a) => a,
            Err(e) => {
                keep("invalid", Some(reasons(&e)), true, None)
                    .store_in(db)
                    .await?;
                return Err(e);
            }
        };
        let ctx = Ctx::system(tenant);
        let mut tx = db.begin().await?;
        let (owner_id, _) = owner_now(&mut tx, &ctx, &form).await?;
        let request = TicketRequest {
            form_name: form.name.clone(),
            owner_id,
            tags: form.tags.0.clone(),
            values,
            custom,
        };
        let id = match desk.open(&mut tx, &ctx, request).await {
            Ok(id) => id,
            Err(e @ Error::Validation(_)) => {
                drop(tx);
                keep("invalid", Some(reasons(&e)), true, None)
                    .store_in(db)
                    .await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        keep("created", None, true, Some(("tickets".into(), id)))
            .store(&mut tx)
            .await?;
        tx.commit().await?;
        return Ok(Submitted {
            outcome: "created".into(),
            ..thanks
        });
    }
    let input = match lead_input(db, tenant, &form, &posted).await {
        Ok(i) => i,
        Err(e) => {
            keep("invalid", Some(reasons(&e)), true, None)
                .store_in(db)
                .await?;
            return Err(e);
        }
    };
    let ctx = Ctx::system(tenant);
    let mut tx = db.begin().await?;
    let (owner_id, owner_team) = owner_now(&mut tx, &ctx, &form).await?;
    let arrival = Arrival {
        source: "form".into(),
        detail: Some(
            form.source_detail
                .clone()
                .unwrap_or_else(|| form.name.clone()),
        ),
        extra: serde_json::json!({
            "form_id": form.id,
            "form": form.name,
            "consent": form.consent.as_ref().map(|c| pick(&c.0, lang)),
            "utm": utm,
            "referrer": posted.referrer,
        }),
        fallback_owner: Some(owner_id),
    };
    let mut lk = Lookups::default();
    lk.owner_known(owner_id, owner_team);
    let result = match intake::intake_in(&mut tx, &ctx, input, arrival, &mut lk).await {
        Ok(r) => r,
        Err(e @ Error::Validation(_)) => {
            drop(tx);
            keep("invalid", Some(reasons(&e)), true, None)
                .store_in(db)
                .await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let outcome = match result.outcome {
        intake::Outcome::Created => "created",
        intake::Outcome::Matched => "matched",
        intake::Outcome::Repeated => "repeated",
    };
    keep(
        outcome,
        None,
        true,
        Some((result.entity.clone(), result.id)),
    )
    .store(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(Submitted {
        outcome: outcome.into(),
        ..thanks
    })
}

/// The post's answers to the form's own fields (required ones present, consent given when
/// asked) and its custom values, read from text.
async fn answers(
    db: &Db,
    tenant: Uuid,
    form: &Form,
    posted: &Posted,
) -> Result<(
    BTreeMap<String, String>,
    Option<serde_json::Map<String, serde_json::Value>>,
)> {
    let mut errs = Errors::default();
    let value = |name: &str| {
        posted
            .values
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut own = BTreeMap::new();
    for fl in form.fields.0.iter() {
        let v = value(&fl.field);
        if fl.required && v.is_none() {
            errs.add(&fl.field, "required");
        }
        if let (Some(v), false) = (v, fl.field.starts_with("custom.")) {
            own.insert(fl.field.clone(), v);
        }
    }
    if form.consent.is_some() && value(CONSENT).is_none() {
        errs.add(CONSENT, "required");
    }
    errs.finish()?;
    if !form
        .fields
        .0
        .iter()
        .any(|fl| fl.field.starts_with("custom."))
    {
        return Ok((own, None));
    }
    let defs = custom_fields::live(db, tenant, &form.target).await?;
    let asked: Vec<_> = defs
        .into_iter()
        .filter(|d| {
            form.fields
                .0
                .iter()
                .any(|fl| fl.field == format!("custom.{}", d.key))
        })
        .collect();
    Ok((own, custom_fields::from_text(&asked, &|name| value(name))))
}

/// The post as a lead: its answers, the form's owner and tags.
async fn lead_input(db: &Db, tenant: Uuid, form: &Form, posted: &Posted) -> Result<LeadInput> {
    let (own, custom) = answers(db, tenant, form, posted).await?;
    let obj: serde_json::Map<String, serde_json::Value> = own
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let mut input: LeadInput = serde_json::from_value(serde_json::Value::Object(obj))
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    input.custom = custom;
    if !form.tags.0.is_empty() {
        input.tags = Some(form.tags.0.clone());
    }
    Ok(input)
}

fn reasons(e: &Error) -> String {
    match e {
        Error::Validation(v) => v
            .iter()
            .map(|f| format!("{}: {}", f.field, f.code))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The text in `lang`, else Chinese for any Chinese, else English, else any.
pub fn pick(labels: &BTreeMap<String, String>, lang: &str) -> String {
    let nonempty = |k: &str| labels.get(k).filter(|v| !v.trim().is_empty()).cloned();
    nonempty(lang)
        .or_else(|| {
            lang.starts_with("zh")
                .then(|| nonempty("zh-CN").or_else(|| nonempty("zh-TW")))
                .flatten()
        })
        .or_else(|| nonempty("en"))
        .or_else(|| labels.values().find(|v| !v.trim().is_empty()).cloned())
        .unwrap_or_default()
}

/// A submission about to be kept.
struct Keep<'a> {
    tenant: Uuid,
    form: Uuid,
    at: DateTime<Utc>,
    posted: &'a Posted,
    utm: serde_json::Value,
    outcome: &'static str,
    reason: Option<String>,
    /// Whether to keep what was posted (not for a flood's posts).
    payload: bool,
    landed: Option<(String, Uuid)>,
}

impl Keep<'_> {
    async fn store(self, tx: &mut Tx) -> Result<()> {
        let clip = |s: &Option<String>| {
            s.as_deref()
                .map(|s| s.chars().take(500).collect::<String>())
        };
        tx.execute(
            "INSERT INTO form_submissions (tenant_id, id, form_id, at, ip, user_agent, referrer,
                 utm, payload, outcome, reason, entity, record_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            args![
                self.tenant,
                new_id(),
                self.form,
                self.at,
                self.posted.ip.as_str(),
                clip(&self.posted.user_agent),
                clip(&self.posted.referrer),
                self.utm,
                self.payload.then(|| serde_json::json!(self.posted.values)),
                self.outcome,
                self.reason,
                self.landed.as_ref().map(|(e, _)| e.clone()),
                self.landed.map(|(_, id)| id)
            ],
        )
        .await?;
        Ok(())
    }

    async fn store_in(self, db: &Db) -> Result<()> {
        let mut tx = db.begin().await?;
        self.store(&mut tx).await?;
        tx.commit().await
    }
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Submission {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub ip: String,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
    #[schema(value_type = Object)]
    pub utm: sqlx::types::Json<serde_json::Value>,
    /// What was posted (absent for posts refused as a flood).
    #[schema(value_type = Option<Object>)]
    pub payload: Option<sqlx::types::Json<serde_json::Value>>,
    /// `created`, `matched`, `repeated`, `invalid`, `spam` or `rate_limited`.
    pub outcome: String,
    pub reason: Option<String>,
    /// Where the person landed: `leads` or `contacts`, and the record.
    pub entity: Option<String>,
    pub record_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SubmissionFilter {
    /// Only this outcome.
    pub outcome: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A form's submissions, newest first.
pub async fn submissions(
    db: &Db,
    ctx: &Ctx,
    form: Uuid,
    f: &SubmissionFilter,
) -> Result<Page<Submission>> {
    let _ = get(db, ctx, form).await?;
    let page = PageReq {
        limit: f.limit,
        cursor: f.cursor.clone(),
        sort: Some("-at".into()),
    };
    let sort = page.sort(&[("at", "s.at", SortKind::Time)])?;
    let mut q = guanxi_platform::db::Sql::new(
        "SELECT s.id, s.at, s.ip, s.user_agent, s.referrer, s.utm, s.payload, s.outcome, s.reason,
             s.entity, s.record_id
         FROM form_submissions s WHERE s.tenant_id = ",
    );
    q.bind(ctx.tenant_id).push(" AND s.form_id = ").bind(form);
    if let Some(o) = f.outcome.as_deref().filter(|o| !o.is_empty()) {
        q.push(" AND s.outcome = ").bind(o);
    }
    let limit = page.apply(&mut q, &sort, "s.id")?;
    let rows: Vec<Submission> = db.fetch_sql(q).await?;
    Ok(Page::from_rows(rows, limit, |s| {
        sort.cursor(guanxi_platform::db::sqlite_time(&s.at), s.id)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> Form {
        Form {
            id: Uuid::nil(),
            target: "leads".into(),
            key: "k".into(),
            secret: "s3cret".into(),
            name: "n".into(),
            fields: sqlx::types::Json(vec![]),
            consent: None,
            thanks: sqlx::types::Json(default_thanks()),
            redirect_url: None,
            source_detail: None,
            tags: sqlx::types::Json(vec![]),
            owner_id: Uuid::nil(),
            owner_name: None,
            owner_team_id: None,
            owner_live: 1,
            min_fill_seconds: 3,
            per_ip_hour: 20,
            per_minute: 60,
            active: true,
            created_at: now(),
            updated_at: now(),
            version: 1,
        }
    }

    #[test]
    fn tokens_are_the_forms_own() {
        let f = form();
        let at = now();
        let t = token(&f, at);
        assert_eq!(shown_at(&f, &t), Some(at.timestamp()));
        let other = Form {
            secret: "other".into(),
            ..form()
        };
        assert_eq!(shown_at(&other, &t), None);
        // The same signature on another time is no token of this form.
        let sig = t.split_once('.').map(|(_, sig)| sig).unwrap_or_default();
        let forged = format!("{}.{sig}", at.timestamp() - 60);
        assert_eq!(shown_at(&f, &forged), None);
        assert_eq!(shown_at(&f, "garbage"), None);
    }

    #[test]
    fn messages_fall_back_sensibly() {
        let m = default_thanks();
        assert!(pick(&m, "zh-TW").contains("謝謝"));
        assert!(pick(&m, "fr").starts_with("Thank"));
        let zh_only = BTreeMap::from([("zh-CN".to_owned(), "谢谢".to_owned())]);
        assert_eq!(pick(&zh_only, "zh-TW"), "谢谢");
        assert_eq!(pick(&zh_only, "en"), "谢谢");
    }
}
