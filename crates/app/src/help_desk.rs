//! The help desk's view of the people it serves: find a user, see their cards, profiles and
//! requests with what the caller may start on each, search the card inventory, and the offline
//! unblock of a card whose user reads its challenge over the phone.
//!
//! Who may look: administrators, and whoever holds an initiator role of some enabled policy whose
//! scope (`initiator_target_groups`) takes the user in — the same rule that lets them request on
//! that user's behalf. Anyone else, and a user outside every scope of the caller, finds nobody:
//! the same answer as an unknown login, so scopes do not leak who exists.

use crate::error::{AppError, ErrorCode};
use crate::ports::{CardSearch, ProfileQuery, RequestQuery, SmartcardRecord};
use crate::profiles::ProfileView;
use crate::requests::NewRequest;
use crate::App;
use opencm_domain::policy::WorkflowPolicy;
use opencm_domain::request::{rights, Request};
use opencm_domain::smartcard::{self, SmartcardStatus};
use opencm_domain::template::ProfileTemplate;
use opencm_domain::{Principal, RequestStatus, RequestType, SmartcardId, TemplateId, UserId};
use std::collections::HashMap;

/// The most rows of each list on a user's page and of an inventory search.
pub const HELP_DESK_ROWS: u32 = 200;

/// A card with what the caller may start on it now (lowercase MIM names).
pub struct CardView {
    pub card: SmartcardRecord,
    pub operations: Vec<&'static str>,
}

/// What the help desk sees of one user.
pub struct UserFile {
    pub user: Principal,
    pub enabled: bool,
    pub cards: Vec<CardView>,
    pub profiles: Vec<ProfileView>,
    /// The requests for this user that the caller may read, newest first.
    pub requests: Vec<Request>,
    /// The templates the caller may enroll this user from, on their behalf.
    pub templates: Vec<(TemplateId, String)>,
}

/// What an offline unblock came to.
pub enum OfflineUnblocked {
    /// The response to read back to the user (base64), and the completed request.
    Response { request: Request, response: String },
    /// The policy wants approvals first: the request waits; its page takes the challenge later.
    Waiting(Request),
}

/// The enabled policies whose initiator role the caller holds, for `target`.
fn initiator_scopes<'t>(
    template: &'t ProfileTemplate,
    caller: &Principal,
    target: &Principal,
) -> impl Iterator<Item = (&'t RequestType, &'t WorkflowPolicy)> + 't {
    let sids = caller.token_sids();
    let target = target.clone();
    template
        .policies
        .iter()
        .filter(move |(_, p)| p.enabled && p.is_initiator(&sids) && p.initiator_may_target(&target))
        .map(|(k, p)| (&k.0, p))
}

impl App {
    /// Whether the caller serves `target`: an administrator, or an initiator whose scope takes
    /// the target in (on any template).
    async fn serves(&self, caller: &Principal, target: &Principal) -> Result<bool, AppError> {
        if caller.is_administrator() {
            return Ok(true);
        }
        Ok(self
            .list_templates()
            .await?
            .iter()
            .any(|t| initiator_scopes(t, caller, target).next().is_some()))
    }

    /// Whether the caller works for other users (an administrator, or an initiator of some
    /// policy): the portal offers them the help desk's pages. From a list of templates up to
    /// ten seconds old: it decides what a page shows, never what anyone may do.
    pub async fn helps_others(&self, caller: &Principal) -> Result<bool, AppError> {
        if caller.is_administrator() {
            return Ok(true);
        }
        let sids = caller.token_sids();
        Ok(self
            .template_list
            .get(self.templates.store())
            .await?
            .iter()
            .any(|t| {
                t.policies
                    .values()
                    .any(|p| p.enabled && p.is_initiator(&sids))
            }))
    }

    /// The operations the caller may start on a card of `owner` now.
    async fn card_view(
        &self,
        caller: &Principal,
        owner: &Principal,
        card: SmartcardRecord,
    ) -> Result<CardView, AppError> {
        let own = card.assigned_user == caller.uuid;
        let template = self.templates.get(card.template).await?;
        let live = self.live_profile(&card).await?;
        let operations = match (template.as_deref(), live) {
            (Some(t), Some(live)) => {
                smartcard::operations(t, live.status, card.status, caller, own)
                    .into_iter()
                    .filter(|name| {
                        own || caller.is_administrator()
                            || RequestType::parse(name)
                                .and_then(|ty| t.policy(ty))
                                .is_some_and(|p| p.initiator_may_target(owner))
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        Ok(CardView { card, operations })
    }

    /// The user `login` as the help desk sees them; `None` alike for an unknown user and one the
    /// caller does not serve.
    pub async fn user_for_help_desk(
        &self,
        caller: &Principal,
        login: &str,
    ) -> Result<Option<UserFile>, AppError> {
        let login = login.trim();
        if login.is_empty() || login.len() > 256 {
            return Ok(None);
        }
        let Some((user, _)) = self.look_up_user(login).await? else {
            return Ok(None);
        };
        if !self.serves(caller, &user).await? {
            tracing::info!(caller = ?caller.login, "help desk lookup outside the caller's scope");
            return Ok(None);
        }
        let enabled = self.user_enabled(user.uuid).await?;
        let mut cards = Vec::new();
        for c in self.smartcards.smartcards_of(Some(user.uuid)).await? {
            cards.push(self.card_view(caller, &user, c).await?);
        }
        cards.sort_by_key(|c| std::cmp::Reverse(c.card.created));
        let profiles = self
            .profiles
            .profiles(&ProfileQuery {
                user: Some(user.uuid),
                status: None,
                after: None,
                limit: HELP_DESK_ROWS,
            })
            .await?;
        let mut views = Vec::with_capacity(profiles.len());
        for p in profiles {
            let operations = match self.templates.get(p.template).await? {
                Some(t) => opencm_domain::profile::operations(&t, p.status, caller, false)
                    .into_iter()
                    .filter(|name| {
                        caller.is_administrator()
                            || RequestType::parse(name)
                                .and_then(|ty| t.policy(ty))
                                .is_some_and(|pol| pol.initiator_may_target(&user))
                    })
                    .collect(),
                None => Vec::new(),
            };
            views.push(ProfileView {
                profile: p,
                operations,
            });
        }
        let sids = caller.token_sids();
        let requests = self
            .requests
            .list_requests(&RequestQuery {
                reader_sids: (!caller.is_administrator())
                    .then(|| sids.iter().map(|s| s.to_string()).collect()),
                target: Some(user.uuid),
                status: None,
                after: None,
                limit: HELP_DESK_ROWS,
                newest_first: true,
            })
            .await?
            .into_iter()
            .filter(|r| r.allows(caller, rights::READ))
            .collect();
        let templates = self
            .list_templates()
            .await?
            .iter()
            .filter(|t| {
                t.policy(RequestType::Enroll).is_some_and(|p| {
                    p.enabled && p.is_initiator(&sids) && p.initiator_may_target(&user)
                })
            })
            .map(|t| (t.uuid, t.name.clone()))
            .collect();
        Ok(Some(UserFile {
            user,
            enabled,
            cards,
            profiles: views,
            requests,
            templates,
        }))
    }

    /// The card inventory: cards matching `q` that the caller may read (administrators: all;
    /// the help desk: those of the users it serves), each with its holder's name.
    pub async fn search_cards(
        &self,
        caller: &Principal,
        mut q: CardSearch,
    ) -> Result<Vec<(SmartcardRecord, Option<Principal>)>, AppError> {
        q.limit = q.limit.clamp(1, HELP_DESK_ROWS);
        q.atr = q
            .atr
            .map(|a| {
                a.chars()
                    .filter(|c| !c.is_whitespace() && *c != ':')
                    .collect::<String>()
            })
            // Cards keep their ATR in lower case (`smartcard::parse_atr`).
            .map(|a| a.to_ascii_lowercase())
            .filter(|a| !a.is_empty());
        let found = self.smartcards.search_smartcards(&q).await?;
        let mut owners: HashMap<UserId, Option<Principal>> = HashMap::new();
        let mut serves: HashMap<UserId, bool> = HashMap::new();
        let mut out = Vec::new();
        for card in found {
            let u = card.assigned_user;
            let owner = match owners.get(&u) {
                Some(o) => o.clone(),
                None => {
                    let o = self.directory.user_by_uuid(u).await?;
                    owners.insert(u, o.clone());
                    o
                }
            };
            let may = match serves.get(&u) {
                Some(m) => *m,
                None => {
                    let m = u == caller.uuid
                        || caller.is_administrator()
                        || match &owner {
                            Some(o) => self.serves(caller, o).await?,
                            None => false,
                        };
                    serves.insert(u, m);
                    m
                }
            };
            if may {
                out.push((card, owner));
            }
        }
        Ok(out)
    }

    /// The certificates a request issued, for whoever may read the request (its user, the
    /// approvers, the help desk that carried it out), without the keys of any of them.
    pub async fn request_certificates(
        &self,
        caller: &Principal,
        id: opencm_domain::RequestId,
    ) -> Result<Vec<crate::ports::CertificateRecord>, AppError> {
        let r = self.request(caller, id).await?;
        match r.new_profile {
            Some(p) => Ok(self.certificates.certificates_of_profile(p).await?),
            None => Ok(Vec::new()),
        }
    }

    /// One card as the help desk sees it: the card, its holder, what the caller may start on it.
    pub async fn card_for_help_desk(
        &self,
        caller: &Principal,
        id: SmartcardId,
    ) -> Result<(CardView, Option<Principal>), AppError> {
        let card = self.smartcard(caller, id).await?;
        let owner = self.directory.user_by_uuid(card.assigned_user).await?;
        let view = match &owner {
            Some(o) => self.card_view(caller, o, card).await?,
            None => CardView {
                card,
                operations: Vec::new(),
            },
        };
        Ok((view, owner))
    }

    /// The offline unblock of a card whose user cannot reach the server: a request of type
    /// OfflineUnblock on the card (its reason in the comment), and — if its policy needs no
    /// approval — the response to the card's challenge, computed with the card's admin key (its
    /// own diversified key; the template's factory key when the card never had it changed), and
    /// the request completed. Three steps, each its own transaction and audit event, as a MIM
    /// client performs them; if a later one fails, the request stays open on its page.
    pub async fn offline_unblock(
        &self,
        caller: &Principal,
        card: SmartcardId,
        reason: &str,
        challenge_b64: &str,
        factory_key: bool,
    ) -> Result<OfflineUnblocked, AppError> {
        // A reason of letters or digits: blanks, zero-width and direction characters say nothing.
        if reason.chars().filter(|c| c.is_alphanumeric()).count() < 3 {
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                "Give the reason for the offline unblock (at least 3 letters or digits): it is kept in the request and the audit log.",
            ));
        }
        let (view, owner) = self.card_for_help_desk(caller, card).await?;
        // The challenge is checked before anything is created: a wrong one leaves nothing behind.
        let alg = self
            .templates
            .get(view.card.template)
            .await?
            .and_then(|t| t.smartcard_config().map(|c| c.admin_key_algorithm))
            .unwrap_or_default();
        let want = opencm_ca::cardkey::challenge_len(alg);
        let got = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            challenge_b64.trim(),
        )
        .map(|c| c.len())
        .ok();
        if got != Some(want) {
            return Err(AppError::new(
                ErrorCode::InvalidQuery,
                format!(
                    "The challenge must be the card's {want} bytes (a {} admin key), in base64 or hex.",
                    alg.name()
                ),
            ));
        }
        if !view.operations.contains(&"offlineunblock") {
            return Err(AppError::new(
                ErrorCode::AccessDenied,
                "You may not unblock this card offline: its template does not allow it to you for this user, or the card is not active.",
            ));
        }
        // Only whoever would carry the request out may start it here (the card's user, or an
        // enrollment agent where the policy requires one): nothing is created for anyone else.
        let executes = match (
            owner.as_ref(),
            self.templates.get(view.card.template).await?,
        ) {
            (Some(o), Some(t)) => t.policy(RequestType::OfflineUnblock).is_some_and(|p| {
                opencm_domain::sddl::access_check(
                    &opencm_domain::request::request_descriptor(p, caller, o),
                    &caller.token_sids(),
                    rights::EXECUTE,
                )
                .is_granted()
            }),
            _ => false,
        };
        if !executes {
            return Err(AppError::new(
                ErrorCode::AccessDenied,
                "You may request this card's offline unblock but not carry it out: its policy names who answers the challenge (an enrollment agent, or the card's user).",
            ));
        }
        let request = self
            .create_request(
                caller,
                NewRequest {
                    request_type: RequestType::OfflineUnblock,
                    template: None,
                    profile: None,
                    smartcard: Some(card),
                    target: owner.as_ref().map(|o| o.uuid),
                    comment: reason.trim().to_string(),
                    priority: None,
                    data: Vec::new(),
                },
            )
            .await?;
        if request.status != RequestStatus::Approved {
            return Ok(OfflineUnblocked::Waiting(request));
        }
        let response = self
            .offline_unblock_response(caller, &request, &view.card, challenge_b64, factory_key)
            .await?;
        let request = self
            .finish(caller, request.uuid, opencm_domain::Outcome::Completed)
            .await?;
        Ok(OfflineUnblocked::Response { request, response })
    }

    /// The response to a card's challenge for an approved OfflineUnblock request.
    pub async fn offline_unblock_response(
        &self,
        caller: &Principal,
        request: &Request,
        card: &SmartcardRecord,
        challenge_b64: &str,
        factory_key: bool,
    ) -> Result<String, AppError> {
        if request.request_type != RequestType::OfflineUnblock {
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                "Only an offline unblock request answers a card's challenge here.",
            ));
        }
        let card_id = card.card_id.to_string();
        let diversified = !factory_key
            && self
                .templates
                .get(card.template)
                .await?
                .is_some_and(|t| t.smartcard_config().is_some_and(|c| c.diversify_admin_key));
        self.authentication_response(
            caller,
            &crate::CardPresented {
                request: request.uuid,
                card: card.uuid,
                card_id: &card_id,
                atr: None,
            },
            challenge_b64,
            diversified,
        )
        .await
    }
}

/// A card status by its MIM name (the inventory's filter), case-insensitive.
pub fn card_status(name: &str) -> Option<SmartcardStatus> {
    SmartcardStatus::parse(name)
}
