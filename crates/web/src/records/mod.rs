//! The web kit of the record machinery: every declared entity's list page (filters, columns,
//! saved views, bulk actions, cell edits) and the layout of its forms and pages — one
//! implementation, used by each module's pages through [`lists::Listed`].

pub mod export;
pub mod forms;
pub mod layout;
pub mod lists;
