//! Refresh token rotation: each refresh token works once.

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};

use super::items::{UsedTokenItem, encode};
use super::{Step, Store, StoreError, Tx, key, keys, n};
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
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(key(keys::user_pk(&claims.user_id), keys::PROFILE)))
            .condition_expression("is_active = :yes AND token_version = :v")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":v", n(claims.ver))
            .build()
            .expect("complete");
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(encode(&UsedTokenItem::new(&claims.jti, claims.exp))?))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .expect("complete");
        let mut tx = Tx::default();
        tx.push(Step::Profile, TransactWriteItem::builder().condition_check(check).build());
        tx.push(Step::UsedToken, TransactWriteItem::builder().put(put).build());
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            Err(f) if f.failed(Step::Profile) || f.failed(Step::UsedToken) => Err(RefreshRejected::Revoked),
            Err(f) => Err(StoreError::from(f).into()),
        }
    }
}
