//! Reading a query's pages: the one way the store follows `LastEvaluatedKey`, through the
//! SDK's paginator, and keyset pages of one partition for the API's lists.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::error::StoreError;
use super::items::attr;
use super::page::{PageSpec, Slice};
use super::{Item, Store, s};

/// What to list and in which order, for keyset pagination over one partition.
pub(crate) struct ListSpec<'a> {
    /// Index to query, or the table.
    pub index: Option<&'static str>,
    /// Partition key attribute and value.
    pub pk: (&'static str, String),
    /// Sort key attribute.
    pub sk: &'static str,
    /// Only sort keys with this prefix.
    pub sk_prefix: Option<String>,
    /// Display order is descending sort key (newest first).
    pub descending: bool,
    /// Builds the exclusive start key from a sort key value.
    pub start_key: &'a (dyn Fn(&str) -> Option<Item> + Sync),
    /// Items to skip (DynamoDB filters after `Limit`, so short pages are filled up).
    pub skip: Option<Skip>,
}

/// Items a list leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// Users whose `is_active` is not true.
    Inactive,
    /// Deleted messages (tombstones).
    Deleted,
}

impl Store {
    /// The items a query reads, page after page, until `wanted` of them (or all, for `None`).
    /// A filter may leave a page short or empty: reading goes on while DynamoDB says more exist.
    pub(crate) async fn query_items(
        &self,
        query: QueryFluentBuilder,
        wanted: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = query.into_paginator().items().send();
        let mut found = Vec::new();
        while wanted.is_none_or(|w| found.len() < w) {
            match items.next().await {
                Some(item) => found.push(item.map_err(StoreError::from_sdk)?),
                None => break,
            }
        }
        Ok(found)
    }

    /// How many items a `Select: COUNT` query counts over all its pages.
    pub(crate) async fn query_count(&self, query: QueryFluentBuilder) -> Result<u64, StoreError> {
        let mut pages = query.into_paginator().send();
        let mut count = 0;
        while let Some(page) = pages.next().await {
            count += page.map_err(StoreError::from_sdk)?.count as u64;
        }
        Ok(count)
    }

    /// One page of a keyset-paginated list.
    pub(crate) async fn list_page(
        &self,
        spec: &ListSpec<'_>,
        page: &PageSpec,
    ) -> Result<Slice<Item>, StoreError> {
        let invalid = || StoreError::Corrupt("cursor key does not fit this list".into());
        let start = match &page.after {
            None => None,
            Some(k) => Some((spec.start_key)(k).ok_or_else(invalid)?),
        };
        // Reading "previous" walks the list backwards from the cursor; one more item than the
        // page shows says whether more exist.
        let forward = spec.descending == page.backwards();
        let wanted = page.limit + 1;
        let mut q = self
            .client()
            .query()
            .table_name(self.table())
            .set_index_name(spec.index.map(str::to_owned))
            .scan_index_forward(forward)
            .limit(wanted as i32)
            .set_exclusive_start_key(start)
            .expression_attribute_names("#pk", spec.pk.0)
            .expression_attribute_values(":pk", s(spec.pk.1.clone()));
        q = match &spec.sk_prefix {
            Some(prefix) => q
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", spec.sk)
                .expression_attribute_values(":prefix", s(prefix.clone())),
            None => q.key_condition_expression("#pk = :pk"),
        };
        q = match spec.skip {
            None => q,
            Some(Skip::Inactive) => q
                .filter_expression("#active = :yes")
                .expression_attribute_names("#active", attr::IS_ACTIVE)
                .expression_attribute_values(":yes", AttributeValue::Bool(true)),
            Some(Skip::Deleted) => q
                .filter_expression("attribute_not_exists(#deleted)")
                .expression_attribute_names("#deleted", attr::DELETED),
        };
        let items = self.query_items(q, Some(wanted)).await?;
        Ok(page.cut(items, |i| i.get(spec.sk).and_then(|v| v.as_s().ok()).cloned()))
    }
}
