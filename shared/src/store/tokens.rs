//! Refresh token rotation: each refresh token works once.

use aws_sdk_dynamodb::types::AttributeValue;

use super::expr::Cond;
use super::items::{UsedTokenItem, attr, encode};
use super::tx::{Step, Tx};
use super::{Store, StoreError, key, keys, n};
use crate::jwt::Claims;

/// Why a refresh was refused.
#[derive(Debug, thiserror::Error)]
pub enum RefreshRejected {
    /// Used before, or the user is gone, inactive, or changed password since.
    #[error("refresh token no longer valid")]
    Revoked,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Marks a refresh token used, if its user is still active with the same token version.
    ///
    /// One transaction: a condition check on the profile and a conditional put of the token id,
    /// which expires with the token. Of two racing refreshes with one token, exactly one wins.
    pub async fn use_refresh_token(&self, claims: &Claims) -> Result<(), RefreshRejected> {
        let mut tx = Tx::default();
        tx.check(
            Step::Profile,
            key(keys::user_pk(&claims.user_id), keys::PROFILE),
            Cond::new()
                .eq(attr::IS_ACTIVE, AttributeValue::Bool(true))
                .eq(attr::TOKEN_VERSION, n(claims.ver)),
        );
        tx.put(
            Step::UsedToken,
            encode(&UsedTokenItem::new(&claims.jti, claims.exp))?,
            Cond::new().missing(attr::PK),
        );
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            Err(f) if f.failed(Step::Profile) || f.failed(Step::UsedToken) => Err(RefreshRejected::Revoked),
            Err(f) => Err(StoreError::from(f).into()),
        }
    }
}
