//! Permissions: a role grants, per module and action, a record scope (own, team or all).
//! [`Ctx::require`](crate::ctx::Ctx::require) is the one check; API handlers and UI pages both
//! reach it through the same service functions.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// How much of a module's records a grant covers. Ordered: `Own < Team < All`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema, Hash,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Own,
    Team,
    All,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema, Hash,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
}

pub const ACTIONS: [Action; 4] = [Action::Read, Action::Create, Action::Update, Action::Delete];

/// The modules permissions are granted on. A new business module adds its name here.
pub const MODULES: &[&str] = &[
    "users",
    "teams",
    "roles",
    "api_tokens",
    "audit",
    "settings",
    "jobs",
    "accounts",
    "contacts",
    "activities",
    "products",
    "orders",
    "assets",
    "custom_fields",
    "saved_views",
    "calendars",
    "leads",
    "forms",
    "assignment_rules",
    "scoring_rules",
    "pools",
    "pipelines",
    "opportunities",
    "price_books",
    "quotes",
    "approval_processes",
    "targets",
    "analytics",
    "tickets",
    "sla_policies",
    "mailboxes",
    "articles",
    "portal_users",
];

/// The customer-record modules: every role but admin gets them by its line of work.
const CUSTOMER_MODULES: &[&str] = &["accounts", "contacts"];

/// module → action → scope. A missing entry grants nothing.
pub type Permissions = BTreeMap<String, BTreeMap<Action, Scope>>;

/// The built-in roles every tenant starts with (key, English name, Chinese name).
pub const BUILTIN_ROLES: &[(&str, &str, &str)] = &[
    ("admin", "Administrator", "管理员"),
    ("manager", "Manager", "经理"),
    ("sales", "Sales", "销售"),
    ("marketing", "Marketing", "市场"),
    ("service", "Service", "服务"),
    ("read_only", "Read-only", "只读"),
];

fn grant(p: &mut Permissions, module: &str, actions: &[Action], scope: Scope) {
    let m = p.entry(module.to_owned()).or_default();
    for a in actions {
        m.insert(*a, scope);
    }
}

/// What a built-in role may do.
pub fn builtin_permissions(key: &str) -> Permissions {
    use Action::*;
    let mut p = Permissions::new();
    match key {
        "admin" => {
            for m in MODULES {
                grant(&mut p, m, &ACTIONS, Scope::All);
            }
        }
        _ => {
            // Everyone sees colleagues, teams and roles (to assign work) and the tenant
            // settings, and manages their own API tokens.
            for m in [
                "users",
                "teams",
                "roles",
                "settings",
                "custom_fields",
                "calendars",
            ] {
                grant(&mut p, m, &[Read], Scope::All);
            }
            // Anyone keeps list views of their own; sharing one with everyone takes `All`.
            grant(
                &mut p,
                "saved_views",
                &[Read, Create, Update, Delete],
                Scope::Own,
            );
            if key != "read_only" {
                grant(&mut p, "api_tokens", &[Read, Create, Delete], Scope::Own);
            }
            if key == "manager" {
                grant(&mut p, "audit", &[Read], Scope::Team);
                // Managers share list views with everyone.
                grant(&mut p, "saved_views", &[Create, Update, Delete], Scope::All);
            }
            // Customers belong to the company: other departments read all of them (they answer
            // with the same facts); a rep sees the team's and changes their own; a manager
            // reads all and changes the team's. Custom roles choose freely.
            for m in CUSTOMER_MODULES {
                grant(&mut p, m, &[Read], Scope::All);
                match key {
                    "manager" => grant(&mut p, m, &[Create, Update, Delete], Scope::Team),
                    "sales" => {
                        grant(&mut p, m, &[Read], Scope::Team);
                        grant(&mut p, m, &[Create, Update, Delete], Scope::Own);
                    }
                    "service" | "marketing" => grant(&mut p, m, &[Create, Update], Scope::All),
                    _ => {}
                }
            }
            // Leads: marketing brings them in and works them company-wide; a rep reads the
            // team's and works their own; a manager reads all and works the team's.
            match key {
                "manager" => {
                    grant(&mut p, "leads", &[Read], Scope::All);
                    grant(&mut p, "leads", &[Create, Update, Delete], Scope::Team);
                }
                "sales" => {
                    grant(&mut p, "leads", &[Read], Scope::Team);
                    grant(&mut p, "leads", &[Create, Update, Delete], Scope::Own);
                }
                "marketing" => grant(&mut p, "leads", &[Read, Create, Update, Delete], Scope::All),
                _ => grant(&mut p, "leads", &[Read], Scope::All),
            }
            // Deals: as leads for reps and managers (a rep works their own, reads the team's;
            // a manager reads all and works the team's); other departments read them.
            // Pipelines are read by all and shaped by managers.
            grant(&mut p, "pipelines", &[Read], Scope::All);
            match key {
                "manager" => {
                    grant(&mut p, "opportunities", &[Read], Scope::All);
                    grant(
                        &mut p,
                        "opportunities",
                        &[Create, Update, Delete],
                        Scope::Team,
                    );
                    grant(&mut p, "pipelines", &[Create, Update], Scope::All);
                }
                "sales" => {
                    grant(&mut p, "opportunities", &[Read], Scope::Team);
                    grant(
                        &mut p,
                        "opportunities",
                        &[Create, Update, Delete],
                        Scope::Own,
                    );
                }
                _ => grant(&mut p, "opportunities", &[Read], Scope::All),
            }
            // Price books: everyone reads the prices; managers set them. Quotes follow deals:
            // a rep works their own and reads the team's, a manager works the team's.
            grant(&mut p, "price_books", &[Read], Scope::All);
            // Approval processes: administrators shape them (all modules); managers read them
            // and every request.
            if key == "manager" {
                grant(&mut p, "approval_processes", &[Read], Scope::All);
            }
            // Customer value (ABC, RFM): everyone analyses the customers they may read;
            // managers and marketing keep the company's runs.
            grant(&mut p, "analytics", &[Read], Scope::All);
            if matches!(key, "manager" | "marketing") {
                grant(&mut p, "analytics", &[Create], Scope::All);
            }
            // Targets: everyone reads them; managers set them.
            grant(&mut p, "targets", &[Read], Scope::All);
            if key == "manager" {
                grant(&mut p, "targets", &[Update], Scope::All);
            }
            match key {
                "manager" => {
                    grant(&mut p, "price_books", &[Create, Update, Delete], Scope::All);
                    grant(&mut p, "quotes", &[Read], Scope::All);
                    grant(&mut p, "quotes", &[Create, Update, Delete], Scope::Team);
                }
                "sales" => {
                    grant(&mut p, "quotes", &[Read], Scope::Team);
                    grant(&mut p, "quotes", &[Create, Update, Delete], Scope::Own);
                }
                _ => grant(&mut p, "quotes", &[Read], Scope::All),
            }
            // Public forms: marketing designs them; managers read them and their submissions.
            // Who gets which lead is the managers' to decide; how leads are scored, the
            // managers' and marketing's.
            match key {
                "marketing" => {
                    grant(&mut p, "forms", &[Read, Create, Update], Scope::All);
                    grant(
                        &mut p,
                        "scoring_rules",
                        &[Create, Update, Delete],
                        Scope::All,
                    );
                }
                "manager" => {
                    grant(&mut p, "forms", &[Read], Scope::All);
                    grant(
                        &mut p,
                        "assignment_rules",
                        &[Create, Update, Delete],
                        Scope::All,
                    );
                    grant(
                        &mut p,
                        "scoring_rules",
                        &[Create, Update, Delete],
                        Scope::All,
                    );
                }
                _ => {}
            }
            // The timeline: everyone who can see a customer sees what was said to it; everyone
            // but read-only logs calls, visits, notes and tasks and edits their own (a task's
            // assignee may always complete it); managers edit their team's.
            // The catalogue: everyone reads it; admins (and custom roles) maintain it.
            grant(&mut p, "products", &[Read], Scope::All);
            // Orders are read and written by the customer they belong to (see
            // customers::orders): the scope here is checked against the customer's owner.
            grant(&mut p, "orders", &[Read], Scope::All);
            match key {
                "manager" => grant(&mut p, "orders", &[Create, Update, Delete], Scope::Team),
                "sales" => grant(&mut p, "orders", &[Create, Update], Scope::Own),
                "service" => grant(&mut p, "orders", &[Update], Scope::All),
                _ => {}
            }
            // Assets follow their customer as orders do.
            grant(&mut p, "assets", &[Read], Scope::All);
            match key {
                "manager" => grant(&mut p, "assets", &[Create, Update, Delete], Scope::Team),
                "sales" => grant(&mut p, "assets", &[Create, Update], Scope::Own),
                "service" => grant(&mut p, "assets", &[Create, Update], Scope::All),
                _ => {}
            }
            // Tickets: the service desk works every ticket of the company; a manager too, and
            // shapes the SLA policies; everyone else reads them (sales sees service) and may
            // log one for a customer.
            grant(&mut p, "sla_policies", &[Read], Scope::All);
            match key {
                "service" => {
                    grant(
                        &mut p,
                        "tickets",
                        &[Read, Create, Update, Delete],
                        Scope::All,
                    );
                    // The desk sees its mailboxes' health and re-runs their dead letters.
                    grant(&mut p, "mailboxes", &[Read], Scope::All);
                }
                "manager" => {
                    grant(
                        &mut p,
                        "tickets",
                        &[Read, Create, Update, Delete],
                        Scope::All,
                    );
                    grant(&mut p, "sla_policies", &[Create, Update], Scope::All);
                    grant(
                        &mut p,
                        "mailboxes",
                        &[Read, Create, Update, Delete],
                        Scope::All,
                    );
                }
                "read_only" => grant(&mut p, "tickets", &[Read], Scope::All),
                _ => grant(&mut p, "tickets", &[Read, Create], Scope::All),
            }
            // The knowledge base: everyone reads what is published (and their own drafts); the
            // service desk writes it together (everyone's drafts; trashes its own), managers
            // everything.
            grant(&mut p, "articles", &[Read], Scope::Own);
            match key {
                "service" => {
                    grant(&mut p, "portal_users", &[Read, Create, Update], Scope::All);
                    grant(&mut p, "articles", &[Read, Create, Update], Scope::All);
                    grant(&mut p, "articles", &[Delete], Scope::Own);
                }
                "manager" => {
                    grant(
                        &mut p,
                        "articles",
                        &[Read, Create, Update, Delete],
                        Scope::All,
                    );
                    grant(&mut p, "portal_users", &[Read, Create, Update], Scope::All);
                }
                _ => {}
            }
            grant(&mut p, "activities", &[Read], Scope::All);
            match key {
                "read_only" => {}
                "manager" => grant(&mut p, "activities", &[Create, Update, Delete], Scope::Team),
                _ => grant(&mut p, "activities", &[Create, Update, Delete], Scope::Own),
            }
        }
    }
    p
}

/// Checks a permission document from a request: known modules and nothing else.
pub fn validate(p: &Permissions) -> Result<(), String> {
    match p.keys().find(|m| !MODULES.contains(&m.as_str())) {
        Some(m) => Err(m.clone()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_has_everything_read_only_reads() {
        let a = builtin_permissions("admin");
        for m in MODULES {
            for act in ACTIONS {
                assert_eq!(a[*m][&act], Scope::All);
            }
        }
        let r = builtin_permissions("read_only");
        // Read-only changes no company data; its own saved list views are its own.
        assert!(r
            .iter()
            .filter(|(m, _)| m.as_str() != "saved_views")
            .all(|(_, m)| m.keys().all(|a| *a == Action::Read)));
        assert_eq!(r["saved_views"][&Action::Create], Scope::Own);
        assert!(!r.contains_key("api_tokens"));
    }

    #[test]
    fn scope_order() {
        assert!(Scope::Own < Scope::Team && Scope::Team < Scope::All);
    }
}
