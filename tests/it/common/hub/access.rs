//! The stand-in's answers on who may read: a repo's info (`gated`, `private`) and
//! `auth-check`.

use std::collections::BTreeMap;

use super::{find_repo, Reply, State};

/// `/api/{type}s/{id}`: the repo's info, gated ones' too, to anyone (as the Hub); and
/// `/api/{type}s/{id}/auth-check`: 200 when the token sent may read the repo.
pub(super) fn repo_answer(
    state: &State,
    t: &str,
    id: &str,
    what: Option<&str>,
    headers: &BTreeMap<String, String>,
) -> Reply {
    match what {
        None => {
            let Some(repo) = state.repos.iter().find(|r| r.repo_type == t && r.id == id) else {
                return Reply::error(401, "RepoNotFound", "Repository not found");
            };
            if repo.private {
                // Only its owner sees it.
                if let Err(reply) = find_repo(state, t, id, headers) {
                    return reply;
                }
            }
            let gated = repo.gated_token.is_some() && !repo.private;
            Reply::new(200).json(serde_json::json!({
                "id": id,
                "private": repo.private,
                "gated": if gated { serde_json::json!("manual") } else { serde_json::json!(false) },
            }))
        }
        Some("auth-check") => match find_repo(state, t, id, headers) {
            Ok(_) => Reply::new(200).json(serde_json::json!({})),
            Err(reply) => reply,
        },
        Some(_) => Reply::error(404, "", "no such endpoint"),
    }
}
