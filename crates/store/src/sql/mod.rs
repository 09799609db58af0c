//! Every SQL statement opencm runs on both engines, written once, by aggregate, with the values
//! each binds and the row decoder each reads with.
//!
//! **One placeholder style for both engines.** Statements number their parameters `$1`, `$2`, …
//! as PostgreSQL does. SQLite reads `$1` as a *named* parameter and numbers named parameters by
//! first appearance, so the same text binds the same values on both when each statement's
//! parameters first appear in order (`$1` before `$2` …): a test below checks that for every
//! statement. Columns are TEXT or 64-bit integers on both engines, so the same decoders read both.
//!
//! What differs stays with its engine: SQLite's writer thread, readers and snapshots; PostgreSQL's
//! pool, group-commit batches and their multi-row statements, and its row locks.

pub(crate) mod ca;
pub(crate) mod certificates;
pub(crate) mod effects;
pub(crate) mod identity;
pub(crate) mod outbox;
pub(crate) mod portal;
pub(crate) mod profiles;
pub(crate) mod requests;
pub(crate) mod smartcards;
#[cfg(test)]
mod tests;

use opencm_app::ports::StoreError;
use opencm_domain::{Guid, ProfileId, RequestId, SmartcardId, TemplateId, Timestamp, UserId};

/// A value bound to a statement's parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
    OptText(Option<String>),
    OptInt(Option<i64>),
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}
impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Self {
        Arg::OptText(v.clone())
    }
}
impl From<Guid> for Arg {
    fn from(v: Guid) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<&Guid> for Arg {
    fn from(v: &Guid) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<Option<Timestamp>> for Arg {
    fn from(v: Option<Timestamp>) -> Self {
        Arg::OptInt(v.map(Timestamp::micros))
    }
}

/// The typed ids bind as the GUID they wrap; an absent one as the all-zero GUID, which is how the
/// schema stores "none" in its id columns (`Columns::nullable_guid` reads it back as `None`).
macro_rules! id_args {
    ($($t:ty),*) => {$(
        impl From<$t> for Arg {
            fn from(v: $t) -> Self {
                Arg::Text(v.to_string())
            }
        }
        impl From<&$t> for Arg {
            fn from(v: &$t) -> Self {
                Arg::Text(v.to_string())
            }
        }
        impl From<Option<$t>> for Arg {
            fn from(v: Option<$t>) -> Self {
                Arg::Text(<$t>::nullable(v).to_string())
            }
        }
    )*};
}
id_args!(RequestId, ProfileId, SmartcardId, UserId, TemplateId);

/// The values of a statement's parameters, in order.
macro_rules! args {
    ($($v:expr),* $(,)?) => { vec![$($crate::sql::Arg::from($v)),*] };
}
pub(crate) use args;

/// A row of either engine, read by column name.
pub trait Columns {
    fn text(&self, name: &str) -> Result<String, StoreError>;
    fn int(&self, name: &str) -> Result<i64, StoreError>;
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError>;

    fn guid(&self, name: &str) -> Result<Guid, StoreError> {
        crate::rows::guid(&self.text(name)?)
    }

    /// An id column that holds the all-zero GUID for "none".
    fn nullable_guid(&self, name: &str) -> Result<Option<Guid>, StoreError> {
        Ok(Some(self.guid(name)?).filter(|g| !g.is_nil()))
    }

    /// A time column that holds NULL for "never".
    fn opt_time(&self, name: &str) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.opt_int(name)?.map(Timestamp::from_micros))
    }
}

/// How a row becomes a value.
pub type Decode<T> = fn(&dyn Columns) -> Result<T, StoreError>;

/// How many rows a read may return: SQLite runs the reads of many rows off the async workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows {
    /// A point read (by key, or bounded by a small limit).
    Few,
    Many,
}

/// One statement of a transaction, and whether the transaction goes on when it changed nothing.
/// A transaction of steps reports the rows each step that ran changed; a step that stops it is
/// the last counted (with 0), and what ran before it commits.
pub struct Step {
    pub sql: &'static str,
    pub args: Vec<Arg>,
    pub stop_unless_changed: bool,
}

impl Step {
    pub fn new(sql: &'static str, args: Vec<Arg>) -> Self {
        Step {
            sql,
            args,
            stop_unless_changed: false,
        }
    }

    /// The transaction ends here (committing nothing after) when this statement changes no row.
    pub fn or_stop(mut self) -> Self {
        self.stop_unless_changed = true;
        self
    }
}

/// A statement whose parameters are numbered as they are added.
pub(crate) struct Numbered {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl Numbered {
    pub fn new(sql: &str) -> Self {
        Numbered {
            sql: sql.to_string(),
            args: Vec::new(),
        }
    }
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.sql.push_str(text);
        self
    }
    /// Appends the next parameter, bound to `value`.
    pub fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        self.sql.push_str(&format!("${}", self.args.len()));
        self
    }
}

/// Whether the database answers.
pub(crate) const PING: &str = "SELECT CAST(1 AS BIGINT) AS up";
