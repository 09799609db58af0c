//! The storage ports of `opencm-app`, implemented once for both engines: each method is the
//! statement it runs (from `sql/`), the values it binds, and the decoder it reads with.

use crate::engine::Engine;
use crate::sql::identity::UserRow;
use crate::sql::{self, args, Rows, Step};
use async_trait::async_trait;
use opencm_app::ports::{
    AdminEvent, AuditLog, AuditQuery, CaStore, CertificateRecord, CertificateStore, Database,
    Finished, Gauges, IdentityChange, IdentityStore, NewUser, OutboxAttempt, OutboxStore,
    ProfileQuery, ProfileRecord, ProfileStore, RequestQuery, RequestStore, RevokedCertificate,
    SerialStatus, SessionStore, SmartcardRecord, SmartcardStore, StoreError, StoredCa,
    StoredTemplate, TemplateStore, TokenRecord, Transactions, Write, WriteOutcome,
};
use opencm_domain::notification::{OutboxRow, OutboxState};
use opencm_domain::request::{Approval, AuditEvent, Request};
use opencm_domain::session::SessionRecord;
use opencm_domain::template::ProfileTemplate;
use opencm_domain::{
    Guid, Principal, ProfileId, RequestId, Sid, SmartcardId, TemplateId, Timestamp, UserId,
};

/// A store on engine `E`.
pub struct Store<E>(pub(crate) E);

impl<E: Engine> Store<E> {
    /// The first row of `sql`, if any.
    async fn one<T: Send + 'static>(
        &self,
        sql: &str,
        args: Vec<sql::Arg>,
        decode: sql::Decode<T>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self
            .0
            .query(sql, args, Rows::Few, decode)
            .await?
            .into_iter()
            .next())
    }

    async fn principal(&self, row: UserRow) -> Result<Principal, StoreError> {
        let groups = self
            .0
            .query(sql::identity::GROUPS_OF, args![&row.uuid], Rows::Few, |r| {
                r.text("group_sid")
            })
            .await?;
        let certificate_mappings = self
            .0
            .query(
                sql::identity::MAPPINGS_OF,
                args![&row.uuid],
                Rows::Few,
                |r| r.text("mapping"),
            )
            .await?;
        Ok(Principal {
            uuid: crate::rows::guid(&row.uuid)?.into(),
            login: row.login,
            display_name: row.display_name,
            sid: Sid::parse(&row.sid).map_err(StoreError::corrupt)?,
            groups: groups
                .iter()
                .map(|g| Sid::parse(g).map_err(StoreError::corrupt))
                .collect::<Result<_, _>>()?,
            upn: None,
            email: row.email,
            certificate_mappings,
            language: row.language,
        })
    }

    async fn user_where(&self, sql: &str, key: String) -> Result<Option<Principal>, StoreError> {
        match self
            .one(sql, args![key], sql::identity::decode_user)
            .await?
        {
            Some(row) => Ok(Some(self.principal(row).await?)),
            None => Ok(None),
        }
    }

    /// 1 when the user is disabled, 0 when not, `None` for a user opencm does not keep.
    async fn disabled(&self, id: UserId) -> Result<Option<i64>, StoreError> {
        self.one(sql::identity::DISABLED, args![id], |r| r.int("disabled"))
            .await
    }

    async fn transact_one(
        &self,
        sql: &'static str,
        args: Vec<sql::Arg>,
    ) -> Result<u64, StoreError> {
        Ok(self.0.transact(vec![Step::new(sql, args)]).await?[0])
    }
}

/// A unique key's violation said as what the caller tried to make twice.
fn duplicate(e: StoreError, what: impl FnOnce() -> String) -> StoreError {
    match e {
        StoreError::Duplicate(_) => StoreError::Duplicate(what()),
        other => other,
    }
}

#[async_trait]
impl<E: Engine> Database for Store<E> {
    fn engine(&self) -> &'static str {
        self.0.name()
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        self.0.migrate().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
    async fn close(&self) {
        self.0.close().await
    }
    async fn backup(&self, dest: &std::path::Path) -> Result<(), StoreError> {
        self.0.backup(dest).await
    }
    async fn gauges(&self, now: Timestamp) -> Result<Gauges, StoreError> {
        use opencm_domain::smartcard::SmartcardStatus;
        let smartcards_by_status = self
            .0
            .query(sql::smartcards::COUNT_BY_STATUS, args![], Rows::Few, |r| {
                let status = r.int("status")?;
                Ok((
                    SmartcardStatus::from_number(status)
                        .ok_or_else(|| StoreError::corrupt(format!("card status {status}")))?,
                    r.int("n")?,
                ))
            })
            .await?;
        let mut expiring = [0i64; 2];
        for (slot, days) in expiring.iter_mut().zip([7i64, 30]) {
            let until = Timestamp::from_micros(now.micros() + days * 86_400_000_000);
            *slot = self
                .0
                .query(
                    sql::certificates::COUNT_EXPIRING,
                    args![now.micros(), until.micros()],
                    Rows::Few,
                    |r| r.int("n"),
                )
                .await?
                .into_iter()
                .next()
                .unwrap_or(0);
        }
        let revoked_by_reason = self
            .0
            .query(sql::certificates::COUNT_REVOKED, args![], Rows::Few, |r| {
                let reason = r
                    .opt_int("revocation_reason")?
                    .and_then(opencm_domain::issued::RevocationReason::from_code)
                    .unwrap_or(opencm_domain::issued::RevocationReason::Unspecified);
                Ok((reason, r.int("n")?))
            })
            .await?;
        Ok(Gauges {
            revoked_by_reason,
            smartcards_by_status,
            expiring_7_days: expiring[0],
            expiring_30_days: expiring[1],
        })
    }
}

#[async_trait]
impl<E: Engine> Transactions for Store<E> {
    async fn write(&self, w: Write) -> Result<WriteOutcome, StoreError> {
        self.0.write(w).await
    }
}

#[async_trait]
impl<E: Engine> IdentityStore for Store<E> {
    async fn add_user(&self, u: &NewUser, now: Timestamp) -> Result<(), StoreError> {
        use sql::identity::{args_of_user, ADD_MEMBER, INSERT_USER};
        let mut steps = vec![Step::new(INSERT_USER, args_of_user(u, now)).or_stop()];
        steps.extend(
            u.groups
                .iter()
                .map(|g| Step::new(ADD_MEMBER, args![u.uuid, g])),
        );
        let changed = self.0.transact(steps).await.map_err(|e| {
            duplicate(e, || {
                format!("a user with login '{}', that uuid or SID", u.login)
            })
        })?;
        if changed[0] == 0 {
            // A user's own SID is never a group's: members of it would act as the user.
            return Err(StoreError::Duplicate(format!("a group with SID {}", u.sid)));
        }
        Ok(())
    }

    async fn add_group(&self, name: &str, sid: &str) -> Result<(), StoreError> {
        self.transact_one(sql::identity::INSERT_GROUP, args![sid, name])
            .await
            .map_err(|e| duplicate(e, || format!("a group named '{name}' or with SID {sid}")))?;
        Ok(())
    }

    async fn user_by_uuid(&self, id: UserId) -> Result<Option<Principal>, StoreError> {
        self.user_where(sql::identity::USER_BY_UUID, id.to_string())
            .await
    }

    async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, StoreError> {
        self.user_where(sql::identity::USER_BY_LOGIN, login.to_string())
            .await
    }

    async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(self
            .one(sql::identity::COUNT_USERS, Vec::new(), |r| r.int("users"))
            .await?
            .unwrap_or(0))
    }

    async fn first_use(
        &self,
        authenticator: &str,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        use sql::identity::{FIRST_USE, FORGET_EXPIRED_REPLAYS};
        let changed = self
            .0
            .transact(vec![
                Step::new(FORGET_EXPIRED_REPLAYS, args![now.micros()]),
                Step::new(FIRST_USE, args![authenticator, expires.micros()]),
            ])
            .await?;
        Ok(changed[1] == 1)
    }

    async fn local_user_enabled(&self, id: UserId) -> Result<Option<bool>, StoreError> {
        Ok(self.disabled(id).await?.map(|d| d == 0))
    }

    async fn user_with_sid(&self, sid: &str) -> Result<Option<String>, StoreError> {
        self.one(sql::identity::LOGIN_WITH_SID, args![sid], |r| {
            r.text("login")
        })
        .await
    }

    async fn members_of(&self, sid: &str) -> Result<Vec<Principal>, StoreError> {
        let rows = self
            .0
            .query(
                sql::identity::MEMBERS_OF,
                args![sid],
                Rows::Many,
                sql::identity::decode_user,
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.principal(row).await?);
        }
        Ok(out)
    }

    async fn user_disabled(&self, id: UserId) -> Result<bool, StoreError> {
        Ok(self.disabled(id).await? == Some(1))
    }

    async fn add_token(
        &self,
        hash: &str,
        user: UserId,
        now: Timestamp,
        expires: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.transact_one(
            sql::identity::INSERT_TOKEN,
            args![hash, user, now.micros(), expires.map(|e| e.micros())],
        )
        .await?;
        Ok(())
    }

    async fn principal_by_token(
        &self,
        hash: &str,
        now: Timestamp,
    ) -> Result<Option<(Principal, Option<Timestamp>)>, StoreError> {
        let row = self
            .one(
                sql::identity::USER_OF_TOKEN,
                args![hash],
                sql::identity::decode_token_user,
            )
            .await?;
        let Some((user, expires)) = row else {
            return Ok(None);
        };
        if expires.is_some_and(|e| e <= now.micros()) {
            return Ok(None);
        }
        Ok(Some((
            self.principal(user).await?,
            expires.map(Timestamp::from_micros),
        )))
    }

    async fn identity_epoch(&self) -> Result<i64, StoreError> {
        self.one(sql::identity::EPOCH, Vec::new(), |r| r.int("epoch"))
            .await?
            .ok_or_else(|| StoreError::corrupt("no identity epoch"))
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.0
            .query(
                sql::identity::TOKENS,
                Vec::new(),
                Rows::Many,
                sql::identity::decode_token,
            )
            .await
    }

    async fn change_identity(
        &self,
        change: &IdentityChange,
        event: &AdminEvent,
    ) -> Result<bool, StoreError> {
        let changed = self
            .0
            .transact(sql::identity::change_steps(change, event))
            .await?;
        Ok(changed[0] > 0)
    }
}

#[async_trait]
impl<E: Engine> SmartcardStore for Store<E> {
    async fn smartcard(&self, id: SmartcardId) -> Result<Option<SmartcardRecord>, StoreError> {
        self.one(sql::smartcards::BY_UUID, args![id], sql::smartcards::decode)
            .await
    }

    async fn smartcards_by_card_id(
        &self,
        card_id: Guid,
    ) -> Result<Vec<SmartcardRecord>, StoreError> {
        self.0
            .query(
                sql::smartcards::BY_CARD_ID,
                args![card_id],
                Rows::Few,
                sql::smartcards::decode,
            )
            .await
    }

    async fn smartcards_of(
        &self,
        user: Option<UserId>,
    ) -> Result<Vec<SmartcardRecord>, StoreError> {
        let (sql, args) = match user {
            Some(u) => (sql::smartcards::OF_USER, args![u]),
            None => (sql::smartcards::ALL, Vec::new()),
        };
        self.0
            .query(sql, args, Rows::Many, sql::smartcards::decode)
            .await
    }

    async fn search_smartcards(
        &self,
        q: &opencm_app::ports::CardSearch,
    ) -> Result<Vec<SmartcardRecord>, StoreError> {
        self.0
            .query(
                sql::smartcards::SEARCH,
                sql::smartcards::search_args(q),
                Rows::Many,
                sql::smartcards::decode,
            )
            .await
    }

    async fn profiles_of_smartcard(
        &self,
        card: SmartcardId,
    ) -> Result<Vec<ProfileRecord>, StoreError> {
        self.0
            .query(
                sql::profiles::ON_SMARTCARD,
                args![card],
                Rows::Few,
                sql::profiles::decode,
            )
            .await
    }

    async fn sealed_pin(&self, card: SmartcardId) -> Result<Option<String>, StoreError> {
        Ok(self
            .one(sql::smartcards::SEALED_PIN, args![card], |r| {
                r.opt_text("sealed_pin")
            })
            .await?
            .flatten())
    }

    async fn card_master(&self, version: Option<i64>) -> Result<Option<(i64, String)>, StoreError> {
        let (sql, args) = match version {
            Some(v) => (sql::smartcards::MASTER, args![v]),
            None => (sql::smartcards::LATEST_MASTER, Vec::new()),
        };
        self.one(sql, args, sql::smartcards::decode_master).await
    }

    async fn add_card_master(
        &self,
        version: i64,
        sealed: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let added = self
            .transact_one(
                sql::smartcards::INSERT_MASTER,
                args![version, sealed, now.micros()],
            )
            .await?;
        Ok(added == 1)
    }
}

fn template_of(body: &str) -> Result<ProfileTemplate, StoreError> {
    serde_json::from_str(body).map_err(StoreError::corrupt)
}

#[async_trait]
impl<E: Engine> TemplateStore for Store<E> {
    async fn put_templates(
        &self,
        ts: &[ProfileTemplate],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let steps = ts
            .iter()
            .map(|t| {
                let body = serde_json::to_string(t).map_err(StoreError::corrupt)?;
                Ok(Step::new(
                    sql::ca::PUT_TEMPLATE,
                    args![t.uuid, &t.name, body, now.micros()],
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.0.transact(steps).await.map_err(|e| {
            duplicate(e, || {
                "another profile template has the name of one imported".to_string()
            })
        })?;
        Ok(())
    }

    async fn templates(&self) -> Result<Vec<ProfileTemplate>, StoreError> {
        let stored = self
            .0
            .query(sql::ca::TEMPLATES, Vec::new(), Rows::Many, |r| {
                Ok((r.text("uuid")?, r.text("body")?))
            })
            .await?;
        Ok(stored
            .into_iter()
            .filter_map(|(uuid, body)| match template_of(&body) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::error!(template = %uuid, error = %e, "a stored profile template cannot be read and is left out; import it again");
                    None
                }
            })
            .collect())
    }

    async fn template_revision(&self, id: TemplateId) -> Result<Option<i64>, StoreError> {
        self.one(sql::ca::TEMPLATE_REVISION, args![id], |r| r.int("revision"))
            .await
    }

    async fn template(&self, id: TemplateId) -> Result<Option<StoredTemplate>, StoreError> {
        let stored = self
            .one(sql::ca::TEMPLATE, args![id], |r| {
                Ok((r.int("revision")?, r.text("body")?))
            })
            .await?;
        stored
            .map(|(revision, body)| {
                let template = template_of(&body).map_err(|e| {
                    StoreError::corrupt(format!(
                        "stored profile template {id} cannot be read ({e}); import it again"
                    ))
                })?;
                Ok(StoredTemplate { revision, template })
            })
            .transpose()
    }
}

#[async_trait]
impl<E: Engine> RequestStore for Store<E> {
    async fn request(&self, id: RequestId) -> Result<Option<Request>, StoreError> {
        self.one(sql::requests::BY_UUID, args![id], sql::requests::decode)
            .await
    }

    async fn secret(
        &self,
        id: RequestId,
    ) -> Result<Option<opencm_domain::request::secrets::SecretRecord>, StoreError> {
        self.one(
            sql::requests::SECRET,
            args![id],
            sql::requests::decode_secret,
        )
        .await
    }

    async fn list_requests(&self, q: &RequestQuery) -> Result<Vec<Request>, StoreError> {
        let Some(page) = sql::requests::list(q) else {
            return Ok(Vec::new());
        };
        self.0
            .query(&page.sql, page.args, Rows::Many, sql::requests::decode)
            .await
    }

    async fn approvals(&self, id: RequestId) -> Result<Vec<Approval>, StoreError> {
        self.0
            .query(
                sql::requests::APPROVALS_OF,
                args![id],
                Rows::Few,
                sql::requests::decode_approval,
            )
            .await
    }

    async fn decided_by(
        &self,
        approver: UserId,
        limit: u32,
    ) -> Result<Vec<(Request, Approval)>, StoreError> {
        self.0
            .query(
                sql::portal::DECIDED_BY,
                args![approver, i64::from(limit)],
                // Bounded (the queue shows 50): read inline, no blocking-pool handoff.
                Rows::Few,
                sql::portal::decode_decided,
            )
            .await
    }
}

#[async_trait]
impl<E: Engine> SessionStore for Store<E> {
    async fn set_password(
        &self,
        user: UserId,
        phc: &str,
        event: &AdminEvent,
    ) -> Result<(), StoreError> {
        use sql::portal::{END_SESSIONS_OF, SET_PASSWORD};
        self.0
            .transact(vec![
                Step::new(SET_PASSWORD, args![user, phc, event.at.micros()]),
                Step::new(END_SESSIONS_OF, args![user]),
                Step::new(
                    sql::identity::INSERT_ADMIN_EVENT,
                    args![
                        event.at.micros(),
                        &event.actor,
                        event.action,
                        &event.subject
                    ],
                ),
            ])
            .await?;
        Ok(())
    }

    async fn password_of(&self, login: &str) -> Result<Option<(UserId, String)>, StoreError> {
        self.one(sql::portal::PASSWORD_OF, args![login], |r| {
            Ok((r.guid("uuid")?.into(), r.text("phc")?))
        })
        .await
    }

    async fn create_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        use sql::portal::{session_args, FORGET_EXPIRED_SESSIONS, INSERT_SESSION};
        self.0
            .transact(vec![
                Step::new(FORGET_EXPIRED_SESSIONS, args![s.created.micros()]),
                Step::new(INSERT_SESSION, session_args(s)),
            ])
            .await?;
        Ok(())
    }

    async fn session(&self, hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.one(
            sql::portal::SESSION,
            args![hash],
            sql::portal::decode_session,
        )
        .await
    }

    async fn touch_session(&self, hash: &str, at: Timestamp) -> Result<(), StoreError> {
        self.transact_one(sql::portal::TOUCH_SESSION, args![at.micros(), hash])
            .await?;
        Ok(())
    }

    async fn end_session(&self, hash: &str) -> Result<(), StoreError> {
        self.transact_one(sql::portal::END_SESSION, args![hash])
            .await?;
        Ok(())
    }
}

#[async_trait]
impl<E: Engine> AuditLog for Store<E> {
    async fn history(&self, id: RequestId) -> Result<Vec<AuditEvent>, StoreError> {
        self.0
            .query(
                sql::requests::HISTORY,
                args![id],
                Rows::Few,
                sql::requests::decode_event,
            )
            .await
    }

    async fn search(&self, q: &AuditQuery) -> Result<Vec<(i64, AuditEvent)>, StoreError> {
        self.0
            .query(
                sql::portal::AUDIT_SEARCH,
                sql::portal::audit_search_args(q),
                Rows::Many,
                |r| Ok((r.int("id")?, sql::requests::decode_event(r)?)),
            )
            .await
    }
}

#[async_trait]
impl<E: Engine> CaStore for Store<E> {
    async fn ca(&self) -> Result<Option<StoredCa>, StoreError> {
        self.one(sql::ca::CA, Vec::new(), sql::ca::decode_ca).await
    }

    async fn init_ca(&self, ca: &StoredCa, now: Timestamp) -> Result<StoredCa, StoreError> {
        self.transact_one(
            sql::ca::INIT_CA,
            args![&ca.cert_pem, &ca.chain_pem, &ca.sealed_key, now.micros()],
        )
        .await?;
        // Whichever node stored its CA first, every node uses that one.
        self.ca()
            .await?
            .ok_or_else(|| StoreError::Database("the CA row vanished".into()))
    }

    async fn replace_ca(&self, ca: &StoredCa, now: Timestamp) -> Result<(), StoreError> {
        self.transact_one(
            sql::ca::REPLACE_CA,
            args![&ca.cert_pem, &ca.chain_pem, &ca.sealed_key, now.micros()],
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl<E: Engine> ProfileStore for Store<E> {
    async fn profile(&self, id: ProfileId) -> Result<Option<ProfileRecord>, StoreError> {
        self.one(sql::profiles::BY_UUID, args![id], sql::profiles::decode)
            .await
    }

    async fn profiles(&self, q: &ProfileQuery) -> Result<Vec<ProfileRecord>, StoreError> {
        let page = sql::profiles::list(q);
        self.0
            .query(&page.sql, page.args, Rows::Many, sql::profiles::decode)
            .await
    }

    async fn profiles_of_request(
        &self,
        request: RequestId,
    ) -> Result<Vec<ProfileRecord>, StoreError> {
        self.0
            .query(
                sql::profiles::OF_REQUEST,
                args![request],
                Rows::Few,
                sql::profiles::decode,
            )
            .await
    }
}

#[async_trait]
impl<E: Engine> CertificateStore for Store<E> {
    async fn certificates_of_profile(
        &self,
        profile: ProfileId,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.0
            .query(
                sql::certificates::OF_PROFILE,
                args![profile],
                Rows::Few,
                sql::certificates::decode,
            )
            .await
    }

    async fn has_certificates(&self, profile: ProfileId) -> Result<bool, StoreError> {
        Ok(self
            .one(sql::certificates::ONE_OF_PROFILE, args![profile], |r| {
                r.text("serial")
            })
            .await?
            .is_some())
    }

    async fn certificates_of_user(
        &self,
        user: UserId,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.0
            .query(
                sql::certificates::OF_USER,
                args![user],
                Rows::Many,
                sql::certificates::decode,
            )
            .await
    }

    async fn revoked_certificates(&self) -> Result<Vec<RevokedCertificate>, StoreError> {
        self.0
            .query(
                sql::certificates::REVOKED,
                Vec::new(),
                Rows::Many,
                sql::certificates::decode_revoked,
            )
            .await
    }

    async fn serial_status(&self, serial_hex: &str) -> Result<SerialStatus, StoreError> {
        Ok(self
            .0
            .query(
                sql::certificates::STATUS_OF_SERIAL,
                args![serial_hex],
                Rows::Few,
                sql::certificates::decode_serial_status,
            )
            .await?
            .into_iter()
            .next()
            .unwrap_or(SerialStatus::Unknown))
    }

    async fn expiring_certificates(
        &self,
        now: Timestamp,
        until: Timestamp,
        days: i64,
        limit: u32,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.0
            .query(
                sql::certificates::EXPIRING,
                args![now.micros(), until.micros(), days, i64::from(limit)],
                Rows::Many,
                sql::certificates::decode,
            )
            .await
    }
}

#[async_trait]
impl<E: Engine> OutboxStore for Store<E> {
    async fn claim_outbox(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let claimed = self
            .transact_one(
                sql::outbox::CLAIM,
                args![node, until.micros(), now.micros(), i64::from(limit)],
            )
            .await?;
        if claimed == 0 {
            return Ok(Vec::new());
        }
        self.0
            .query(
                sql::outbox::CLAIMED,
                args![node, until.micros()],
                Rows::Few,
                sql::outbox::decode,
            )
            .await
    }

    async fn finish_outbox(
        &self,
        node: &str,
        id: Guid,
        at: Timestamp,
        lines: Vec<(String, String)>,
        outcome: Finished,
    ) -> Result<bool, StoreError> {
        use opencm_domain::notification::OutboxState as S;
        let attempt = |outcome: &str, detail: &str| {
            Step::new(
                sql::outbox::INSERT_ATTEMPT,
                args![id, at.micros(), node, outcome, detail],
            )
        };
        let mut steps: Vec<Step> = lines.iter().map(|(o, to)| attempt(o, to)).collect();
        let (state, next_at, error, finished, follow) = match &outcome {
            Finished::Delivered { detail } => {
                steps.push(attempt("delivered", detail));
                (S::Delivered, at, None, Some(at), &[][..])
            }
            Finished::Retry { next_at, error } => {
                steps.push(attempt("failed", error));
                (S::Pending, *next_at, Some(error.clone()), None, &[][..])
            }
            Finished::Dead { error, follow } => {
                steps.push(attempt("dead", error));
                (
                    S::Dead,
                    at,
                    Some(error.clone()),
                    Some(at),
                    follow.as_slice(),
                )
            }
        };
        let finish = steps.len();
        steps.push(
            Step::new(
                sql::outbox::FINISH,
                args![
                    state.number(),
                    next_at.micros(),
                    error,
                    finished,
                    id,
                    S::Pending.number(),
                    node
                ],
            )
            .or_stop(),
        );
        steps.extend(
            follow
                .iter()
                .map(|r| Step::new(sql::outbox::INSERT, sql::outbox::insert_args(r))),
        );
        let changed = self.0.transact(steps).await?;
        Ok(changed.get(finish).copied().unwrap_or(0) == 1)
    }

    async fn outbox(
        &self,
        state: Option<OutboxState>,
        before: Option<(Timestamp, Guid)>,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let (created, id) =
            before.unwrap_or((Timestamp::from_micros(i64::MAX), Guid::from_u128(u128::MAX)));
        self.0
            .query(
                sql::outbox::LIST,
                args![
                    state.map_or(-1, OutboxState::number),
                    created.micros(),
                    id,
                    i64::from(limit)
                ],
                Rows::Many,
                sql::outbox::decode,
            )
            .await
    }

    async fn outbox_row(&self, id: Guid) -> Result<Option<OutboxRow>, StoreError> {
        self.one(sql::outbox::ROW, args![id], sql::outbox::decode)
            .await
    }

    async fn outbox_attempts(&self, id: Guid) -> Result<Vec<OutboxAttempt>, StoreError> {
        self.0
            .query(
                sql::outbox::ATTEMPTS,
                args![id],
                Rows::Few,
                sql::outbox::decode_attempt,
            )
            .await
    }

    async fn replay_outbox(&self, id: Guid, now: Timestamp, by: &str) -> Result<bool, StoreError> {
        let changed = self
            .0
            .transact(vec![
                Step::new(sql::outbox::REPLAY, args![now.micros(), id]).or_stop(),
                Step::new(
                    sql::outbox::INSERT_ATTEMPT,
                    args![
                        id,
                        now.micros(),
                        "-",
                        "replayed",
                        format!("replayed by {by}")
                    ],
                ),
            ])
            .await?;
        Ok(changed.first() == Some(&1))
    }

    async fn insert_outbox(
        &self,
        warning: Option<(String, i64)>,
        rows: Vec<OutboxRow>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut steps = Vec::new();
        if let Some((serial, days)) = &warning {
            steps.push(
                Step::new(sql::outbox::WARN_EXPIRY, args![serial, *days, now.micros()]).or_stop(),
            );
        }
        steps.extend(
            rows.iter()
                .map(|r| Step::new(sql::outbox::INSERT, sql::outbox::insert_args(r))),
        );
        if steps.is_empty() {
            return Ok(false);
        }
        let changed = self.0.transact(steps).await?;
        Ok(warning.is_none() || changed.first() == Some(&1))
    }

    async fn outbox_counts(&self) -> Result<Vec<(OutboxState, i64)>, StoreError> {
        self.0
            .query(sql::outbox::COUNTS, args![], Rows::Few, |r| {
                let state = r.int("state")?;
                Ok((
                    OutboxState::from_number(state).ok_or_else(|| StoreError::corrupt(state))?,
                    r.int("n")?,
                ))
            })
            .await
    }
}
