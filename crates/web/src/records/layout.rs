//! The layout of a record as pages show it: the entity's built-in profile groups (each
//! module's `*_SECTIONS`) with the tenant's custom fields placed in the group each was given. Forms, detail pages and the posted-form
//! parser all read this one layout, so a custom field appears, validates and saves the same way
//! as a built-in one.

use std::collections::BTreeMap;

use chrono::TimeZone;
use guanxi_platform::users::{self, UserFilter};
use guanxi_platform::Error;
use guanxi_records::custom_fields::{self, CustomField, FieldKind};
use guanxi_records::Entity;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::pages::Signed;
use crate::state::AppState;

/// One field of a form or detail page.
#[derive(Debug, Serialize)]
pub struct FieldView {
    /// The input's name: the API field, or `custom.<key>`.
    pub name: String,
    /// How the input is drawn (`text`, `textarea`, `choice`, `choices`, `yesno`, `user`, …).
    pub kind: &'static str,
    pub required: bool,
    /// A custom field's label in the reader's language (built-in fields are translated by
    /// name).
    pub label: Option<String>,
    pub options: Vec<String>,
    /// A coded choice's message prefix: option `o` reads `t(codes ~ o)`.
    pub codes: Option<&'static str>,
    pub custom: bool,
}

#[derive(Debug, Serialize)]
pub struct SectionView {
    pub key: &'static str,
    pub fields: Vec<FieldView>,
}

pub struct Layout {
    pub sections: Vec<SectionView>,
    pub defs: Vec<CustomField>,
}

/// One form field: name (as in the API), input kind, required.
#[derive(Serialize)]
pub struct Field {
    pub name: &'static str,
    pub kind: &'static str,
    pub required: bool,
    /// For kind `coded`: the message prefix and the options.
    pub codes: Option<(&'static str, &'static [&'static str])>,
}

/// A built-in profile group of an entity's form and page.
#[derive(Serialize)]
pub struct Section {
    pub key: &'static str,
    pub fields: &'static [Field],
}

pub const fn f(name: &'static str, kind: &'static str) -> Field {
    Field {
        name,
        kind,
        required: false,
        codes: None,
    }
}

pub const fn req(name: &'static str, kind: &'static str) -> Field {
    Field {
        name,
        kind,
        required: true,
        codes: None,
    }
}

/// A choice among fixed codes, each option shown as the message `prefix` + code (a ticket's
/// status as `ticket.status.open`).
pub const fn coded(
    name: &'static str,
    prefix: &'static str,
    options: &'static [&'static str],
) -> Field {
    Field {
        name,
        kind: "coded",
        required: true,
        codes: Some((prefix, options)),
    }
}

fn input_kind(k: FieldKind) -> &'static str {
    match k {
        FieldKind::Text => "text",
        FieldKind::LongText => "textarea",
        FieldKind::Number => "number",
        FieldKind::Money => "money",
        FieldKind::Date => "date",
        FieldKind::Datetime => "datetime",
        FieldKind::Boolean => "yesno",
        FieldKind::Select => "choice",
        FieldKind::MultiSelect => "choices",
        FieldKind::User => "user",
        FieldKind::Url => "url",
        FieldKind::Email => "email",
        FieldKind::Phone => "tel",
    }
}

/// The entity's built-in groups with the live custom fields placed in them, in the seed's
/// order of groups (groups only custom fields use, such as `sales` or `image`, appear when they
/// have fields).
pub async fn layout(
    s: &AppState,
    p: &Signed,
    entity: Entity,
    builtin: &[Section],
) -> Result<Layout, Error> {
    let defs = custom_fields::active_in(&s.db, p.ctx.tenant_id, entity).await?;
    let mut sections = Vec::new();
    for key in custom_fields::SECTIONS {
        let mut fields: Vec<FieldView> = builtin
            .iter()
            .filter(|s| s.key == *key)
            .flat_map(|s| s.fields)
            .map(|f| FieldView {
                name: f.name.to_owned(),
                kind: f.kind,
                required: f.required,
                label: None,
                options: f
                    .codes
                    .map(|(_, o)| o.iter().map(|o| (*o).to_owned()).collect())
                    .unwrap_or_default(),
                codes: f.codes.map(|(prefix, _)| prefix),
                custom: false,
            })
            .collect();
        fields.extend(
            defs.iter()
                .filter(|d| d.section == *key)
                .map(|d| FieldView {
                    name: format!("custom.{}", d.key),
                    kind: input_kind(d.kind),
                    required: d.required,
                    label: Some(d.label_in(&p.ctx.locale).to_owned()),
                    options: d.options.clone(),
                    codes: None,
                    custom: true,
                }),
        );
        if !fields.is_empty() {
            sections.push(SectionView { key, fields });
        }
    }
    Ok(Layout { sections, defs })
}

impl Layout {
    /// Multi-select checkboxes post as `custom.<key>|<option>`; this folds them into one
    /// `custom.<key>` value (options joined by `,`), blank when none is ticked.
    pub fn fold_choices(&self, form: &mut BTreeMap<String, String>) {
        for d in self
            .defs
            .iter()
            .filter(|d| d.kind == FieldKind::MultiSelect)
        {
            let name = format!("custom.{}", d.key);
            if !form.contains_key(&format!("{name}|")) {
                continue; // the form did not show the field
            }
            let prefix = format!("{name}|");
            let ticked: Vec<&str> = d
                .options
                .iter()
                .filter(|o| form.contains_key(&format!("{prefix}{o}")))
                .map(String::as_str)
                .collect();
            let joined = ticked.join(",");
            form.retain(|k, _| !k.starts_with(&prefix));
            form.insert(name, joined);
        }
    }

    /// The `custom` object of a posted form, as the API takes it: money typed in yuan becomes
    /// fen, a local date-time becomes an instant in the user's time zone, blank clears. What
    /// cannot be read is passed on as typed, for the shared validation to name.
    pub fn custom_input(
        &self,
        form: &BTreeMap<String, String>,
        tz: chrono_tz::Tz,
    ) -> Option<Map<String, Value>> {
        let mut obj = Map::new();
        for d in &self.defs {
            let Some(raw) = form.get(&format!("custom.{}", d.key)).map(|v| v.trim()) else {
                continue;
            };
            let v = if raw.is_empty() {
                Value::Null
            } else {
                match d.kind {
                    FieldKind::Money => crate::money::parse(raw)
                        .map(Value::from)
                        .unwrap_or_else(|| Value::String(raw.to_owned())),
                    FieldKind::Datetime => {
                        chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
                            .ok()
                            .and_then(|n| tz.from_local_datetime(&n).earliest())
                            .map(|t| Value::String(t.to_rfc3339()))
                            .unwrap_or_else(|| Value::String(raw.to_owned()))
                    }
                    _ => Value::String(raw.to_owned()),
                }
            };
            obj.insert(d.key.clone(), v);
        }
        (!obj.is_empty()).then_some(obj)
    }

    /// A record as its edit form is filled in: its own fields, plus `custom.<key>` written as
    /// the inputs take them.
    pub fn form_values(&self, record: &impl Serialize, tz: chrono_tz::Tz) -> minijinja::Value {
        let mut v = serde_json::to_value(record).unwrap_or_default();
        let custom = v.get("custom").cloned().unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            // Built-in money fields are typed in yuan, as `form_input` reads them back.
            for f in self
                .sections
                .iter()
                .flat_map(|s| &s.fields)
                .filter(|f| !f.custom && f.kind == "money")
            {
                if let Some(fen) = obj.get(&f.name).and_then(Value::as_i64) {
                    obj.insert(f.name.clone(), Value::String(typed_money(fen)));
                }
            }
            for d in &self.defs {
                let Some(x) = custom.get(&d.key).filter(|x| !x.is_null()) else {
                    continue;
                };
                let text = match (d.kind, x) {
                    (FieldKind::Money, Value::Number(n)) => {
                        typed_money(n.as_i64().unwrap_or_default())
                    }
                    (FieldKind::Datetime, Value::String(s)) => {
                        chrono::DateTime::parse_from_rfc3339(s)
                            .map(|t| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string())
                            .unwrap_or_else(|_| s.clone())
                    }
                    (FieldKind::Boolean, Value::Bool(b)) => b.to_string(),
                    (_, Value::Array(items)) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                    (_, Value::String(s)) => s.clone(),
                    (_, other) => other.to_string(),
                };
                obj.insert(format!("custom.{}", d.key), Value::String(text));
            }
        }
        minijinja::Value::from_serialize(&v)
    }

    /// A record's custom values as people read them (`custom.<key>` → text), for detail pages
    /// and list cells.
    pub async fn shown(
        &self,
        s: &AppState,
        p: &Signed,
        custom: &Value,
    ) -> BTreeMap<String, String> {
        let names = self.user_names(s, p).await;
        self.shown_with(p, custom, &names)
    }

    /// [`Layout::shown`] with the user names already looked up (lists show many records).
    pub fn shown_with(
        &self,
        p: &Signed,
        custom: &Value,
        names: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let yes = crate::i18n::t(&p.ctx.locale, "common.yes");
        let no = crate::i18n::t(&p.ctx.locale, "common.no");
        self.defs
            .iter()
            .map(|d| {
                let mut text = custom_fields::display(d, custom.get(&d.key), (&yes, &no), |id| {
                    names.get(id).cloned()
                })
                .into_owned();
                if d.kind == FieldKind::Datetime {
                    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&text) {
                        text = t
                            .with_timezone(&p.time_zone)
                            .format("%Y-%m-%d %H:%M")
                            .to_string();
                    }
                }
                (format!("custom.{}", d.key), text)
            })
            .collect()
    }

    /// Id → name of the tenant's users, when a user field needs them.
    pub async fn user_names(&self, s: &AppState, p: &Signed) -> BTreeMap<String, String> {
        if !self.defs.iter().any(|d| d.kind == FieldKind::User) {
            return BTreeMap::new();
        }
        let f = UserFilter {
            limit: Some(200),
            ..Default::default()
        };
        match users::list(&s.db, &p.ctx, &f).await {
            Ok(page) => page
                .items
                .into_iter()
                .map(|u| (u.id.to_string(), u.name))
                .collect(),
            Err(_) => BTreeMap::new(),
        }
    }
}

/// A posted form as the API input: blank optional fields clear, blank required ones are
/// reported as missing, owner and country are left alone when blank.
pub fn form_input<T: serde::de::DeserializeOwned>(
    layout: &Layout,
    p: &Signed,
    form: &BTreeMap<String, String>,
) -> Result<T, Error> {
    let mut obj = serde_json::Map::new();
    for field in layout
        .sections
        .iter()
        .flat_map(|s| &s.fields)
        .filter(|f| !f.custom)
    {
        let Some(v) = form.get(&field.name).map(|v| v.trim()) else {
            continue;
        };
        let value = match (v.is_empty(), field.required, field.kind) {
            (_, _, "tags") => v
                .split([',', '，', '、', ';', '；'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| serde_json::Value::String(t.to_owned()))
                .collect(),
            (true, true, _) => serde_json::Value::String(String::new()),
            (true, false, "owner" | "country") => continue,
            (true, false, _) => serde_json::Value::Null,
            // Money is typed in yuan and sent in fen; a whole number as a number.
            (false, _, "money") => match crate::money::parse(v) {
                Some(minor) => minor.into(),
                None => return Err(Error::field(&field.name, "invalid")),
            },
            (false, _, "number") => match v.parse::<i64>() {
                Ok(n) => n.into(),
                Err(_) => return Err(Error::field(&field.name, "invalid")),
            },
            (false, ..) => serde_json::Value::String(v.to_owned()),
        };
        obj.insert(field.name.clone(), value);
    }
    if let Some(custom) = layout.custom_input(form, p.time_zone) {
        obj.insert("custom".into(), serde_json::Value::Object(custom));
    }
    if let Some(v) = form.get("version").and_then(|v| v.parse::<i64>().ok()) {
        obj.insert("version".into(), v.into());
    }
    serde_json::from_value(serde_json::Value::Object(obj))
        .map_err(|e| Error::BadRequest(e.to_string()))
}

/// Minor units as a form shows them for typing: `123450` → `1234.50` (no sign, no grouping).
fn typed_money(fen: i64) -> String {
    format!(
        "{}{}.{:02}",
        if fen < 0 { "-" } else { "" },
        fen.unsigned_abs() / 100,
        fen.unsigned_abs() % 100
    )
}
