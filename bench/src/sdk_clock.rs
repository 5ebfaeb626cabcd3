//! Time spent inside the SDK: an interceptor that clocks each call from its first hook to its
//! last, so the warm bench can tell our code's time from the SDK client's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

#[derive(Debug, Clone, Copy)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// Sums the time calls spend between the SDK's first and last hooks; clones share the sum.
#[derive(Debug, Clone, Default)]
pub struct SdkClock {
    nanos: Arc<AtomicU64>,
}

impl SdkClock {
    /// The time summed since the last call, and a fresh start.
    pub fn take(&self) -> Duration {
        Duration::from_nanos(self.nanos.swap(0, Ordering::Relaxed))
    }
}

impl Intercept for SdkClock {
    fn name(&self) -> &'static str {
        "bench::SdkClock"
    }

    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Started(at)) = cfg.load::<Started>() {
            self.nanos.fetch_add(at.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}
