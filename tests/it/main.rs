//! Integration tests: the real binary against a real S3 server (a local Garage started by
//! `scripts/test.sh`; `cluster` starts its own 3-node Garage cluster) or a directory remote, with
//! huggingface_hub itself judging the caches it writes.

mod common;

mod aws_credentials;
mod bucket_locks;
mod cache_dir;
mod cluster;
mod concurrency;
mod config;
mod dedupe;
mod diff;
mod dir_remote;
mod doctor;
mod dry_run;
mod engine;
mod failure_sources;
mod faults;
mod file_patterns;
mod fleet;
mod gc;
mod hostile;
mod hub_fallback;
mod init;
mod interrupt;
mod json_output;
mod limit_rate;
mod list;
mod local_dir;
mod lock;
mod modes;
mod nothing_matches;
mod partial;
mod prune;
mod pull;
mod pull_all;
mod push;
mod recipes;
mod remote_flag;
mod repo_ids;
mod repo_types;
mod resources;
mod resume;
mod rm;
mod secrets;
mod serve;
mod serve_auth;
mod serve_ops;
mod serve_through;
mod status;
mod terminal;
mod tls;
mod trees;
mod verify;
mod watch;
mod wording;
