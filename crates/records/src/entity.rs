//! An entity's declaration: what the shared record machinery needs to know of a module's
//! record type, beyond what its [`crate::record::Record`] implementation says.

use uuid::Uuid;

/// What a module declares about one of its record types.
#[derive(Debug)]
pub struct EntityDef {
    /// The table; also the permission module, the audit entity and the custom fields' `entity`.
    pub table: &'static str,
    /// The path of the list page; a record's page is `{path}/{id}`.
    pub path: &'static str,
    /// Whether a record may be shared with named colleagues beyond their scope
    /// ([`crate::shares`]): deals' collaborators.
    pub shared: bool,
    /// The column that names a record to people (`name`; a ticket's `subject`).
    pub title: &'static str,
}

/// A declared entity (`accounts`, `contacts`, `leads`, …). Compared by table.
#[derive(Debug, Clone, Copy)]
pub struct Entity(&'static EntityDef);

impl Entity {
    pub const fn declare(def: &'static EntityDef) -> Entity {
        Entity(def)
    }

    pub const fn table(self) -> &'static str {
        self.0.table
    }

    /// The column naming a record (`name`, `subject`): what a task about it shows.
    pub const fn title(self) -> &'static str {
        self.0.title
    }

    /// Whether its records may be shared ([`crate::shares`]).
    pub const fn shared(self) -> bool {
        self.0.shared
    }

    /// The same-site link to one record's page.
    pub fn link(self, id: Uuid) -> String {
        format!("{}/{id}", self.0.path)
    }

    /// The entity of `name` among `known` (the application's list: `guanxi_web::ENTITIES`).
    pub fn parse(known: &[Entity], name: &str) -> Option<Entity> {
        known.iter().copied().find(|e| e.table() == name)
    }
}

impl PartialEq for Entity {
    fn eq(&self, other: &Entity) -> bool {
        self.table() == other.table()
    }
}

impl Eq for Entity {}

impl serde::Serialize for Entity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.table())
    }
}
