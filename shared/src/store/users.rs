//! Users: profiles, unique usernames, search, passwords.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, Select};

use super::expr::Cond;
use super::items::{UserItem, UsernameItem, attr, counters_of, decode, encode};
use super::page::{PageSpec, Slice};
use super::query::{ListSpec, Skip};
use super::tx::{Step, Tx};
use super::{Store, StoreError, key, keys, n, s, table};
use crate::domain::ids::UserId;
use crate::domain::model::{Counters, User};
use crate::domain::timestamp::Timestamp;

/// What it takes to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name, unique.
    pub username: String,
    /// An already computed password hash.
    pub password_hash: String,
    /// Staff flag.
    pub is_staff: bool,
    /// Active flag.
    pub is_active: bool,
    /// Keep this id (imports) or generate one.
    pub id: Option<UserId>,
    /// Keep this join date (imports) or use now.
    pub date_joined: Option<Timestamp>,
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// Someone has that username (or that id) already.
    #[error("a user with that username already exists")]
    Taken,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Creates a user and reserves the username, atomically.
    pub async fn create_user(&self, new: NewUser) -> Result<User, CreateUserError> {
        let user = User {
            id: new.id.unwrap_or_else(UserId::generate),
            username: new.username,
            password_hash: new.password_hash,
            is_active: new.is_active,
            is_staff: new.is_staff,
            token_version: 0,
            date_joined: new.date_joined.unwrap_or_else(Timestamp::now),
        };
        let reservation = encode(&UsernameItem::new(&user.username, &user.id))?;
        let profile = encode(&UserItem::new(&user))?;
        let mut tx = Tx::default();
        tx.put(Step::Username, reservation, Cond::new().missing(attr::PK));
        tx.put(Step::Profile, profile, Cond::new().missing(attr::PK));
        match self.transact(tx).await {
            Ok(()) => Ok(user),
            Err(f) if f.failed(Step::Username) || f.failed(Step::Profile) => Err(CreateUserError::Taken),
            Err(f) => Err(CreateUserError::Store(f.into())),
        }
    }

    /// A user by id.
    pub async fn user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let item = self.get(key(keys::user_pk(id), keys::PROFILE), true).await?;
        item.map(|i| decode::<UserItem>(i).map(UserItem::into_user)).transpose()
    }

    /// A user by id, with the version admin panel sessions must carry to be valid.
    pub async fn user_with_session_version(&self, id: &UserId) -> Result<Option<(User, u64)>, StoreError> {
        let item = self.get(key(keys::user_pk(id), keys::PROFILE), true).await?;
        item.map(|i| {
            decode::<UserItem>(i).map(|u| {
                let version = u.session_version;
                (u.into_user(), version)
            })
        })
        .transpose()
    }

    /// Ends every admin panel session of a user, on every device.
    pub async fn end_sessions(&self, id: &UserId) -> Result<(), StoreError> {
        self.client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(keys::user_pk(id), keys::PROFILE)))
            .update_expression("ADD session_version :one")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// A user by exact username: the reservation, then the profile.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let Some(reservation) = self.get(key(keys::username_pk(username), keys::USERNAME), true).await?
        else {
            return Ok(None);
        };
        let reservation: UsernameItem = decode(reservation)?;
        self.user(&reservation.user_id).await
    }

    /// Usernames of the given users (unknown ids are left out), 100 ids per batch read.
    pub async fn usernames(&self, ids: &[UserId]) -> Result<HashMap<UserId, String>, StoreError> {
        let mut names = HashMap::new();
        for chunk in ids.chunks(100) {
            let keys = chunk.iter().map(|id| key(keys::user_pk(id), keys::PROFILE)).collect();
            for item in self.batch_get(keys).await? {
                let user = decode::<UserItem>(item)?;
                names.insert(user.id, user.username);
            }
        }
        Ok(names)
    }

    /// The active users among `ids`, in one batch read.
    pub async fn active_users(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        let keys = ids.iter().map(|id| key(keys::user_pk(id), keys::PROFILE)).collect();
        let items = self.batch_get(keys).await?;
        let mut users = Vec::with_capacity(items.len());
        for item in items {
            let user = decode::<UserItem>(item)?.into_user();
            if user.is_active {
                users.push(user);
            }
        }
        Ok(users)
    }

    /// Replaces a user's password hash; `revoke` also bumps the token and session versions so
    /// that refresh tokens and admin panel sessions issued before stop working.
    pub async fn set_password_hash(&self, id: &UserId, hash: &str, revoke: bool) -> Result<(), StoreError> {
        let expr = if revoke {
            "SET password = :h ADD token_version :one, session_version :one"
        } else {
            "SET password = :h"
        };
        let mut update = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(keys::user_pk(id), keys::PROFILE)))
            .update_expression(expr)
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":h", s(hash));
        if revoke {
            update = update.expression_attribute_values(":one", n(1));
        }
        update.send().await.map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Users whose username starts with `prefix` (case-insensitive), by username; only active
    /// ones unless `include_inactive` (administration).
    pub async fn search_users(
        &self,
        prefix: &str,
        include_inactive: bool,
        page: &PageSpec,
    ) -> Result<Slice<User>, StoreError> {
        let start_key = |sk: &str| {
            let (_, id) = sk.rsplit_once('#')?;
            let id: UserId = id.parse().ok()?;
            let mut k = key(keys::user_pk(&id), keys::PROFILE);
            k.insert("GSI1PK".into(), s(keys::USERS_INDEX_PK));
            k.insert("GSI1SK".into(), s(sk));
            Some(k)
        };
        let spec = ListSpec {
            index: Some(table::GSI1),
            pk: ("GSI1PK", keys::USERS_INDEX_PK.to_owned()),
            sk: "GSI1SK",
            // DynamoDB refuses begins_with on an empty string.
            sk_prefix: Some(prefix.to_lowercase()).filter(|p| !p.is_empty()),
            descending: false,
            start_key: &start_key,
            skip: (!include_inactive).then_some(Skip::Inactive),
        };
        self.list_page(&spec, page).await?.try_map(|i| decode::<UserItem>(i).map(UserItem::into_user))
    }

    /// How many users match a search prefix (a COUNT query, one call per 1 MB of index); only
    /// active ones unless `include_inactive`.
    pub async fn count_users(&self, prefix: &str, include_inactive: bool) -> Result<u64, StoreError> {
        let prefix = prefix.to_lowercase();
        let mut q = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(table::GSI1)
            .select(Select::Count)
            .expression_attribute_values(":pk", s(keys::USERS_INDEX_PK));
        if !include_inactive {
            q = q
                .filter_expression("is_active = :yes")
                .expression_attribute_values(":yes", AttributeValue::Bool(true));
        }
        q = if prefix.is_empty() {
            q.key_condition_expression("GSI1PK = :pk")
        } else {
            q.key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :prefix)")
                .expression_attribute_values(":prefix", s(prefix.clone()))
        };
        self.query_count(q).await
    }

    /// A user's thread and unread totals (zeros before their first thread).
    pub async fn counters(&self, id: &UserId) -> Result<Counters, StoreError> {
        match self.get(key(keys::user_pk(id), keys::COUNTERS), false).await? {
            Some(item) => counters_of(item),
            None => Ok(Counters::default()),
        }
    }

    /// Sets a user's active and staff flags; a change ends the user's admin panel sessions, so
    /// that a cookie copied before losing staff does not come back to life when it is regained.
    pub async fn set_flags(&self, id: &UserId, is_active: bool, is_staff: bool) -> Result<(), StoreError> {
        let set = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(keys::user_pk(id), keys::PROFILE)))
            .update_expression("SET is_active = :a, is_staff = :s ADD session_version :one")
            .condition_expression("attribute_exists(PK) AND (is_active <> :a OR is_staff <> :s)")
            .expression_attribute_values(":a", AttributeValue::Bool(is_active))
            .expression_attribute_values(":s", AttributeValue::Bool(is_staff))
            .expression_attribute_values(":one", n(1))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match set {
            Ok(_) => Ok(()),
            // The profile exists and already has these flags: saving them again ends nothing.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(c)) if c.item.is_some()
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(StoreError::from_sdk(e)),
        }
    }
}
