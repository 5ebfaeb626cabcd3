//! Counts DynamoDB calls and the capacity each consumed, by asking every call for
//! `ReturnConsumedCapacity=TOTAL` from an SDK interceptor, so the store's code stays as deployed.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::{
    batch_get_item, batch_write_item, delete_item, get_item, put_item, query, transact_get_items,
    transact_write_items, update_item,
};
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use serde::{Deserialize, Serialize};

/// One DynamoDB call as the meter saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The operation, e.g. `GetItem`.
    pub operation: String,
    /// Read request units consumed.
    pub read_units: f64,
    /// Write request units consumed.
    pub write_units: f64,
}

/// The calls of one request, summed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// Operations in the order they were answered.
    pub operations: Vec<String>,
    /// Read request units.
    pub read_units: f64,
    /// Write request units.
    pub write_units: f64,
}

impl Work {
    /// Sums calls.
    pub fn of(calls: &[Call]) -> Self {
        Self {
            operations: calls.iter().map(|c| c.operation.clone()).collect(),
            read_units: calls.iter().map(|c| c.read_units).sum(),
            write_units: calls.iter().map(|c| c.write_units).sum(),
        }
    }

    /// Number of DynamoDB calls.
    pub fn calls(&self) -> usize {
        self.operations.len()
    }
}

/// The interceptor; clones share one log.
#[derive(Debug, Clone, Default)]
pub struct Meter {
    log: Arc<Mutex<Vec<Call>>>,
}

impl Meter {
    /// Forgets what was logged so far.
    pub fn reset(&self) {
        self.log.lock().expect("meter lock").clear();
    }

    /// What was logged since the last reset.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.log.lock().expect("meter lock"))
    }
}

fn units(capacity: &[&ConsumedCapacity], write: bool) -> (f64, f64) {
    let mut read_units = 0.0;
    let mut write_units = 0.0;
    for c in capacity {
        let total = c.capacity_units.unwrap_or(0.0);
        match (c.read_capacity_units, c.write_capacity_units) {
            (None, None) if write => write_units += total,
            (None, None) => read_units += total,
            (r, w) => {
                read_units += r.unwrap_or(0.0);
                write_units += w.unwrap_or(0.0);
            }
        }
    }
    (read_units, write_units)
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "bench::Meter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        let total = Some(ReturnConsumedCapacity::Total);
        if let Some(i) = input.downcast_mut::<get_item::GetItemInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<query::QueryInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<batch_get_item::BatchGetItemInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<transact_get_items::TransactGetItemsInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<put_item::PutItemInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<update_item::UpdateItemInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<delete_item::DeleteItemInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<batch_write_item::BatchWriteItemInput>() {
            i.return_consumed_capacity = total;
        } else if let Some(i) = input.downcast_mut::<transact_write_items::TransactWriteItemsInput>() {
            i.return_consumed_capacity = total;
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Failed calls (a cancelled transaction, say) are counted without their capacity: the
        // SDK's error types do not carry it.
        let name = cfg.load::<Metadata>().map_or("(unknown)", |m| m.name()).to_owned();
        let seen: Option<(Vec<&ConsumedCapacity>, bool)> = match context.output_or_error() {
            Err(_) => None,
            Ok(out) => {
                if let Some(o) = out.downcast_ref::<get_item::GetItemOutput>() {
                    Some((o.consumed_capacity.iter().collect(), false))
                } else if let Some(o) = out.downcast_ref::<query::QueryOutput>() {
                    Some((o.consumed_capacity.iter().collect(), false))
                } else if let Some(o) = out.downcast_ref::<batch_get_item::BatchGetItemOutput>() {
                    Some((o.consumed_capacity.iter().flatten().collect(), false))
                } else if let Some(o) = out.downcast_ref::<transact_get_items::TransactGetItemsOutput>() {
                    Some((o.consumed_capacity.iter().flatten().collect(), false))
                } else if let Some(o) = out.downcast_ref::<put_item::PutItemOutput>() {
                    Some((o.consumed_capacity.iter().collect(), true))
                } else if let Some(o) = out.downcast_ref::<update_item::UpdateItemOutput>() {
                    Some((o.consumed_capacity.iter().collect(), true))
                } else if let Some(o) = out.downcast_ref::<delete_item::DeleteItemOutput>() {
                    Some((o.consumed_capacity.iter().collect(), true))
                } else if let Some(o) = out.downcast_ref::<batch_write_item::BatchWriteItemOutput>() {
                    Some((o.consumed_capacity.iter().flatten().collect(), true))
                } else if let Some(o) = out.downcast_ref::<transact_write_items::TransactWriteItemsOutput>() {
                    Some((o.consumed_capacity.iter().flatten().collect(), true))
                } else {
                    Some((vec![], false))
                }
            }
        };
        let call = match seen {
            Some((capacity, write)) => {
                let (read_units, write_units) = units(&capacity, write);
                Call { operation: name, read_units, write_units }
            }
            None => Call { operation: format!("{name} (failed)"), read_units: 0.0, write_units: 0.0 },
        };
        self.log.lock().expect("meter lock").push(call);
        Ok(())
    }
}
