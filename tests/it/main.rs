//! Integration tests: the real binary against a real S3 server (a local Garage started by
//! `scripts/test.sh`) or a directory remote, with huggingface_hub itself judging the caches it writes.

mod common;

mod concurrency;
mod config;
mod diff;
mod dir_remote;
mod doctor;
mod init;
mod list;
mod prune;
mod pull;
mod pull_all;
mod push;
mod resources;
mod rm;
mod status;
mod verify;
