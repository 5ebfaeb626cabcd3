//! Failures of the storage layer, classified once: what a retry may fix and what it never will.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// An error from the SDK, kept whole as the cause of a store error.
pub type SdkCause = Box<dyn std::error::Error + Send + Sync>;

/// Failures of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, timeouts, transient service errors or conflicts that outlasted the retries:
    /// a later retry may succeed (503).
    #[error("storage busy: {reason}")]
    Transient {
        /// What stayed busy.
        reason: String,
        /// The SDK's error, when one said so.
        #[source]
        source: Option<SdkCause>,
    },
    /// Anything else the SDK reported: no retry fixes it (500).
    #[error("storage request failed")]
    Sdk(#[source] SdkCause),
    /// A transaction cancelled for a reason no retry fixes (`ValidationError`,
    /// `ItemCollectionSizeLimitExceeded`, ...): a bug or a limit, never a race (500).
    #[error("transaction refused: {reasons}")]
    Refused {
        /// The cancellation reason of each named action that failed.
        reasons: String,
        /// The SDK's error.
        #[source]
        source: SdkCause,
    },
    /// An item that does not have the shape this code wrote.
    #[error("malformed item: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Contention that outlasted every retry.
    pub(crate) fn busy(reason: impl Into<String>) -> Self {
        Self::Transient { reason: reason.into(), source: None }
    }

    /// Classifies an SDK error: transient ones become `Transient`.
    pub fn from_sdk<E, R>(e: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let transient = match &e {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
            SdkError::ServiceError(s) => is_transient_code(s.err().code()),
            _ => false,
        };
        if transient {
            let reason = e.code().unwrap_or("timeout or connection failure").to_owned();
            Self::Transient { reason, source: Some(Box::new(e)) }
        } else {
            Self::Sdk(Box::new(e))
        }
    }

    /// True for failures a client may retry (answered with 503).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

fn is_transient_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ThrottlingException"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionInProgressException"
                | "TransactionConflictException"
        )
    )
}

impl From<serde_dynamo::Error> for StoreError {
    fn from(e: serde_dynamo::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}

/// True for an SDK error that says a condition failed.
pub(crate) fn is_condition_failure<E>(e: &SdkError<E>) -> bool
where
    E: ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}
