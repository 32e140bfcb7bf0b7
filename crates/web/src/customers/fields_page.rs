//! `/admin/custom-fields`: the admin's page to add, change and archive custom fields, through
//! the same `custom_fields` functions as the API.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use guanxi_platform::error::FieldError;
use guanxi_platform::perms::Action;
use guanxi_records::custom_fields::{
    self, CustomFieldFilter, CustomFieldInput, FieldKind, KINDS, SECTIONS,
};
use minijinja::context;
use uuid::Uuid;

use crate::pages::{forbidden_csrf, Signed};
use crate::state::AppState;

pub async fn page(State(s): State<AppState>, p: Signed) -> Response {
    view(&s, &p, StatusCode::OK, vec![], BTreeMap::new()).await
}

async fn view(
    s: &AppState,
    p: &Signed,
    status: StatusCode,
    errors: Vec<FieldError>,
    form: BTreeMap<String, String>,
) -> Response {
    let f = CustomFieldFilter {
        entity: None,
        archived: Some(true),
    };
    let fields = match custom_fields::list(&s.db, &p.ctx, &f).await {
        Ok(f) => f,
        Err(e) => return p.error(s, e),
    };
    let kinds: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
    let entities: Vec<&str> = crate::ENTITIES.iter().map(|e| e.table()).collect();
    p.page_status(
        s,
        status,
        "custom_fields.html",
        "custom_fields",
        context! {
            fields => fields, kinds => kinds, sections => SECTIONS, entities => entities,
            errors => errors, form => form,
            can_edit => p.ctx.can("custom_fields", Action::Update).is_some(),
            can_create => p.ctx.can("custom_fields", Action::Create).is_some(),
        },
    )
}

/// The definition a posted form describes: options one per line, the English label apart.
fn input_of(form: &BTreeMap<String, String>, creating: bool) -> CustomFieldInput {
    let text = |k: &str| form.get(k).map(|v| v.trim().to_owned());
    let mut labels = BTreeMap::new();
    for (field, locale) in [("label_en", "en"), ("label_zh_tw", "zh-TW")] {
        if let Some(l) = text(field).filter(|l| !l.is_empty()) {
            labels.insert(locale.to_owned(), l);
        }
    }
    let options = text("options").map(|o| {
        o.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    let kind = text("kind").and_then(|k| KINDS.into_iter().find(|x| x.as_str() == k));
    let chooses = matches!(kind, Some(FieldKind::Select | FieldKind::MultiSelect));
    CustomFieldInput {
        version: text("version").and_then(|v| v.parse().ok()),
        entity: if creating { text("entity") } else { None },
        key: if creating { text("key") } else { None },
        kind: if creating { kind } else { None },
        label: text("label"),
        labels: Some(labels),
        options: if creating && !chooses { None } else { options },
        required: Some(form.contains_key("required")),
        unique: Some(form.contains_key("unique")),
        default: if creating {
            text("default")
                .filter(|d| !d.is_empty())
                .map(|d| Some(serde_json::Value::String(d)))
        } else {
            None
        },
        section: text("section"),
        position: text("position").and_then(|v| v.parse().ok()),
        archived: if creating {
            None
        } else {
            Some(form.contains_key("archived"))
        },
    }
}

pub async fn create(
    State(s): State<AppState>,
    p: Signed,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    match custom_fields::create(&s.db, &p.ctx, crate::ENTITIES, input_of(&form, true)).await {
        Ok(_) => Redirect::to("/admin/custom-fields").into_response(),
        Err(e) => match p.field_errors(e) {
            Ok(errors) => view(&s, &p, StatusCode::UNPROCESSABLE_ENTITY, errors, form).await,
            Err(e) => p.error(&s, e),
        },
    }
}

pub async fn update(
    State(s): State<AppState>,
    p: Signed,
    Path(id): Path<Uuid>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    if !p.csrf_ok(&form.get("_csrf").cloned()) {
        return forbidden_csrf();
    }
    match custom_fields::update(&s.db, &p.ctx, id, None, input_of(&form, false)).await {
        Ok(_) => Redirect::to("/admin/custom-fields").into_response(),
        Err(e) => match p.field_errors(e) {
            Ok(errors) => {
                view(
                    &s,
                    &p,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    errors,
                    BTreeMap::new(),
                )
                .await
            }
            Err(e) => p.error(&s, e),
        },
    }
}
