//! The record machinery: what every module's records share, so that an entity gets it by
//! declaring itself rather than by copying the customer module's code.
//!
//! An entity declares an [`Entity`] (its table — also its permission module and audit entity —
//! and the path of its pages), implements [`record::Record`] (how to load one, its owner, team,
//! trash and custom values) and, for bulk actions, [`bulk::Editable`]. Its table carries the
//! shared columns (`tenant_id`, `id`, `owner_id`, `team_id`, `custom`, `tags`, `search`,
//! `grams`, `era`, `deleted_at`, `version`, …) and its migration creates the search index the
//! way `customers` 1009/1011 did for accounts and contacts. With that it has:
//! - custom fields ([`custom_fields`]: definitions per entity, one validation, unique values,
//!   filters and sorts), tags ([`record::apply_tags`], [`record::tag_sql`]);
//! - lists: the search box over the index in index order, the trash, the caller's scope,
//!   keyset pages ([`record::ListQuery`]); names sorted by pinyin;
//! - load with the read/write scope, trash and restore, audited ([`record::set_deleted`]);
//!   sharing with named colleagues beyond their scope, to read or edit ([`shares`]);
//!   owner resolution and hand-over ([`record::resolve_owner`], [`record::audit_transfer`]);
//! - bulk assign, tag, untag and trash through the entity's own update ([`bulk::run`]);
//! - search text with pinyin, initials and phone digits ([`normalize`],
//!   [`record::search_text`]), index eras ([`eras`]);
//! - import files read within bounds (CSV in any Chinese encoding, XLSX, vCard: [`tables`]).

pub mod bulk;
pub mod custom_fields;
pub mod entity;
pub mod eras;
pub mod normalize;
pub mod record;
pub mod search;
pub mod shares;
pub mod tables;

pub use entity::{Entity, EntityDef};
