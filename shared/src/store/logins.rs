//! Failed-login counters, per username and per client address, that expire by themselves.

use super::{Store, StoreError, key, keys, n, table};

/// Failures counted in one fixed window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    /// Failed attempts in the window.
    pub count: u64,
    /// When the window ends (seconds since the epoch).
    pub window_end: i64,
}

fn number(item: &super::Item, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

impl Store {
    /// The current failure counts of several subjects (e.g. a username and an address), in one read.
    pub async fn login_failures(&self, subjects: &[String], now: i64) -> Result<Vec<Failures>, StoreError> {
        let items = self
            .batch_get(
                subjects.iter().map(|s| key(keys::login_failures_pk(s), keys::LOGIN_FAILURES)).collect(),
            )
            .await?;
        Ok(subjects
            .iter()
            .map(|subject| {
                let pk = keys::login_failures_pk(subject);
                items
                    .iter()
                    .find(|i| i.get("PK").and_then(|v| v.as_s().ok()) == Some(&pk))
                    .map(|i| Failures {
                        count: number(i, "count") as u64,
                        window_end: number(i, "window_end"),
                    })
                    .filter(|f| f.window_end > now)
                    .unwrap_or_default()
            })
            .collect())
    }

    /// Counts one failure for a subject: in its open window, or in a new one of `window` seconds.
    pub async fn record_login_failure(&self, subject: &str, now: i64, window: i64) -> Result<(), StoreError> {
        let k = key(keys::login_failures_pk(subject), keys::LOGIN_FAILURES);
        let counted = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(k.clone()))
            .update_expression("ADD #count :one")
            .condition_expression("window_end > :now")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match counted {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                let mut item = k;
                item.insert("count".into(), n(1));
                item.insert("window_end".into(), n(now + window));
                item.insert(table::TTL_ATTRIBUTE.into(), n(now + window));
                self.client()
                    .put_item()
                    .table_name(self.table())
                    .set_item(Some(item))
                    .send()
                    .await
                    .map_err(StoreError::from_sdk)?;
                Ok(())
            }
            Err(e) => Err(StoreError::from_sdk(e)),
        }
    }

    /// Forgets a subject's failures (after a successful login).
    pub async fn clear_login_failures(&self, subject: &str) -> Result<(), StoreError> {
        self.client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key(keys::login_failures_pk(subject), keys::LOGIN_FAILURES)))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }
}
