//! Every route, in-process, against DynamoDB Local. One binary, one fresh table per test.

mod helpers;
mod hostile;

mod admin;
mod auth;
mod contract;
mod faults;
mod import;
mod import_realistic;
mod messages;
mod misc;
mod reliability;
mod routes;
mod threads;
mod users;
