//! Conditions on a lead, shared by assignment and scoring rules: each names a field, an
//! operator and a value; a rule's conditions must all hold (none: it always applies). A lead
//! is seen as its facts — a JSON object of its fields, custom values under `custom`, and
//! `touches`, how often the person reached out, and `logged`, the calls, emails, meetings and
//! visits logged with them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use guanxi_platform::error::Errors;

/// The lead fields a condition may test (besides `custom.<key>`).
pub const FIELDS: &[&str] = &[
    "source",
    "source_detail",
    "status",
    "company",
    "title",
    "industry",
    "province",
    "city",
    "product_interest",
    "score",
    "touches",
    "logged",
    "tags",
];

pub const OPS: &[&str] = &["eq", "ne", "in", "contains", "gte", "lte", "exists"];

/// At most this many conditions a rule.
pub const MAX_CONDITIONS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RuleCondition)]
pub struct Condition {
    /// A lead field (`source`, `source_detail`, `status`, `company`, `title`, `industry`,
    /// `province`, `city`, `product_interest`, `score`, `touches`, `logged`, `tags`) or
    /// `custom.<key>`.
    pub field: String,
    /// `eq`, `ne`, `in` (any of a list), `contains`, `gte`, `lte` (numbers), `exists`.
    pub op: String,
    /// Text, a number, or a list for `in`; ignored by `exists`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub value: Value,
}

/// Checks conditions as given by an admin, errors named `<prefix>.<i>.<part>`.
pub fn check(errs: &mut Errors, prefix: &str, conds: &[Condition], custom_keys: &[String]) {
    if conds.len() > MAX_CONDITIONS {
        errs.add(prefix, "too_many");
        return;
    }
    for (i, c) in conds.iter().enumerate() {
        let known = FIELDS.contains(&c.field.as_str())
            || c.field
                .strip_prefix("custom.")
                .is_some_and(|k| custom_keys.iter().any(|x| x == k));
        if !known {
            errs.add(&format!("{prefix}.{i}.field"), "unknown_field");
        }
        if !OPS.contains(&c.op.as_str()) {
            errs.add(&format!("{prefix}.{i}.op"), "invalid");
            continue;
        }
        let ok = match c.op.as_str() {
            "exists" => true,
            "gte" | "lte" => c.value.is_number(),
            "in" => c
                .value
                .as_array()
                .is_some_and(|a| !a.is_empty() && a.len() <= 200 && a.iter().all(is_scalar)),
            _ => is_scalar(&c.value) && !c.value.is_null(),
        };
        if !ok {
            errs.add(&format!("{prefix}.{i}.value"), "invalid");
        }
    }
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The value of `field` in the lead's facts.
fn lookup<'a>(facts: &'a Value, field: &str) -> Option<&'a Value> {
    match field.strip_prefix("custom.") {
        Some(k) => facts.get("custom").and_then(|c| c.get(k)),
        None => facts.get(field),
    }
    .filter(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()))
}

impl Condition {
    pub fn holds(&self, facts: &Value) -> bool {
        let v = lookup(facts, &self.field);
        // A list (tags, a multi-select) holds when any of its items does.
        if let Some(Value::Array(items)) = v {
            return match self.op.as_str() {
                "exists" => !items.is_empty(),
                "ne" => !items.iter().any(|i| self.one(Some(i), "eq")),
                op => items.iter().any(|i| self.one(Some(i), op)),
            };
        }
        self.one(v, &self.op)
    }

    fn one(&self, v: Option<&Value>, op: &str) -> bool {
        match op {
            "exists" => v.is_some(),
            "eq" => v.and_then(text) == text(&self.value),
            "ne" => v.and_then(text) != text(&self.value),
            "contains" => match (v.and_then(text), text(&self.value)) {
                (Some(have), Some(want)) => have.contains(&want),
                _ => false,
            },
            "in" => {
                let have = v.and_then(text);
                have.is_some()
                    && self
                        .value
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| text(x) == have))
            }
            "gte" | "lte" => match (v.and_then(number), number(&self.value)) {
                (Some(have), Some(want)) if op == "gte" => have >= want,
                (Some(have), Some(want)) => have <= want,
                _ => false,
            },
            _ => false,
        }
    }
}

/// Conditions typed one a line, as admin pages take them: `province in 广东, 广西`,
/// `industry = 制造`, `title contains 经理`, `score >= 60`, `touches >= 1`, `company exists`
/// (`=`, `!=`, `in`, `contains`, `>=`, `<=`, `exists`). The error is the line number (from 1).
pub fn parse(text: &str) -> std::result::Result<Vec<Condition>, usize> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, char::is_whitespace);
        let field = parts.next().unwrap_or_default().to_owned();
        let op = parts.next().unwrap_or_default();
        let rest = parts.next().unwrap_or_default().trim();
        let op = match op {
            "=" | "==" | "eq" => "eq",
            "!=" | "ne" => "ne",
            "in" => "in",
            "contains" | "包含" => "contains",
            ">=" | "gte" => "gte",
            "<=" | "lte" => "lte",
            "exists" | "有值" => "exists",
            _ => return Err(i + 1),
        };
        let value = match op {
            "exists" => Value::Null,
            "in" => Value::Array(
                rest.split([',', '，', '、'])
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| Value::String(v.to_owned()))
                    .collect(),
            ),
            "gte" | "lte" => match rest
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
            {
                Some(n) => Value::Number(n),
                None => return Err(i + 1),
            },
            _ if rest.is_empty() => return Err(i + 1),
            _ => Value::String(rest.to_owned()),
        };
        out.push(Condition {
            field,
            op: op.to_owned(),
            value,
        });
    }
    Ok(out)
}

/// The conditions as [`parse`] reads them, one a line.
pub fn format(conds: &[Condition]) -> String {
    conds
        .iter()
        .map(|c| {
            let op = match c.op.as_str() {
                "eq" => "=",
                "ne" => "!=",
                "gte" => ">=",
                "lte" => "<=",
                other => other,
            };
            let value = match &c.value {
                Value::Array(a) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            format!("{} {op} {value}", c.field).trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether every condition holds.
pub fn all_hold(conds: &[Condition], facts: &Value) -> bool {
    conds.iter().all(|c| c.holds(facts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(field: &str, op: &str, value: Value) -> Condition {
        Condition {
            field: field.into(),
            op: op.into(),
            value,
        }
    }

    #[test]
    fn conditions_read_the_facts() {
        let facts = json!({"province": "广东", "industry": "Manufacturing", "score": 70,
            "tags": ["展会", "VIP"], "custom": {"budget": 500000}, "company": null});
        assert!(c("province", "eq", json!("广东")).holds(&facts));
        assert!(c("industry", "eq", json!("manufacturing ")).holds(&facts));
        assert!(c("province", "in", json!(["广东", "广西"])).holds(&facts));
        assert!(!c("province", "in", json!(["北京"])).holds(&facts));
        assert!(c("industry", "contains", json!("factur")).holds(&facts));
        assert!(c("score", "gte", json!(70)).holds(&facts));
        assert!(!c("score", "lte", json!(69)).holds(&facts));
        assert!(c("custom.budget", "gte", json!(100000)).holds(&facts));
        assert!(c("tags", "eq", json!("VIP")).holds(&facts));
        assert!(!c("tags", "ne", json!("VIP")).holds(&facts));
        assert!(!c("company", "exists", Value::Null).holds(&facts));
        assert!(
            c("city", "ne", json!("深圳")).holds(&facts),
            "absent is not 深圳"
        );
        assert!(!c("city", "eq", json!("深圳")).holds(&facts));
        assert!(all_hold(&[], &facts));
    }

    #[test]
    fn typed_conditions_read_and_write_back() -> Result<(), usize> {
        let text = "province in 广东, 广西\nindustry = 制造\nscore >= 60\ncompany exists";
        let conds = parse(text)?;
        assert_eq!(conds.len(), 4);
        assert_eq!(conds[0].value, json!(["广东", "广西"]));
        assert_eq!(conds[2].op, "gte");
        assert!(all_hold(
            &conds,
            &json!({"province": "广西", "industry": "制造", "score": 61, "company": "x"})
        ));
        let again = parse(&format(&conds))?;
        assert_eq!(again, conds);
        assert_eq!(format(&again), format(&conds));
        assert_eq!(parse("score >= many"), Err(1));
        assert_eq!(parse("\nprovince like 广东"), Err(2));
        Ok(())
    }

    #[test]
    fn bad_conditions_are_named() {
        let mut errs = Errors::default();
        check(
            &mut errs,
            "conditions",
            &[
                c("nope", "eq", json!("x")),
                c("score", "gte", json!("many")),
                c("province", "like", json!("x")),
                c("custom.budget", "in", json!([])),
            ],
            &["budget".into()],
        );
        let named: Vec<String> = errs.0.iter().map(|e| e.field.clone()).collect();
        assert_eq!(
            named,
            vec![
                "conditions.0.field",
                "conditions.1.value",
                "conditions.2.op",
                "conditions.3.value"
            ]
        );
    }
}
