#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store suite: every test runs on SQLite, and on PostgreSQL when OPENCM_TEST_POSTGRES_URL is set.

use opencm_app::ports::Storage;
use opencm_domain::profile::ProfileStatus;
use opencm_domain::request::{AuditEvent, DataValue, Request};
use opencm_domain::sddl::SecurityDescriptor;
use opencm_domain::{
    Guid, ProfileId, RequestFlags, RequestId, RequestStatus, RequestType, Timestamp, UserId,
};
use opencm_store::testing::{fresh_postgres_url, fresh_sqlite_url, postgres_base_url};
use opencm_store::{connect, NewUser, RequestQuery, StoreError, StoreOptions, Write, WriteOutcome};
use std::sync::Arc;

async fn store(url: String) -> Arc<dyn Storage> {
    let s = connect(&url, StoreOptions::default()).await.unwrap();
    s.migrate().await.unwrap();
    s
}

/// `on_each_engine!(name)` runs `async fn name(s: Arc<dyn Storage>)` as `name::sqlite` and
/// `name::postgres`; the latter is reported as ignored unless `OPENCM_TEST_POSTGRES_URL` was set
/// when the tests were built (see `build.rs`).
macro_rules! on_each_engine {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                super::$name(store(fresh_sqlite_url()).await).await
            }
            #[tokio::test]
            #[cfg_attr(
                not(opencm_postgres_tests),
                ignore = "PostgreSQL: set OPENCM_TEST_POSTGRES_URL=postgres://127.0.0.1/test to run"
            )]
            async fn postgres() {
                super::$name(store(fresh_postgres_url(&postgres_base_url()).await).await).await
            }
        }
    };
}

const ALICE: &str = "S-1-5-21-9-1001";

async fn seed_user(s: &dyn Storage) -> UserId {
    let id = UserId::from_guid(Guid::new_random());
    s.add_user(
        &NewUser {
            uuid: id,
            login: format!("alice-{id}"),
            display_name: "Alice".into(),
            sid: format!("S-1-5-21-9-{}", rand_sub()),
            groups: vec!["S-1-5-21-9-7000".into()],
            email: None,
            language: None,
        },
        Timestamp::from_micros(1),
    )
    .await
    .unwrap();
    id
}

fn rand_sub() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

fn request(owner: UserId) -> Request {
    Request {
        uuid: RequestId::new_time_ordered(),
        request_type: RequestType::Enroll,
        status: RequestStatus::Approved,
        flags: RequestFlags(0),
        data_collection: vec![
            DataValue {
                name: "Reason".into(),
                value: Some("VPN".into()),
            },
            DataValue {
                name: "City".into(),
                value: None,
            },
        ],
        data_collection_flags: 48,
        originator: owner,
        target: owner,
        submitted: Timestamp::from_micros(1_436_312_181_930_000),
        completed: None,
        new_profile: None,
        old_profile: None,
        new_smartcard: None,
        old_smartcard: None,
        priority: 7,
        comment: "hello".into(),
        profile_template: Guid::new_random().into(),
        security_descriptor: SecurityDescriptor::parse(&format!(
            "O:{ALICE}D:(A;;CCDCRC;;;{ALICE})(A;;GA;;;BA)"
        ))
        .unwrap()
        .into(),
        version: 0,
        // Stored and read back like every other column (the round trips below compare all).
        secret_required: true,
    }
}

/// Stores a new request with its creation event.
async fn insert(s: &dyn Storage, r: &Request) {
    let ev = event(r, RequestStatus::None, "create");
    assert_eq!(
        s.write(Write::Create {
            request: r.clone(),
            event: ev,
            outbox: Vec::new(),
            secret: None,
        })
        .await
        .unwrap(),
        WriteOutcome::Done
    );
}

fn event(r: &Request, from: RequestStatus, action: &str) -> AuditEvent {
    AuditEvent {
        request: r.uuid,
        at: Timestamp::from_micros(5),
        actor: r.originator,
        action: action.into(),
        from,
        to: r.status,
        detail: String::new(),
    }
}

async fn a_created_request_reads_back_identically_with_its_audit_event(s: Arc<dyn Storage>) {
    let u = seed_user(&*s).await;
    let r = request(u);
    assert_eq!(
        s.write(Write::Create {
            request: r.clone(),
            event: event(&r, RequestStatus::None, "create"),
            outbox: Vec::new(),
            secret: None,
        })
        .await
        .unwrap(),
        WriteOutcome::Done
    );
    assert_eq!(
        s.request(r.uuid).await.unwrap().unwrap(),
        r,
        "{}",
        s.engine()
    );
    let h = s.history(r.uuid).await.unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].action, "create");
    assert!(s
        .request(Guid::new_random().into())
        .await
        .unwrap()
        .is_none());
}
on_each_engine!(a_created_request_reads_back_identically_with_its_audit_event);

async fn a_stale_write_conflicts_and_changes_nothing(s: Arc<dyn Storage>) {
    let u = seed_user(&*s).await;
    let r = request(u);
    insert(&*s, &r).await;
    let done = Request {
        status: RequestStatus::Completed,
        completed: Some(Timestamp::from_micros(9)),
        ..r.clone()
    };
    assert_eq!(
        s.write(Write::Update {
            request: done.clone(),
            approval: None,
            effects: vec![],
            event: event(&done, r.status, "complete")
        })
        .await
        .unwrap(),
        WriteOutcome::Done
    );
    let canceled = Request {
        status: RequestStatus::Canceled,
        ..r.clone()
    };
    assert_eq!(
        s.write(Write::Update {
            request: canceled.clone(),
            approval: None,
            effects: vec![],
            event: event(&canceled, r.status, "cancel")
        })
        .await
        .unwrap(),
        WriteOutcome::Conflict
    );
    let now = s.request(r.uuid).await.unwrap().unwrap();
    assert_eq!(
        (now.status, now.version),
        (RequestStatus::Completed, 1),
        "{}",
        s.engine()
    );
    assert_eq!(s.history(r.uuid).await.unwrap().len(), 2);
}
on_each_engine!(a_stale_write_conflicts_and_changes_nothing);

async fn concurrent_writers_on_one_version_exactly_one_wins(s: Arc<dyn Storage>) {
    let u = seed_user(&*s).await;
    let r = request(u);
    insert(&*s, &r).await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let s = s.clone();
        let status = if i % 2 == 0 {
            RequestStatus::Completed
        } else {
            RequestStatus::Canceled
        };
        let next = Request {
            status,
            ..r.clone()
        };
        tasks.push(tokio::spawn(async move {
            let ev = event(&next, RequestStatus::Approved, "race");
            s.write(Write::Update {
                request: next,
                approval: None,
                effects: vec![],
                event: ev,
            })
            .await
            .unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() == WriteOutcome::Done {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "{}", s.engine());
    assert_eq!(s.history(r.uuid).await.unwrap().len(), 2);
    assert_eq!(s.request(r.uuid).await.unwrap().unwrap().version, 1);
}
on_each_engine!(concurrent_writers_on_one_version_exactly_one_wins);

async fn lists_filter_by_reader_target_and_status_and_page_by_id(s: Arc<dyn Storage>) {
    let u = seed_user(&*s).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut r = request(u);
        if i == 4 {
            r.status = RequestStatus::Pending;
        }
        ids.push(r.uuid);
        insert(&*s, &r).await;
    }
    let q = |sids: Option<Vec<&str>>| RequestQuery {
        reader_sids: sids.map(|v| v.into_iter().map(String::from).collect()),
        limit: 1000,
        ..Default::default()
    };
    assert_eq!(
        s.list_requests(&q(Some(vec![ALICE]))).await.unwrap().len(),
        5
    );
    assert_eq!(
        s.list_requests(&q(Some(vec!["S-1-5-21-9-4242"])))
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(s.list_requests(&q(Some(vec![]))).await.unwrap().len(), 0);
    let page1 = s
        .list_requests(&RequestQuery {
            limit: 2,
            ..q(None)
        })
        .await
        .unwrap();
    assert_eq!(
        page1.iter().map(|r| r.uuid).collect::<Vec<_>>(),
        ids[..2].to_vec()
    );
    let page2 = s
        .list_requests(&RequestQuery {
            limit: 2,
            after: Some(ids[1]),
            ..q(None)
        })
        .await
        .unwrap();
    assert_eq!(
        page2.iter().map(|r| r.uuid).collect::<Vec<_>>(),
        ids[2..4].to_vec()
    );
    let pending = s
        .list_requests(&RequestQuery {
            status: Some(RequestStatus::Pending),
            ..q(Some(vec![ALICE]))
        })
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        s.list_requests(&RequestQuery {
            target: Some(Guid::new_random().into()),
            ..q(None)
        })
        .await
        .unwrap()
        .len(),
        0
    );
}
on_each_engine!(lists_filter_by_reader_target_and_status_and_page_by_id);

async fn tokens_resolve_to_the_user_with_groups_until_they_expire(s: Arc<dyn Storage>) {
    let u = seed_user(&*s).await;
    s.add_token("h1", u, Timestamp::from_micros(1), None)
        .await
        .unwrap();
    s.add_token(
        "h2",
        u,
        Timestamp::from_micros(1),
        Some(Timestamp::from_micros(100)),
    )
    .await
    .unwrap();
    let (p, expires) = s
        .principal_by_token("h1", Timestamp::from_micros(1_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(expires, None);
    assert_eq!(p.uuid, u);
    assert_eq!(p.groups.len(), 1);
    assert!(s
        .principal_by_token("h2", Timestamp::from_micros(50))
        .await
        .unwrap()
        .is_some());
    assert!(s
        .principal_by_token("h2", Timestamp::from_micros(100))
        .await
        .unwrap()
        .is_none());
    assert!(s
        .principal_by_token("nope", Timestamp::from_micros(1))
        .await
        .unwrap()
        .is_none());
}
on_each_engine!(tokens_resolve_to_the_user_with_groups_until_they_expire);

async fn duplicate_logins_and_groups_are_reported_as_duplicates(s: Arc<dyn Storage>) {
    let u = NewUser {
        uuid: Guid::new_random().into(),
        login: "dup".into(),
        display_name: "D".into(),
        sid: "S-1-5-21-9-55".into(),
        groups: vec![],
        email: None,
        language: None,
    };
    s.add_user(&u, Timestamp::from_micros(1)).await.unwrap();
    let again = NewUser {
        uuid: Guid::new_random().into(),
        sid: "S-1-5-21-9-56".into(),
        ..u
    };
    assert!(
        matches!(
            s.add_user(&again, Timestamp::from_micros(1)).await,
            Err(StoreError::Duplicate(_))
        ),
        "{}",
        s.engine()
    );
    s.add_group("g", "S-1-5-21-9-77").await.unwrap();
    assert!(matches!(
        s.add_group("g", "S-1-5-21-9-78").await,
        Err(StoreError::Duplicate(_))
    ));
}
on_each_engine!(duplicate_logins_and_groups_are_reported_as_duplicates);

async fn one_failing_write_in_a_group_commit_fails_alone(s: Arc<dyn Storage>) {
    let u = seed_user(&*s).await;
    let existing = request(u);
    insert(&*s, &existing).await;
    // Submitted together so the writer batches them; one reuses an existing id and must fail.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        let r = if i == 20 {
            existing.clone()
        } else {
            request(u)
        };
        tasks.push(tokio::spawn(async move {
            let ev = event(&r, RequestStatus::None, "create");
            (
                r.uuid,
                s.write(Write::Create {
                    request: r,
                    event: ev,
                    outbox: Vec::new(),
                    secret: None,
                })
                .await,
            )
        }));
    }
    let mut failed = 0;
    for t in tasks {
        let (id, res) = t.await.unwrap();
        match res {
            Ok(WriteOutcome::Done) => assert!(s.request(id).await.unwrap().is_some()),
            Err(StoreError::Duplicate(_)) => {
                assert_eq!(id, existing.uuid);
                failed += 1;
            }
            other => panic!("{}: {other:?}", s.engine()),
        }
    }
    assert_eq!(failed, 1, "{}", s.engine());
    assert_eq!(
        s.history(existing.uuid).await.unwrap().len(),
        1,
        "the duplicate left no audit event"
    );
}
on_each_engine!(one_failing_write_in_a_group_commit_fails_alone);

async fn two_updates_of_one_request_in_one_batch_the_first_wins(s: Arc<dyn Storage>) {
    let u = seed_user(&*s).await;
    let r = request(u);
    insert(&*s, &r).await;
    let a = Request {
        status: RequestStatus::Completed,
        ..r.clone()
    };
    let b = Request {
        status: RequestStatus::Canceled,
        ..r.clone()
    };
    let (x, y) = tokio::join!(
        s.write(Write::Update {
            request: a.clone(),
            approval: None,
            effects: vec![],
            event: event(&a, r.status, "complete")
        }),
        s.write(Write::Update {
            request: b.clone(),
            approval: None,
            effects: vec![],
            event: event(&b, r.status, "cancel")
        })
    );
    let outcomes = [x.unwrap(), y.unwrap()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == WriteOutcome::Done)
            .count(),
        1,
        "{}",
        s.engine()
    );
    let stored = s.request(r.uuid).await.unwrap().unwrap();
    let winner = if outcomes[0] == WriteOutcome::Done {
        RequestStatus::Completed
    } else {
        RequestStatus::Canceled
    };
    assert_eq!(stored.status, winner);
    assert_eq!(s.history(r.uuid).await.unwrap().len(), 2);
}
on_each_engine!(two_updates_of_one_request_in_one_batch_the_first_wins);

async fn effects_apply_with_a_winning_update_and_never_with_a_losing_one(s: Arc<dyn Storage>) {
    use opencm_store::{Effect, ProfileRecord};
    let u = seed_user(&*s).await;
    let r = request(u);
    insert(&*s, &r).await;
    let profile = |id| ProfileRecord {
        uuid: id,
        status: ProfileStatus::New,
        flags: 1,
        parent: None,
        primary: None,
        assigned_user: u,
        template: r.profile_template,
        template_version: 1,
        comment: String::new(),
        request: r.uuid,
        created: Timestamp::from_micros(7),
        version: 0,
        smartcard: None,
    };
    let (won, lost) = (ProfileId::new_time_ordered(), ProfileId::new_time_ordered());
    let next = Request {
        status: RequestStatus::Executing,
        new_profile: Some(won),
        ..r.clone()
    };
    let ev = event(&next, r.status, "issue");
    let w = Write::Update {
        request: next.clone(),
        approval: None,
        event: ev.clone(),
        effects: vec![Effect::InsertProfile(profile(won))],
    };
    assert_eq!(s.write(w).await.unwrap(), WriteOutcome::Done);
    // The same decision again, on the old version: it loses, and its profile is not written.
    let stale = Write::Update {
        request: next,
        approval: None,
        event: ev,
        effects: vec![Effect::InsertProfile(profile(lost))],
    };
    assert_eq!(s.write(stale).await.unwrap(), WriteOutcome::Conflict);
    assert_eq!(
        s.profile(won).await.unwrap().unwrap().status,
        ProfileStatus::New,
        "{}",
        s.engine()
    );
    assert!(s.profile(lost).await.unwrap().is_none());
    assert_eq!(s.profiles_of_request(r.uuid).await.unwrap().len(), 1);
}
on_each_engine!(effects_apply_with_a_winning_update_and_never_with_a_losing_one);

/// Two requests decided on the same profile version (two Renews, a Revoke racing a Suspend): the
/// store lets exactly one write through, in one batch or across batches, and nothing of the
/// other is written — neither its request change nor its profile change.
async fn of_two_writes_decided_on_one_profile_version_exactly_one_wins(s: Arc<dyn Storage>) {
    use opencm_domain::issued::{CertificateEvent, RevocationReason};
    use opencm_domain::profile::ProfileChange;
    use opencm_store::{Effect, ProfileRecord};
    for round in 0..10 {
        let u = seed_user(&*s).await;
        let (r1, r2) = (request(u), request(u));
        insert(&*s, &r1).await;
        insert(&*s, &r2).await;
        let p = ProfileId::new_time_ordered();
        let setup = Request {
            status: RequestStatus::Executing,
            ..r1.clone()
        };
        let w = Write::Update {
            request: setup.clone(),
            approval: None,
            event: event(&setup, r1.status, "setup"),
            effects: vec![Effect::InsertProfile(ProfileRecord {
                uuid: p,
                status: ProfileStatus::Active,
                flags: 1,
                parent: None,
                primary: None,
                assigned_user: u,
                template: r1.profile_template,
                template_version: 1,
                comment: String::new(),
                request: r1.uuid,
                created: Timestamp::from_micros(7),
                version: 0,
                smartcard: None,
            })],
        };
        assert_eq!(s.write(w).await.unwrap(), WriteOutcome::Done);
        let r1 = s.request(r1.uuid).await.unwrap().unwrap();
        let decided = |r: &Request, to: ProfileStatus, certs| {
            let next = Request {
                status: RequestStatus::Completed,
                ..r.clone()
            };
            Write::Update {
                request: next.clone(),
                approval: None,
                event: event(&next, r.status, "complete"),
                effects: vec![Effect::Profile(ProfileChange {
                    profile: p,
                    version: 0,
                    from: ProfileStatus::Active,
                    to,
                    superseded: false,
                    certificates: certs,
                })],
            }
        };
        let a = decided(
            &r1,
            ProfileStatus::Disabled,
            Some(CertificateEvent::Revoke(RevocationReason::Unspecified)),
        );
        let b = decided(&r2, ProfileStatus::Suspended, Some(CertificateEvent::Hold));
        let (ra, rb) = if round % 2 == 0 {
            tokio::join!(s.write(a), s.write(b))
        } else {
            let ra = s.write(a).await;
            (ra, s.write(b).await)
        };
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(
            (ra == WriteOutcome::Done) != (rb == WriteOutcome::Done),
            "{}: {ra:?} {rb:?}",
            s.engine()
        );
        let profile = s.profile(p).await.unwrap().unwrap();
        assert_eq!(profile.version, 1, "{}", s.engine());
        let (winner, loser, status) = if ra == WriteOutcome::Done {
            (r1.uuid, r2.uuid, ProfileStatus::Disabled)
        } else {
            (r2.uuid, r1.uuid, ProfileStatus::Suspended)
        };
        assert_eq!(profile.status, status);
        let w = s.request(winner).await.unwrap().unwrap();
        assert_eq!(w.status, RequestStatus::Completed);
        let l = s.request(loser).await.unwrap().unwrap();
        assert_ne!(l.status, RequestStatus::Completed, "{}", s.engine());
    }
}
on_each_engine!(of_two_writes_decided_on_one_profile_version_exactly_one_wins);

async fn a_reimported_template_is_read_back_changed_even_at_the_same_instant(s: Arc<dyn Storage>) {
    use opencm_domain::template::{ProfileTemplate, TemplateKind};
    let mut t = ProfileTemplate {
        uuid: Guid::new_random().into(),
        name: "Before".into(),
        description: String::new(),
        kind: TemplateKind::Software,
        version: 1,
        security_descriptor: SecurityDescriptor::parse("D:(A;;RC;;;AU)").unwrap(),
        policies: Default::default(),
        certificates: vec![],
    };
    let at = Timestamp::from_micros(42);
    s.put_templates(std::slice::from_ref(&t), at).await.unwrap();
    let before = s.template(t.uuid).await.unwrap().unwrap();
    assert_eq!(before.template.name, "Before");
    t.name = "After".into();
    t.version = 2;
    s.put_templates(std::slice::from_ref(&t), at).await.unwrap();
    let after = s.template(t.uuid).await.unwrap().unwrap();
    assert_eq!(after.template, t, "{}", s.engine());
    assert!(
        after.revision > before.revision,
        "{}: every import increments the revision caches check",
        s.engine()
    );
    assert_eq!(
        s.template_revision(t.uuid).await.unwrap(),
        Some(after.revision)
    );
    assert!(s
        .template(Guid::new_random().into())
        .await
        .unwrap()
        .is_none());
}
on_each_engine!(a_reimported_template_is_read_back_changed_even_at_the_same_instant);

/// SQLite: within `snapshot_scope` (each HTTP request runs in one), a task's reads share one read
/// transaction — they agree with each other even while another process commits — until the task
/// writes; its next read then sees its write and everything committed before it.
#[tokio::test]
async fn reads_in_a_snapshot_scope_agree_until_the_task_writes() {
    use opencm_app::ports::{AdminEvent, IdentityChange};
    let url = fresh_sqlite_url();
    let s = store(url.clone()).await;
    // A second store on the same file: another process, as `opencm user disable` is.
    let other = store(url).await;
    let alice = seed_user(&*s).await;
    // Another task (outside this task's scope), as another process would be.
    let disable = |user: UserId| {
        let other = other.clone();
        async move {
            tokio::spawn(async move {
                other
                    .change_identity(
                        &IdentityChange::DisableUser {
                            user,
                            at: Timestamp::from_micros(2),
                        },
                        &AdminEvent {
                            at: Timestamp::from_micros(2),
                            actor: "test".into(),
                            action: "DisableUser",
                            subject: user.to_string(),
                        },
                    )
                    .await
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let disable = &disable;
    opencm_store::sqlite::snapshot_scope(async {
        let epoch = s.identity_epoch().await.unwrap();
        assert!(!s.user_disabled(alice).await.unwrap());
        assert!(disable(alice).await);
        // The same snapshot: neither the epoch nor the flag has moved for this task yet.
        assert_eq!(s.identity_epoch().await.unwrap(), epoch);
        assert!(!s.user_disabled(alice).await.unwrap());
        // The task writes: its next read is a new snapshot, with the other process's change.
        s.add_group("snapshot-test", "S-1-5-21-9-4242")
            .await
            .unwrap();
        assert!(s.identity_epoch().await.unwrap() > epoch);
        assert!(s.user_disabled(alice).await.unwrap());
    })
    .await;
    // Outside a scope every read is fresh.
    let bob = seed_user(&*s).await;
    assert!(!s.user_disabled(bob).await.unwrap());
    assert!(disable(bob).await);
    assert!(s.user_disabled(bob).await.unwrap());
}
