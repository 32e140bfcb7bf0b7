//! The request context every service function takes: which tenant, which user, what they may
//! do. Handlers get it from the auth extractor; the CLI builds a system one. Because every
//! repository function takes `&Ctx`, an unscoped query has no tenant to forget.

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::perms::{Action, Permissions, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// Signed in through the web UI (session cookie).
    Session,
    /// An API token.
    Token,
    /// The system itself: CLI, bootstrap, workers.
    System,
    /// A user acting through a link emailed to them (an approval decision), not signed in.
    Link,
    /// A customer signed in to the customer portal (no staff user).
    Portal,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Session => "user",
            ActorKind::Token => "api_token",
            ActorKind::System => "system",
            ActorKind::Link => "email_link",
            ActorKind::Portal => "customer_portal",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ctx {
    pub tenant_id: Uuid,
    /// The acting user; `None` only for the system.
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub role_key: String,
    pub perms: Permissions,
    /// The language to answer in: the user's saved choice, else what the request asks for.
    pub locale: String,
    /// Whether `locale` is the user's own saved choice (else the web layer may override it
    /// from the browser's `Accept-Language` or language cookie).
    pub locale_saved: bool,
    pub actor: ActorKind,
    pub request_id: Option<String>,
}

impl Ctx {
    /// Acts for the system inside one tenant, with every permission.
    pub fn system(tenant_id: Uuid) -> Ctx {
        Ctx {
            tenant_id,
            user_id: None,
            team_id: None,
            role_key: "admin".into(),
            perms: crate::perms::builtin_permissions("admin"),
            locale: "en".into(),
            locale_saved: false,
            actor: ActorKind::System,
            request_id: None,
        }
    }

    pub fn can(&self, module: &str, action: Action) -> Option<Scope> {
        self.perms.get(module).and_then(|m| m.get(&action)).copied()
    }

    /// The one permission check: the scope granted, or `Forbidden`.
    pub fn require(&self, module: &str, action: Action) -> Result<Scope> {
        self.can(module, action).ok_or(Error::Forbidden)
    }

    /// Whether `scope` covers a record owned by `owner` in `team`.
    pub fn covers(&self, scope: Scope, owner: Option<Uuid>, team: Option<Uuid>) -> bool {
        match scope {
            Scope::All => true,
            Scope::Team => {
                (self.team_id.is_some() && team == self.team_id)
                    || (owner.is_some() && owner == self.user_id)
            }
            Scope::Own => owner.is_some() && owner == self.user_id,
        }
    }

    /// Appends (`AND …`) the condition limiting a query to the records `scope` covers: the same
    /// rule as [`Ctx::covers`], in SQL.
    pub fn scope_sql(&self, q: &mut crate::db::Sql, scope: Scope, owner_col: &str, team_col: &str) {
        if scope != Scope::All {
            q.push(" AND ");
            self.scope_cond(q, scope, owner_col, team_col);
        }
    }

    /// The condition of [`Ctx::scope_sql`] alone, parenthesised (`TRUE` for [`Scope::All`]), for
    /// a caller that widens it (`… OR shared`).
    pub fn scope_cond(
        &self,
        q: &mut crate::db::Sql,
        scope: Scope,
        owner_col: &str,
        team_col: &str,
    ) {
        match scope {
            Scope::All => {
                q.push("(1 = 1)");
            }
            Scope::Team => {
                q.push(&format!("({team_col} = "))
                    .bind(self.team_id)
                    .push(&format!(" OR {owner_col} = "))
                    .bind(self.user_id)
                    .push(")");
            }
            Scope::Own => {
                q.push(&format!("({owner_col} = "))
                    .bind(self.user_id)
                    .push(")");
            }
        }
    }

    pub fn is_zh(&self) -> bool {
        self.locale.starts_with("zh")
    }
}
