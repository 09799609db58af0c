//! The `Store` implementation shared by both engines. The SQL is written once: every statement uses
//! `$n` placeholders, TEXT and 64-bit integers, and `ON CONFLICT`, which SQLite and PostgreSQL both
//! accept. The macro instantiates it for each engine's concrete sqlx types (sqlx's generic
//! `Database` bounds are far harder to read than one macro); engine differences are its arguments.

macro_rules! impl_store {
    ($store:ident, $db:ty, $engine:literal, $begin:literal, $migrator:expr) => {
        use crate::batch::{fail_all, BatchResult};
        use crate::rows::{guid, data_collection_json, ApprovalRow, AuditRow, RequestRow, UserRow, REQUEST_COLUMNS};
        use crate::{NewUser, RequestQuery, Store, StoreError, Write, WriteOutcome};
        use opencm_domain::policy::ProfileTemplate;
        use opencm_domain::request::{Approval, AuditEvent, Request};
        use opencm_domain::{Guid, Principal, Sid, Timestamp};

        type Conn = <$db as sqlx::Database>::Connection;

        async fn load_principal(pool: &sqlx::Pool<$db>, row: UserRow) -> Result<Principal, StoreError> {
            let groups: Vec<String> =
                sqlx::query_scalar("SELECT group_sid FROM user_groups WHERE user_uuid = $1 ORDER BY group_sid")
                    .bind(&row.uuid)
                    .fetch_all(pool)
                    .await?;
            Ok(Principal {
                uuid: guid(&row.uuid)?,
                login: row.login,
                display_name: row.display_name,
                sid: Sid::parse(&row.sid).map_err(StoreError::corrupt)?,
                groups: groups
                    .iter()
                    .map(|g| Sid::parse(g).map_err(StoreError::corrupt))
                    .collect::<Result<_, _>>()?,
            })
        }

        async fn insert_event(conn: &mut Conn, e: &AuditEvent) -> Result<(), sqlx::Error> {
            sqlx::query(
                "INSERT INTO audit_events (request_uuid, at, actor_uuid, action, from_status, to_status, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(e.request.to_string())
            .bind(e.at.micros())
            .bind(e.actor.to_string())
            .bind(&e.action)
            .bind(e.from.number())
            .bind(e.to.number())
            .bind(&e.detail)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn apply_one(conn: &mut Conn, w: &Write) -> Result<WriteOutcome, sqlx::Error> {
            match w {
                Write::Create { request: r, event } => {
                    sqlx::query(&format!(
                        "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
                    ))
                    .bind(r.uuid.to_string())
                    .bind(r.request_type.number())
                    .bind(r.status.number())
                    .bind(r.flags.0)
                    .bind(data_collection_json(r))
                    .bind(r.data_collection_flags)
                    .bind(r.originator.to_string())
                    .bind(r.target.to_string())
                    .bind(r.submitted.micros())
                    .bind(r.completed.to_option())
                    .bind(r.new_profile.to_string())
                    .bind(r.old_profile.to_string())
                    .bind(r.new_smartcard.to_string())
                    .bind(r.old_smartcard.to_string())
                    .bind(i64::from(r.priority))
                    .bind(&r.comment)
                    .bind(r.profile_template.to_string())
                    .bind(r.security_descriptor.to_string())
                    .bind(r.version)
                    .execute(&mut *conn)
                    .await?;
                    for sid in r.reader_sids() {
                        sqlx::query("INSERT INTO request_readers (sid, request_uuid) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                            .bind(sid.as_str())
                            .bind(r.uuid.to_string())
                            .execute(&mut *conn)
                            .await?;
                    }
                    insert_event(conn, event).await?;
                }
                Write::Update { request: r, approval, event } => {
                    let done = sqlx::query(
                        "UPDATE requests SET status = $1, flags = $2, data_collection = $3, data_collection_flags = $4, \
                         completed = $5, new_profile_uuid = $6, old_profile_uuid = $7, new_smartcard_uuid = $8, \
                         old_smartcard_uuid = $9, priority = $10, comment = $11, version = version + 1 \
                         WHERE uuid = $12 AND version = $13",
                    )
                    .bind(r.status.number())
                    .bind(r.flags.0)
                    .bind(data_collection_json(r))
                    .bind(r.data_collection_flags)
                    .bind(r.completed.to_option())
                    .bind(r.new_profile.to_string())
                    .bind(r.old_profile.to_string())
                    .bind(r.new_smartcard.to_string())
                    .bind(r.old_smartcard.to_string())
                    .bind(i64::from(r.priority))
                    .bind(&r.comment)
                    .bind(r.uuid.to_string())
                    .bind(r.version)
                    .execute(&mut *conn)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Ok(WriteOutcome::Conflict);
                    }
                    if let Some(a) = approval {
                        sqlx::query(
                            "INSERT INTO approvals (request_uuid, approver_uuid, decision, comment, at) VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(a.request.to_string())
                        .bind(a.approver.to_string())
                        .bind(a.decision.name())
                        .bind(&a.comment)
                        .bind(a.at.micros())
                        .execute(&mut *conn)
                        .await?;
                    }
                    insert_event(conn, event).await?;
                }
            }
            Ok(WriteOutcome::Done)
        }

        async fn exec(conn: &mut Conn, sql: &str) -> Result<(), sqlx::Error> {
            sqlx::query(sql).execute(&mut *conn).await.map(|_| ())
        }

        /// One transaction for the whole batch; each write in a savepoint so a conflicting or
        /// failing write is undone alone.
        async fn run_batch(pool: sqlx::Pool<$db>, writes: Vec<Write>) -> BatchResult {
            let n = writes.len();
            let mut conn = match pool.acquire().await {
                Ok(c) => c,
                Err(e) => return fail_all(n, &e.into()),
            };
            if let Err(e) = exec(&mut conn, $begin).await {
                return fail_all(n, &e.into());
            }
            let single = n == 1;
            let mut results = Vec::with_capacity(n);
            for w in &writes {
                if !single {
                    if let Err(e) = exec(&mut conn, "SAVEPOINT w").await {
                        let _ = exec(&mut conn, "ROLLBACK").await;
                        return fail_all(n, &e.into());
                    }
                }
                let r = apply_one(&mut conn, w).await;
                let keep = matches!(r, Ok(WriteOutcome::Done));
                if single {
                    if !keep {
                        let _ = exec(&mut conn, "ROLLBACK").await;
                        return vec![r.map_err(StoreError::from)];
                    }
                } else {
                    let undo = if keep { exec(&mut conn, "RELEASE SAVEPOINT w").await } else {
                        match exec(&mut conn, "ROLLBACK TO SAVEPOINT w").await {
                            Ok(()) => exec(&mut conn, "RELEASE SAVEPOINT w").await,
                            Err(e) => Err(e),
                        }
                    };
                    if let Err(e) = undo {
                        let _ = exec(&mut conn, "ROLLBACK").await;
                        return fail_all(n, &e.into());
                    }
                }
                results.push(r.map_err(StoreError::from));
            }
            if let Err(e) = exec(&mut conn, "COMMIT").await {
                let _ = exec(&mut conn, "ROLLBACK").await;
                tracing::error!(error = %e, writes = n, "group commit failed");
                return fail_all(n, &e.into());
            }
            results
        }

        pub(crate) fn batch_fn(pool: sqlx::Pool<$db>) -> crate::batch::BatchFn {
            std::sync::Arc::new(move |writes| Box::pin(run_batch(pool.clone(), writes)))
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn engine(&self) -> &'static str {
                $engine
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                $migrator.run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn add_user(&self, u: &NewUser, now: Timestamp) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("INSERT INTO users (uuid, login, display_name, sid, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(u.uuid.to_string())
                    .bind(&u.login)
                    .bind(&u.display_name)
                    .bind(&u.sid)
                    .bind(now.micros())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Duplicate(_) => StoreError::Duplicate(format!("a user with login '{}', that uuid or SID", u.login)),
                        other => other,
                    })?;
                for g in &u.groups {
                    sqlx::query("INSERT INTO user_groups (user_uuid, group_sid) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(u.uuid.to_string())
                        .bind(g)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn add_group(&self, name: &str, sid: &str) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO directory_groups (sid, name) VALUES ($1, $2)")
                    .bind(sid)
                    .bind(name)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Duplicate(_) => StoreError::Duplicate(format!("a group named '{name}' or with SID {sid}")),
                        other => other,
                    })?;
                Ok(())
            }

            async fn user_by_uuid(&self, id: Guid) -> Result<Option<Principal>, StoreError> {
                let row: Option<UserRow> = sqlx::query_as("SELECT uuid, login, display_name, sid FROM users WHERE uuid = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(r) => Ok(Some(load_principal(&self.pool, r).await?)),
                    None => Ok(None),
                }
            }

            async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, StoreError> {
                let row: Option<UserRow> = sqlx::query_as("SELECT uuid, login, display_name, sid FROM users WHERE login = $1")
                    .bind(login)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(r) => Ok(Some(load_principal(&self.pool, r).await?)),
                    None => Ok(None),
                }
            }

            async fn count_users(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
            }

            async fn add_token(&self, hash: &str, user: Guid, now: Timestamp, expires: Option<Timestamp>) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO api_tokens (token_hash, user_uuid, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                    .bind(hash)
                    .bind(user.to_string())
                    .bind(now.micros())
                    .bind(expires.map(|t| t.micros()))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn principal_by_token(&self, hash: &str, now: Timestamp) -> Result<Option<Principal>, StoreError> {
                let row: Option<(String, String, String, String, Option<i64>)> = sqlx::query_as(
                    "SELECT u.uuid, u.login, u.display_name, u.sid, t.expires_at FROM api_tokens t \
                     JOIN users u ON u.uuid = t.user_uuid WHERE t.token_hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
                let Some((uuid, login, display_name, sid, expires)) = row else { return Ok(None) };
                if expires.is_some_and(|e| e <= now.micros()) {
                    return Ok(None);
                }
                Ok(Some(load_principal(&self.pool, UserRow { uuid, login, display_name, sid }).await?))
            }

            async fn put_template(&self, t: &ProfileTemplate, now: Timestamp) -> Result<(), StoreError> {
                let body = serde_json::to_string(t).map_err(StoreError::corrupt)?;
                sqlx::query(
                    "INSERT INTO profile_templates (uuid, name, body, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, body = excluded.body, updated_at = excluded.updated_at",
                )
                .bind(t.uuid.to_string())
                .bind(&t.name)
                .bind(body)
                .bind(now.micros())
                .execute(&self.pool)
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Duplicate(_) => StoreError::Duplicate(format!("another profile template named '{}'", t.name)),
                    other => other,
                })?;
                Ok(())
            }

            async fn templates(&self) -> Result<Vec<ProfileTemplate>, StoreError> {
                let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM profile_templates ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?;
                bodies.iter().map(|b| serde_json::from_str(b).map_err(StoreError::corrupt)).collect()
            }

            async fn template(&self, id: Guid) -> Result<Option<ProfileTemplate>, StoreError> {
                let body: Option<String> = sqlx::query_scalar("SELECT body FROM profile_templates WHERE uuid = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                body.map(|b| serde_json::from_str(&b).map_err(StoreError::corrupt)).transpose()
            }

            async fn request(&self, id: Guid) -> Result<Option<Request>, StoreError> {
                let row: Option<RequestRow> = sqlx::query_as(&format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE uuid = $1"))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(RequestRow::into_domain).transpose()
            }

            async fn list_requests(&self, q: &RequestQuery) -> Result<Vec<Request>, StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE 1 = 1"));
                if let Some(sids) = &q.reader_sids {
                    if sids.is_empty() {
                        return Ok(Vec::new());
                    }
                    qb.push(" AND uuid IN (SELECT request_uuid FROM request_readers WHERE sid IN (");
                    let mut list = qb.separated(", ");
                    for s in sids {
                        list.push_bind(s.clone());
                    }
                    qb.push("))");
                }
                if let Some(t) = q.target {
                    qb.push(" AND target_uuid = ").push_bind(t.to_string());
                }
                if let Some(s) = q.status {
                    qb.push(" AND status = ").push_bind(s.number());
                }
                if let Some(a) = q.after {
                    qb.push(" AND uuid > ").push_bind(a.to_string());
                }
                qb.push(" ORDER BY uuid LIMIT ").push_bind(i64::from(q.limit));
                let rows: Vec<RequestRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                rows.into_iter().map(RequestRow::into_domain).collect()
            }

            async fn approvals(&self, id: Guid) -> Result<Vec<Approval>, StoreError> {
                let rows: Vec<ApprovalRow> = sqlx::query_as(
                    "SELECT request_uuid, approver_uuid, decision, comment, at FROM approvals WHERE request_uuid = $1 ORDER BY at, approver_uuid",
                )
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(ApprovalRow::into_domain).collect()
            }

            async fn history(&self, id: Guid) -> Result<Vec<AuditEvent>, StoreError> {
                let rows: Vec<AuditRow> = sqlx::query_as(
                    "SELECT request_uuid, at, actor_uuid, action, from_status, to_status, detail FROM audit_events \
                     WHERE request_uuid = $1 ORDER BY id",
                )
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(AuditRow::into_domain).collect()
            }

            async fn write(&self, w: Write) -> Result<WriteOutcome, StoreError> {
                self.batcher.submit(w).await
            }
        }
    };
}

pub(crate) use impl_store;
