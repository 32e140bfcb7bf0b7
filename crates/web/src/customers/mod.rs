//! The customers module's HTTP side: `/api/v1/accounts`, `/api/v1/contacts`, `/api/v1/search`
//! and the pages under `/customers`. The logic is in the `guanxi-customers` crate.

pub mod api;
pub mod export;
pub mod fields_page;
pub mod imports;
pub mod lists;
pub mod merge_page;
pub mod pages;
