//! The account and contact lists: what they show, through the shared list page
//! ([`crate::records::lists`]).

use std::collections::BTreeMap;

use guanxi_customers::accounts::{self, Account, AccountFilter, AccountInput};
use guanxi_customers::contacts::{self, Contact, ContactFilter, ContactInput};
use guanxi_platform::db::Db;
use guanxi_platform::page::Page;
use guanxi_platform::{Ctx, Error};
use minijinja::{context, Value};
use uuid::Uuid;

use super::pages::{ACCOUNT_SECTIONS, CONTACT_SECTIONS};
use crate::records::lists::{Columns, ListSpec, Listed};

/// Built-in fields a cell edit may change (plain values; links and owners have their forms).
const EDITABLE: &[&str] = &[
    "title",
    "department",
    "phone",
    "email",
    "wechat",
    "province",
    "city",
    "industry",
    "website",
    "credit_code",
];

const SORTS: &[&str] = &["name", "-updated_at", "-created_at"];

pub static CONTACTS: ListSpec = ListSpec {
    kind: "contact",
    base: "/customers/contacts",
    nav: "customers",
    tabs: Some("customers/tabs.html"),
    columns: Columns {
        all: &[
            "account_id",
            "title",
            "department",
            "phone",
            "email",
            "wechat",
            "province",
            "city",
            "owner_id",
            "tags",
            "updated_at",
            "created_at",
        ],
        default: &["account_id", "title", "phone", "email", "owner_id"],
    },
    editable: EDITABLE,
    auto_sort: "sort.auto",
    sorts: SORTS,
    filters: &["province", "city"],
    choices: &[],
    exports: true,
    codes: "",
    sections: CONTACT_SECTIONS,
};

pub static ACCOUNTS: ListSpec = ListSpec {
    kind: "account",
    base: "/customers/accounts",
    nav: "customers",
    tabs: Some("customers/tabs.html"),
    columns: Columns {
        all: &[
            "parent_id",
            "industry",
            "credit_code",
            "phone",
            "email",
            "website",
            "province",
            "city",
            "owner_id",
            "tags",
            "updated_at",
            "created_at",
        ],
        default: &["industry", "city", "phone", "owner_id", "updated_at"],
    },
    editable: EDITABLE,
    auto_sort: "sort.auto",
    sorts: SORTS,
    filters: &["province", "city", "industry"],
    choices: &[],
    exports: true,
    codes: "",
    sections: ACCOUNT_SECTIONS,
};

fn custom_values(c: &[guanxi_records::custom_fields::CustomFilter]) -> BTreeMap<String, String> {
    c.iter()
        .map(|c| (c.param.clone(), c.value.clone()))
        .collect()
}

impl Listed for Contact {
    type Filter = ContactFilter;
    type Input = ContactInput;
    const SPEC: &'static ListSpec = &CONTACTS;
    fn id(&self) -> Uuid {
        self.id
    }
    async fn list(db: &Db, ctx: &Ctx, f: &ContactFilter) -> Result<Page<Contact>, Error> {
        contacts::list(db, ctx, f).await
    }
    async fn update(db: &Db, ctx: &Ctx, id: Uuid, input: ContactInput) -> Result<(), Error> {
        contacts::update(db, ctx, id, None, input).await.map(|_| ())
    }
    fn filter_values(f: &ContactFilter) -> Value {
        context! { q => f.q, province => f.province, city => f.city, sort => f.sort,
        deleted => f.deleted.unwrap_or(false), tag => f.tag, custom => custom_values(&f.custom) }
    }
}

impl Listed for Account {
    type Filter = AccountFilter;
    type Input = AccountInput;
    const SPEC: &'static ListSpec = &ACCOUNTS;
    fn id(&self) -> Uuid {
        self.id
    }
    async fn list(db: &Db, ctx: &Ctx, f: &AccountFilter) -> Result<Page<Account>, Error> {
        accounts::list(db, ctx, f).await
    }
    async fn update(db: &Db, ctx: &Ctx, id: Uuid, input: AccountInput) -> Result<(), Error> {
        accounts::update(db, ctx, id, None, input).await.map(|_| ())
    }
    fn filter_values(f: &AccountFilter) -> Value {
        context! { q => f.q, province => f.province, city => f.city, sort => f.sort,
        deleted => f.deleted.unwrap_or(false), tag => f.tag, industry => f.industry,
        custom => custom_values(&f.custom) }
    }
    /// The customer pools (公海), as shortcuts above the list.
    async fn extras(db: &Db, ctx: &Ctx) -> Result<Value, Error> {
        let chips = crate::sales::pages::pool_chips(db, ctx, "accounts").await?;
        Ok(context! { chips => chips })
    }
}
