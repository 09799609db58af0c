#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The statements of `sql/` are valid SQLite whose parameters are numbered as PostgreSQL numbers
//! them; and no statement is written once per engine.

use super::*;
use std::collections::BTreeSet;
use std::path::Path;

/// Every statement constant of `sql/`, by name.
fn statements() -> Vec<(&'static str, &'static str)> {
    vec![
        ("requests::BY_UUID", requests::BY_UUID),
        ("requests::INSERT", requests::INSERT),
        ("requests::INSERT_READER", requests::INSERT_READER),
        ("requests::UPDATE", requests::UPDATE),
        ("requests::INSERT_APPROVAL", requests::INSERT_APPROVAL),
        ("requests::APPROVALS_OF", requests::APPROVALS_OF),
        ("requests::INSERT_EVENT", requests::INSERT_EVENT),
        ("requests::HISTORY", requests::HISTORY),
        ("profiles::BY_UUID", profiles::BY_UUID),
        ("profiles::OF_REQUEST", profiles::OF_REQUEST),
        ("profiles::ON_SMARTCARD", profiles::ON_SMARTCARD),
        ("profiles::INSERT", profiles::INSERT),
        ("profiles::SET_STATUS", profiles::SET_STATUS),
        ("profiles::VERSION", profiles::VERSION),
        ("smartcards::BY_UUID", smartcards::BY_UUID),
        ("smartcards::BY_CARD_ID", smartcards::BY_CARD_ID),
        ("smartcards::OF_USER", smartcards::OF_USER),
        ("smartcards::ALL", smartcards::ALL),
        ("smartcards::SEARCH", smartcards::SEARCH),
        ("smartcards::INSERT", smartcards::INSERT),
        ("smartcards::SET_STATUS", smartcards::SET_STATUS),
        ("smartcards::VERSION", smartcards::VERSION),
        ("smartcards::SEAL_PIN", smartcards::SEAL_PIN),
        ("smartcards::SEALED_PIN", smartcards::SEALED_PIN),
        ("smartcards::MASTER", smartcards::MASTER),
        ("smartcards::LATEST_MASTER", smartcards::LATEST_MASTER),
        ("smartcards::INSERT_MASTER", smartcards::INSERT_MASTER),
        ("certificates::OF_PROFILE", certificates::OF_PROFILE),
        ("certificates::OF_USER", certificates::OF_USER),
        ("certificates::ONE_OF_PROFILE", certificates::ONE_OF_PROFILE),
        ("certificates::REVOKED", certificates::REVOKED),
        (
            "certificates::STATUS_OF_SERIAL",
            certificates::STATUS_OF_SERIAL,
        ),
        ("certificates::COUNT_EXPIRING", certificates::COUNT_EXPIRING),
        ("certificates::COUNT_REVOKED", certificates::COUNT_REVOKED),
        ("smartcards::COUNT_BY_STATUS", smartcards::COUNT_BY_STATUS),
        ("certificates::EXPIRING", certificates::EXPIRING),
        ("certificates::INSERT", certificates::INSERT),
        ("certificates::SET_STATUS", certificates::SET_STATUS),
        ("identity::INSERT_USER", identity::INSERT_USER),
        ("portal::SET_PASSWORD", portal::SET_PASSWORD),
        ("portal::PASSWORD_OF", portal::PASSWORD_OF),
        ("portal::INSERT_SESSION", portal::INSERT_SESSION),
        ("portal::SESSION", portal::SESSION),
        ("portal::TOUCH_SESSION", portal::TOUCH_SESSION),
        ("portal::END_SESSION", portal::END_SESSION),
        ("portal::END_SESSIONS_OF", portal::END_SESSIONS_OF),
        (
            "portal::FORGET_EXPIRED_SESSIONS",
            portal::FORGET_EXPIRED_SESSIONS,
        ),
        ("portal::DECIDED_BY", portal::DECIDED_BY),
        ("portal::AUDIT_SEARCH", portal::AUDIT_SEARCH),
        ("identity::INSERT_GROUP", identity::INSERT_GROUP),
        ("identity::ADD_MEMBER", identity::ADD_MEMBER),
        ("identity::REMOVE_MEMBER", identity::REMOVE_MEMBER),
        ("identity::USER_BY_UUID", identity::USER_BY_UUID),
        ("identity::USER_BY_LOGIN", identity::USER_BY_LOGIN),
        ("identity::GROUPS_OF", identity::GROUPS_OF),
        ("identity::MAPPINGS_OF", identity::MAPPINGS_OF),
        ("identity::MAP_CERTIFICATE", identity::MAP_CERTIFICATE),
        ("identity::UNMAP_CERTIFICATE", identity::UNMAP_CERTIFICATE),
        ("identity::DISABLED", identity::DISABLED),
        ("identity::DISABLE_USER", identity::DISABLE_USER),
        ("identity::ENABLE_USER", identity::ENABLE_USER),
        ("identity::LOGIN_WITH_SID", identity::LOGIN_WITH_SID),
        ("identity::MEMBERS_OF", identity::MEMBERS_OF),
        ("identity::COUNT_USERS", identity::COUNT_USERS),
        ("identity::INSERT_TOKEN", identity::INSERT_TOKEN),
        ("identity::USER_OF_TOKEN", identity::USER_OF_TOKEN),
        ("identity::TOKENS", identity::TOKENS),
        ("identity::REVOKE_TOKEN", identity::REVOKE_TOKEN),
        ("identity::EPOCH", identity::EPOCH),
        ("identity::BUMP_EPOCH", identity::BUMP_EPOCH),
        ("identity::INSERT_ADMIN_EVENT", identity::INSERT_ADMIN_EVENT),
        (
            "identity::FORGET_EXPIRED_REPLAYS",
            identity::FORGET_EXPIRED_REPLAYS,
        ),
        ("identity::FIRST_USE", identity::FIRST_USE),
        ("ca::CA", ca::CA),
        ("ca::INIT_CA", ca::INIT_CA),
        ("ca::REPLACE_CA", ca::REPLACE_CA),
        ("ca::PUT_TEMPLATE", ca::PUT_TEMPLATE),
        ("ca::TEMPLATES", ca::TEMPLATES),
        ("ca::TEMPLATE_REVISION", ca::TEMPLATE_REVISION),
        ("ca::TEMPLATE", ca::TEMPLATE),
        ("requests::PUT_SECRET", requests::PUT_SECRET),
        ("requests::SECRET", requests::SECRET),
        ("requests::SPEND_SECRET", requests::SPEND_SECRET),
        ("requests::DROP_SECRET", requests::DROP_SECRET),
        ("requests::SECRET_SHOWN", requests::SECRET_SHOWN),
        ("outbox::INSERT", outbox::INSERT),
        ("outbox::CLAIM", outbox::CLAIM),
        ("outbox::CLAIMED", outbox::CLAIMED),
        ("outbox::FINISH", outbox::FINISH),
        ("outbox::INSERT_ATTEMPT", outbox::INSERT_ATTEMPT),
        ("outbox::ATTEMPTS", outbox::ATTEMPTS),
        ("outbox::ROW", outbox::ROW),
        ("outbox::LIST", outbox::LIST),
        ("outbox::REPLAY", outbox::REPLAY),
        ("outbox::COUNTS", outbox::COUNTS),
        ("outbox::WARN_EXPIRY", outbox::WARN_EXPIRY),
        ("PING", PING),
    ]
}

fn src() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

/// The Rust sources of a folder of `src/` (and its subfolders).
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    out
}

/// A schema of both engines' tables, on SQLite: the migrations, in order.
fn schema() -> rusqlite::Connection {
    let c = rusqlite::Connection::open_in_memory().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        c.execute_batch(&std::fs::read_to_string(f).unwrap())
            .unwrap();
    }
    c
}

#[test]
fn every_statement_is_listed_here() {
    let declared: usize = sources(&src().join("sql"))
        .iter()
        .map(|(_, text)| {
            text.lines()
                .filter(|l| {
                    let l = l.trim_start();
                    (l.starts_with("pub(crate) const ") || l.starts_with("pub const "))
                        && l.contains(": &str")
                })
                .count()
        })
        .sum();
    assert_eq!(
        declared,
        statements().len(),
        "a statement constant of sql/ is missing from statements()"
    );
}

#[test]
fn statements_are_valid_sqlite_with_parameters_numbered_as_postgresql_numbers_them() {
    let c = schema();
    let mut all: Vec<(&str, String)> = statements()
        .into_iter()
        .map(|(n, s)| (n, s.to_string()))
        .collect();
    all.extend(list_statements());
    for (name, sql) in all {
        let st = c
            .prepare(&sql)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{sql}"));
        for i in 1..=st.parameter_count() {
            assert_eq!(
                st.parameter_name(i),
                Some(format!("${i}").as_str()),
                "{name}: parameter {i} must be $${i} (first use of each in order)\n{sql}"
            );
        }
    }
}

/// The list statements built for each kind of filter: a reader's pre-filter, an administrator's
/// (none), a target's, and a user's profiles or everyone's.
fn list_statements() -> Vec<(&'static str, String)> {
    use opencm_app::ports::{ProfileQuery, RequestQuery};
    let request = |reader_sids: Option<Vec<String>>, target: bool| RequestQuery {
        target: target.then(|| Guid::NIL.into()),
        status: Some(opencm_domain::RequestStatus::Pending),
        after: Some(Guid::NIL.into()),
        limit: 10,
        reader_sids,
        newest_first: false,
    };
    let readers = Some(vec!["S-1-5-11".to_string(), "S-1-1-0".to_string()]);
    let profile = |user: bool| ProfileQuery {
        user: user.then(|| Guid::NIL.into()),
        status: Some(opencm_domain::profile::ProfileStatus::Active),
        after: Some(Guid::NIL.into()),
        limit: 10,
    };
    vec![
        (
            "requests::list for a reader",
            requests::list(&RequestQuery {
                status: None,
                ..request(readers.clone(), false)
            }),
        ),
        (
            "requests::list for an administrator",
            requests::list(&request(None, false)),
        ),
        (
            "requests::list of a target",
            requests::list(&request(readers.clone(), true)),
        ),
        (
            "requests::list for a reader, of one status",
            requests::list(&request(readers.clone(), false)),
        ),
        (
            "requests::list for a reader, newest first",
            requests::list(&RequestQuery {
                newest_first: true,
                status: None,
                ..request(readers, false)
            }),
        ),
    ]
    .into_iter()
    .map(|(n, q)| (n, q.unwrap().sql))
    .chain([
        (
            "profiles::list of a user",
            profiles::list(&profile(true)).sql,
        ),
        (
            "profiles::list of everyone",
            profiles::list(&profile(false)).sql,
        ),
    ])
    .collect()
}

/// The SQL statements (SELECT, INSERT, UPDATE, DELETE) written as string literals in `text`, each
/// normalised: continuation lines joined, whitespace collapsed, `?N` and `$N` both `?`.
fn sql_literals(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(open) = rest.find('"') {
        let body = &rest[open + 1..];
        let mut end = None;
        let mut escaped = false;
        for (i, ch) in body.char_indices() {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        let literal = body[..end].replace("\\\n", " ");
        let words: Vec<&str> = literal.split_whitespace().collect();
        let normal = words
            .iter()
            .map(|w| numbered_to_question(w))
            .collect::<Vec<_>>()
            .join(" ");
        let head = normal.to_ascii_uppercase();
        if ["SELECT ", "INSERT ", "UPDATE ", "DELETE "]
            .iter()
            .any(|k| head.starts_with(k))
        {
            out.insert(normal);
        }
        rest = &body[end + 1..];
    }
    out
}

/// `$3` and `?3` (and `?`) in a word become `?`.
fn numbered_to_question(word: &str) -> String {
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' || c == '?' {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_duplicate_check_sees_a_statement_written_for_each_engine() {
    let sqlite = sql_literals("x(\"SELECT a FROM t WHERE b = ?1 \\\n     AND c = ?2\")");
    let postgres = sql_literals("y(\"SELECT a FROM t WHERE b = $1 AND c = $2\", \"BEGIN\")");
    assert_eq!(sqlite, postgres);
    assert_eq!(
        sqlite.into_iter().collect::<Vec<_>>(),
        ["SELECT a FROM t WHERE b = ? AND c = ?"]
    );
}

#[test]
fn no_statement_is_written_once_per_engine() {
    let of = |dir: &str| -> BTreeSet<String> {
        sources(&src().join(dir))
            .iter()
            .flat_map(|(_, text)| sql_literals(text))
            .collect()
    };
    let (sqlite, postgres) = (of("sqlite"), of("postgres"));
    let both: Vec<&String> = sqlite.intersection(&postgres).collect();
    assert!(
        both.is_empty(),
        "statements written in both engines' folders (write them once in sql/): {both:#?}"
    );
    let shared: BTreeSet<String> = statements()
        .iter()
        .flat_map(|(_, s)| sql_literals(&format!("{s:?}")))
        .collect();
    for (engine, own) in [("sqlite", &sqlite), ("postgres", &postgres)] {
        let again: Vec<&String> = own.intersection(&shared).collect();
        assert!(
            again.is_empty(),
            "{engine} writes again what sql/ has: {again:#?}"
        );
    }
    // What each engine keeps of its own, for the record (`cargo test -- --nocapture`).
    println!(
        "sql/: {} statements; sqlite/: {} of its own {:?}; postgres/: {} of its own {:?}",
        shared.len(),
        sqlite.len(),
        sqlite,
        postgres.len(),
        postgres
    );
}

/// On PostgreSQL every statement prepares, takes as many parameters as SQLite counts, and returns
/// only TEXT and BIGINT columns — the two types the decoders read (a literal or a CASE is a 32-bit
/// INTEGER there unless cast).
#[tokio::test]
#[cfg_attr(
    not(opencm_postgres_tests),
    ignore = "PostgreSQL: set OPENCM_TEST_POSTGRES_URL=postgres://127.0.0.1/test to run"
)]
async fn statements_prepare_on_postgresql_and_return_text_or_bigint() {
    use sqlx::{Column, Executor, Statement, TypeInfo};
    let url = crate::testing::fresh_postgres_url(&crate::testing::postgres_base_url()).await;
    let store = crate::postgres::PgStore::connect(&url, crate::StoreOptions::default())
        .await
        .unwrap();
    opencm_app::ports::Database::migrate(&store).await.unwrap();
    let sqlite = schema();
    let mut all: Vec<(&str, String)> = statements()
        .into_iter()
        .map(|(n, s)| (n, s.to_string()))
        .collect();
    all.extend(list_statements());
    for (name, sql) in all {
        let d = store
            .pool()
            .prepare(&sql)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}\n{sql}"));
        for c in d.columns() {
            let ty = c.type_info().name();
            assert!(
                ty == "TEXT" || ty == "INT8",
                "{name}: column {} is {ty}\n{sql}",
                c.name()
            );
        }
        let params = d.parameters().map(|p| match p {
            sqlx::Either::Left(types) => types.len(),
            sqlx::Either::Right(n) => n,
        });
        assert_eq!(
            params,
            Some(sqlite.prepare(&sql).unwrap().parameter_count()),
            "{name}: the engines count its parameters alike"
        );
    }
}
