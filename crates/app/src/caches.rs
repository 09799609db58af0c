//! Caches above the ports, so every engine gets them.
//!
//! Templates: parsing one (its policies' SDDL, its validation patterns) costs more than reading
//! it, and every request creation reads one. Each read still asks the store for the template's
//! revision, which every import increments, so an import by another node is seen at once.

use crate::ports::{StoreError, StoredTemplate, TemplateStore};
use opencm_domain::template::ProfileTemplate;
use opencm_domain::TemplateId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const TEMPLATES_MAX: usize = 1000;

pub(crate) struct Templates {
    store: Arc<dyn TemplateStore>,
    /// Parsed templates by uuid with the revision they were read at; shared, never cloned.
    parsed: Mutex<HashMap<TemplateId, (i64, Arc<ProfileTemplate>)>>,
}

impl Templates {
    pub fn new(store: Arc<dyn TemplateStore>) -> Self {
        Templates {
            store,
            parsed: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &dyn TemplateStore {
        &*self.store
    }

    /// The template as stored now: from the cache when its revision is current.
    pub async fn get(&self, id: TemplateId) -> Result<Option<Arc<ProfileTemplate>>, StoreError> {
        let Some(revision) = self.store.template_revision(id).await? else {
            return Ok(None);
        };
        if let Some(hit) = self.parsed.lock().ok().and_then(|m| {
            m.get(&id)
                .filter(|(at, _)| *at == revision)
                .map(|(_, t)| t.clone())
        }) {
            return Ok(Some(hit));
        }
        let Some(StoredTemplate { revision, template }) = self.store.template(id).await? else {
            return Ok(None);
        };
        let t = Arc::new(template);
        if let Ok(mut m) = self.parsed.lock() {
            if m.len() >= TEMPLATES_MAX {
                m.clear();
            }
            m.insert(id, (revision, t.clone()));
        }
        Ok(Some(t))
    }
}

/// How long the list of every template may be served from memory where a stale answer only
/// changes what a page offers (the portal's navigation), never what a use case allows.
const LIST_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Every template, read at most once per `LIST_TTL`.
#[derive(Default)]
pub(crate) struct TemplateList {
    read: Mutex<Option<(std::time::Instant, Arc<Vec<ProfileTemplate>>)>>,
}

impl TemplateList {
    pub async fn get(
        &self,
        store: &dyn TemplateStore,
    ) -> Result<Arc<Vec<ProfileTemplate>>, StoreError> {
        if let Some((_, list)) = self
            .read
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .filter(|(at, _)| at.elapsed() < LIST_TTL)
        {
            return Ok(list);
        }
        let list = Arc::new(store.templates().await?);
        if let Ok(mut r) = self.read.lock() {
            *r = Some((std::time::Instant::now(), list.clone()));
        }
        Ok(list)
    }
}
