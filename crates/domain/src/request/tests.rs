use super::*;
use crate::ids::Guid;
use crate::policy::{DataItem, PolicyKey, ProvidedBy, Validation};
use crate::template::TemplateKind;
use crate::testing::user;
use std::collections::BTreeMap;

const APPROVERS: &str = "S-1-5-21-7-5000";
const AGENTS: &str = "S-1-5-21-7-6000";

fn template(approvals: u32, agent_required: bool) -> ProfileTemplate {
    let policy = WorkflowPolicy {
        enabled: true,
        approvals_needed: approvals,
        authorized_approver: SecurityDescriptor::parse(&format!("D:(A;;CR;;;{APPROVERS})"))
            .unwrap(),
        authorized_enrollment_agent: SecurityDescriptor::parse(&format!("D:(A;;CR;;;{AGENTS})"))
            .unwrap(),
        authorized_initiator: SecurityDescriptor::parse(&format!("D:(A;;CR;;;{AGENTS})")).unwrap(),
        initiator_target_groups: vec![],
        collect_comments: false,
        collect_request_priority: true,
        default_request_priority: 100,
        documents: vec![],
        enroll_agent_required: agent_required,
        one_time_password_policy: String::new(),
        personalization: String::new(),
        data_collection: vec![DataItem {
            name: "Request Reason".into(),
            description: String::new(),
            required: true,
            provided_by: ProvidedBy::Subscriber,
            validation: Some(Validation::new("[A-Za-z ]{3,}").unwrap()),
        }],
        self_service_enabled: true,
    };
    let mut policies = BTreeMap::new();
    policies.insert(PolicyKey(RequestType::Enroll), policy);
    ProfileTemplate {
        uuid: Guid::from_uuid(uuid::Uuid::from_u128(42)).into(),
        name: "VPN".into(),
        description: String::new(),
        kind: TemplateKind::Software,
        version: 1,
        security_descriptor: SecurityDescriptor::parse("D:(A;;RCCR;;;AU)").unwrap(),
        policies,
        certificates: vec![],
    }
}

fn input<'a>(
    t: &'a ProfileTemplate,
    caller: &'a Principal,
    target: &'a Principal,
) -> CreateInput<'a> {
    CreateInput {
        id: Guid::new_random().into(),
        now: Timestamp::from_micros(1_000_000),
        request_type: RequestType::Enroll,
        template: t,
        caller,
        target,
        data: vec![("request reason".into(), Some("Need VPN".into()))],
        comment: String::new(),
        priority: None,
        on_profile: None,
        on_card: None,
        target_enabled: true,
    }
}

#[test]
fn self_service_request_is_approved_when_no_approval_is_needed() {
    let t = template(0, false);
    let alice = user(1, &[]);
    let r = create(input(&t, &alice, &alice)).unwrap();
    assert_eq!(r.status, RequestStatus::Approved);
    assert_eq!(r.priority, 100);
    assert_eq!(
        r.data_collection,
        vec![DataValue {
            name: "Request Reason".into(),
            value: Some("Need VPN".into())
        }]
    );
    assert!(r.is_data_collection_complete());
    assert!(!r.flags.is_enrollment_agent());
}

#[test]
fn descriptor_is_written_exactly_as_spec_section_6_says() {
    let t = template(1, false);
    let alice = user(1, &[]);
    let carol = user(3, &[AGENTS]);
    let r = create(input(&t, &carol, &alice)).unwrap();
    assert_eq!(
        r.security_descriptor.to_string(),
        "O:S-1-5-21-7-3D:(D;;LC;;;S-1-5-21-7-1)(D;;LC;;;S-1-5-21-7-3)(A;;LCRC;;;S-1-5-21-7-5000)\
         (A;;CCDCSWRC;;;S-1-5-21-7-1)(A;;DCRC;;;S-1-5-21-7-3)(A;;RC;;;S-1-5-21-7-1)(A;;GA;;;BA)"
    );
    assert_eq!(r.status, RequestStatus::Pending);
    assert!(r.flags.is_enrollment_agent());
}

#[test]
fn enrollment_agents_execute_when_the_policy_requires_one() {
    let t = template(0, true);
    let alice = user(1, &[]);
    let carol = user(3, &[AGENTS]);
    let r = create(input(&t, &alice, &alice)).unwrap();
    assert!(r.allows(&carol, rights::EXECUTE));
    assert!(!r.allows(&alice, rights::EXECUTE));
    assert!(r.allows(&alice, rights::CANCEL));
}

#[test]
fn creating_for_someone_else_needs_the_initiator_role() {
    let t = template(0, false);
    let alice = user(1, &[]);
    let bob = user(2, &[APPROVERS]);
    assert!(matches!(
        create(input(&t, &bob, &alice)),
        Err(CreateError::NotAllowed(_))
    ));
}

#[test]
fn an_initiator_scoped_to_groups_acts_only_for_their_members() {
    const SITE_A: &str = "S-1-5-21-7-7001";
    let mut t = template(0, false);
    for p in t.policies.values_mut() {
        p.initiator_target_groups = vec![Sid::parse(SITE_A).unwrap()];
    }
    let helpdesk = user(3, &[AGENTS]);
    let in_site = user(1, &[SITE_A]);
    let elsewhere = user(2, &[]);
    assert!(create(input(&t, &helpdesk, &in_site)).is_ok());
    match create(input(&t, &helpdesk, &elsewhere)) {
        Err(CreateError::NotAllowed(m)) => assert!(m.contains("user2"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Self-service is not on behalf of anyone: the scope does not apply.
    assert!(create(input(&t, &elsewhere, &elsewhere)).is_ok());
}

#[test]
fn data_collection_errors_name_the_item() {
    let t = template(0, false);
    let alice = user(1, &[]);
    let mut i = input(&t, &alice, &alice);
    i.data = vec![];
    assert_eq!(
        create(i).unwrap_err(),
        CreateError::MissingData("Request Reason".into())
    );
    let mut i = input(&t, &alice, &alice);
    i.data = vec![("Request Reason".into(), Some("!!".into()))];
    assert_eq!(
        create(i).unwrap_err(),
        CreateError::InvalidData("Request Reason".into())
    );
    let mut i = input(&t, &alice, &alice);
    i.data.push(("City".into(), Some("Seattle".into())));
    assert!(matches!(create(i).unwrap_err(), CreateError::UnknownData(n, _) if n == "City"));
    let mut i = input(&t, &alice, &alice);
    i.priority = Some(256);
    assert_eq!(create(i).unwrap_err(), CreateError::PriorityOutOfRange(256));
}

#[test]
fn unreadable_template_is_not_found_and_disabled_policy_is_refused() {
    let mut t = template(0, false);
    let alice = user(1, &[]);
    t.security_descriptor = SecurityDescriptor::parse("D:(A;;GA;;;BA)").unwrap();
    assert!(matches!(
        create(input(&t, &alice, &alice)),
        Err(CreateError::TemplateNotFound(_))
    ));
    let mut t = template(0, false);
    t.policies.values_mut().for_each(|p| p.enabled = false);
    assert!(matches!(
        create(input(&t, &alice, &alice)),
        Err(CreateError::PolicyNotEnabled(..))
    ));
}

#[test]
fn approvals_need_distinct_approvers_and_no_self_approval() {
    let t = template(2, false);
    let alice = user(1, &[APPROVERS]);
    let bob = user(2, &[APPROVERS]);
    let dave = user(4, &[APPROVERS]);
    let r = create(input(&t, &alice, &alice)).unwrap();
    let now = Timestamp::from_micros(2_000_000);
    // Alice is an approver but the target: denied by the request's own descriptor.
    assert!(matches!(
        decide(&r, 2, &alice, &[], Decision::Approve, String::new(), now),
        Err(ActionError::Forbidden(..))
    ));
    let (r1, a1) = decide(&r, 2, &bob, &[], Decision::Approve, String::new(), now).unwrap();
    assert_eq!(r1.status, RequestStatus::Pending);
    assert!(matches!(
        decide(
            &r1,
            2,
            &bob,
            std::slice::from_ref(&a1),
            Decision::Approve,
            String::new(),
            now
        ),
        Err(ActionError::AlreadyDecided(_))
    ));
    let (r2, _) = decide(&r1, 2, &dave, &[a1], Decision::Approve, String::new(), now).unwrap();
    assert_eq!(r2.status, RequestStatus::Approved);
    assert_eq!(r2.completed, None);
}

#[test]
fn a_deny_ends_the_request() {
    let t = template(2, false);
    let alice = user(1, &[]);
    let bob = user(2, &[APPROVERS]);
    let r = create(input(&t, &alice, &alice)).unwrap();
    let (r1, _) = decide(
        &r,
        2,
        &bob,
        &[],
        Decision::Deny,
        "no".into(),
        Timestamp::from_micros(5),
    )
    .unwrap();
    assert_eq!(r1.status, RequestStatus::Denied);
    assert_eq!(r1.completed, Some(Timestamp::from_micros(5)));
}

#[test]
fn finish_checks_rights_then_state_and_is_idempotent() {
    let t = template(1, false);
    let alice = user(1, &[]);
    let bob = user(2, &[APPROVERS]);
    let eve = user(9, &[]);
    let r = create(input(&t, &alice, &alice)).unwrap();
    let now = Timestamp::from_micros(9);
    assert_eq!(
        finish(&r, &eve, Outcome::Completed, now),
        Err(ActionError::NotFound(r.uuid))
    );
    assert!(matches!(
        finish(&r, &bob, Outcome::Completed, now),
        Err(ActionError::Forbidden(..))
    ));
    assert!(matches!(
        finish(&r, &alice, Outcome::Completed, now),
        Err(ActionError::Transition(_))
    ));
    let Change::To(c) = finish(&r, &alice, Outcome::Canceled, now).unwrap() else {
        panic!()
    };
    assert_eq!(
        (c.status, c.completed),
        (RequestStatus::Canceled, Some(now))
    );
    assert_eq!(
        finish(&c, &alice, Outcome::Canceled, now).unwrap(),
        Change::AlreadyDone
    );
}
