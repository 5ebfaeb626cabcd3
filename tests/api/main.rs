//! Every route, in-process, against DynamoDB Local. One binary, one fresh table per test.

#[path = "../support/event_schema.rs"]
mod event_schema;
mod helpers;
mod hostile;

mod admin;
mod auth;
mod catch_up;
mod contract;
mod edits;
mod fanout;
mod faults;
mod import;
mod import_realistic;
mod instances;
mod live;
mod live_limits;
mod live_stack;
mod lockout;
mod members;
mod mentions;
mod messages;
mod misc;
mod races;
mod reactions;
mod reliability;
mod replies;
mod routes;
mod schema;
mod threads;
mod users;
mod views;
