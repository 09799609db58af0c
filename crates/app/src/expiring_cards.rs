//! The card store as every use case must see it: a temporary card past its expiry reads Disabled
//! (`smartcard::status_at`). Expiry is applied here, on every read, rather than by a sweeper: no
//! reader can see an expired card as in service between two sweeps, and the first write that
//! touches the card (carrying the version it read) stores the status it was decided on.

use crate::ports::{Clock, ProfileRecord, SmartcardRecord, SmartcardStore, StoreError};
use async_trait::async_trait;
use opencm_domain::smartcard::status_at;
use opencm_domain::{Guid, SmartcardId, Timestamp, UserId};
use std::sync::Arc;

pub(crate) struct ExpiringCards {
    pub inner: Arc<dyn SmartcardStore>,
    pub clock: Arc<dyn Clock>,
}

impl ExpiringCards {
    fn at_now(&self, mut c: SmartcardRecord) -> SmartcardRecord {
        c.status = status_at(c.status, c.expires, self.clock.now());
        c
    }
}

#[async_trait]
impl SmartcardStore for ExpiringCards {
    async fn smartcard(&self, id: SmartcardId) -> Result<Option<SmartcardRecord>, StoreError> {
        Ok(self.inner.smartcard(id).await?.map(|c| self.at_now(c)))
    }

    async fn smartcards_by_card_id(
        &self,
        card_id: Guid,
    ) -> Result<Vec<SmartcardRecord>, StoreError> {
        let all = self.inner.smartcards_by_card_id(card_id).await?;
        Ok(all.into_iter().map(|c| self.at_now(c)).collect())
    }

    async fn smartcards_of(
        &self,
        user: Option<UserId>,
    ) -> Result<Vec<SmartcardRecord>, StoreError> {
        let all = self.inner.smartcards_of(user).await?;
        Ok(all.into_iter().map(|c| self.at_now(c)).collect())
    }

    async fn search_smartcards(
        &self,
        q: &crate::ports::CardSearch,
    ) -> Result<Vec<SmartcardRecord>, StoreError> {
        let found = self.inner.search_smartcards(q).await?;
        Ok(found.into_iter().map(|c| self.at_now(c)).collect())
    }

    async fn profiles_of_smartcard(
        &self,
        card: SmartcardId,
    ) -> Result<Vec<ProfileRecord>, StoreError> {
        self.inner.profiles_of_smartcard(card).await
    }

    async fn sealed_pin(&self, card: SmartcardId) -> Result<Option<String>, StoreError> {
        self.inner.sealed_pin(card).await
    }

    async fn card_master(&self, version: Option<i64>) -> Result<Option<(i64, String)>, StoreError> {
        self.inner.card_master(version).await
    }

    async fn add_card_master(
        &self,
        version: i64,
        sealed: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.inner.add_card_master(version, sealed, now).await
    }
}
