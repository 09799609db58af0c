//! A directory that goes down does not change what a caller without the right is told, nor stop
//! what needs no directory: a 403 stays a 403 (and costs no lookup: a caller cannot make the
//! server search the directory for GUIDs of their choosing), and canceling or denying a request
//! for a directory user goes on. Only what gives a directory user something — an approval, a
//! completion — waits for the directory (503 `DirectoryUnavailable`), because whether that user
//! was disabled cannot be known without it.
//!
//! The directory here is the one mock of this suite: failure injection (a real LDAP server is
//! exercised in directory.rs).

use crate::helpers::TestApp;
use async_trait::async_trait;
use opencm_app::ports::{Directory, StoreError};
use opencm_app::{App, ErrorCode, NewRequest, Settings};
use opencm_domain::request::Decision;
use opencm_domain::{Guid, Outcome, Principal, RequestStatus, RequestType, Sid, UserId};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const SOFTWARE: &str = "2b7044cf-aa96-4911-b886-177947e9271b";
const VSC: &str = "a039b4d0-5ce8-4eff-8651-181c6576fda3";

/// One directory user, Dana; the directory answers while `up`, and counts every lookup.
struct Flaky {
    up: AtomicBool,
    lookups: AtomicUsize,
    dana: Principal,
}

impl Flaky {
    fn answer(&self, found: Option<Principal>) -> Result<Option<Principal>, StoreError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.up.load(Ordering::SeqCst) {
            Ok(found)
        } else {
            Err(StoreError::DirectoryUnavailable(
                "ldap://dc1: connection refused".into(),
            ))
        }
    }
}

#[async_trait]
impl Directory for Flaky {
    async fn user_by_uuid(&self, id: UserId) -> Result<Option<Principal>, StoreError> {
        self.answer((id == self.dana.uuid).then(|| self.dana.clone()))
    }
    async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, StoreError> {
        self.answer((login == self.dana.login).then(|| self.dana.clone()))
    }
}

fn request_for(template: &str, target: UserId) -> NewRequest {
    NewRequest {
        template: Some(template.parse().unwrap()),
        profile: None,
        smartcard: None,
        request_type: RequestType::Enroll,
        target: Some(target),
        data: vec![("Request Reason".into(), Some("a new laptop".into()))],
        comment: "for Dana".into(),
        priority: None,
    }
}

async fn directory_down(app: TestApp) {
    let dir = Arc::new(Flaky {
        up: AtomicBool::new(true),
        lookups: AtomicUsize::new(0),
        dana: Principal {
            uuid: Guid::new_random().into(),
            login: "dana".into(),
            display_name: "Dana".into(),
            sid: Sid::parse("S-1-5-21-1000-1000-1000-1201").unwrap(),
            groups: Vec::new(),
            upn: None,
            email: None,
            certificate_mappings: Vec::new(),
            language: None,
        },
    });
    let core = App::new(app.store.clone(), app.clock.clone(), Settings::default())
        .with_directory(dir.clone());
    let (carol, bob, eve, admin) = (
        &app.users["carol"],
        &app.users["bob"],
        &app.users["eve"],
        &app.users["admin"],
    );
    let dana = dir.dana.uuid;

    // While the directory answers, the help desk starts requests for Dana.
    let software = core
        .create_request(carol, request_for(SOFTWARE, dana))
        .await
        .unwrap();
    assert_eq!(software.status, RequestStatus::Approved);
    let vsc = core
        .create_request(carol, request_for(VSC, dana))
        .await
        .unwrap();
    assert_eq!(vsc.status, RequestStatus::Pending);
    let vsc2 = core
        .create_request(carol, request_for(VSC, dana))
        .await
        .unwrap();

    dir.up.store(false, Ordering::SeqCst);
    let before = dir.lookups.load(Ordering::SeqCst);

    // Eve may not act for others: told so, for any GUID, without a lookup.
    for target in [dana, Guid::new_random().into()] {
        let e = core
            .create_request(eve, request_for(SOFTWARE, target))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied, "{e:?}");
    }
    assert_eq!(
        dir.lookups.load(Ordering::SeqCst),
        before,
        "no lookup for a refusal"
    );

    // Canceling and denying give Dana nothing: they go on.
    let canceled = core
        .finish(admin, software.uuid, Outcome::Canceled)
        .await
        .unwrap();
    assert_eq!(canceled.status, RequestStatus::Canceled);
    let denied = core
        .decide(bob, vsc.uuid, Decision::Deny, "not now".into())
        .await
        .unwrap();
    assert_eq!(denied.status, RequestStatus::Denied);

    // Approving would give Dana something: it waits for the directory, and says why.
    let e = core
        .decide(bob, vsc2.uuid, Decision::Approve, "ok".into())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::DirectoryUnavailable, "{e:?}");
    // Someone who may not approve is told so, directory or not.
    let e = core
        .decide(eve, vsc2.uuid, Decision::Approve, "ok".into())
        .await
        .unwrap_err();
    assert!(
        matches!(e.code, ErrorCode::RequestNotFound | ErrorCode::AccessDenied),
        "{e:?}"
    );

    // Back up: the approval goes through.
    dir.up.store(true, Ordering::SeqCst);
    let approved = core
        .decide(bob, vsc2.uuid, Decision::Approve, "ok".into())
        .await
        .unwrap();
    assert_eq!(approved.status, RequestStatus::Approved);
}
on_each_engine!(directory_down);
