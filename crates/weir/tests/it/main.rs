//! The CLI suite: the real `weir` binary on temp projects, asserting what a user sees (output,
//! exit codes, task states, files written by tasks).

mod support;

mod assets;
mod cli;
mod control_flow;
mod data;
mod docs;
mod etl;
mod fencing;
mod mapping;
mod models;
mod models_dag;
mod running;
mod sensors;
mod standalone;
mod time;
mod web;
mod workers;
