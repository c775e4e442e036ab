//! The examples that end every command's `--help` (and its man page), kept apart from the flag
//! definitions they illustrate so `cli.rs` stays a list of flags.

pub const TOP: &str = "\
Exit codes: 0 success, 1 a runtime failure (some item failed, or a repo or pattern named matches \
nothing), 2 a usage or configuration error, 130 interrupted.

Examples:
  hf-cache-sync init                          write ./.hf-cache-sync.yaml to fill in
  hf-cache-sync doctor                        check config, credentials, bucket and cache dir
  hf-cache-sync push                          upload the whole cache
  hf-cache-sync pull org/model                download one repo's main revision
  hf-cache-sync list -q | xargs -n1 hf-cache-sync pull
  hf-cache-sync completions bash > ~/.local/share/bash-completion/completions/hf-cache-sync";

pub const PUSH: &str = "\
Examples:
  hf-cache-sync push                          every repo in the cache
  hf-cache-sync push org/model --dry-run      what would move, per revision (-v: per blob)
  hf-cache-sync push --include 'org/*' --exclude 'org/huge-*'
  hf-cache-sync push --remote=/mnt/share      to a shared directory (made if missing)
  hf-cache-sync push --limit-rate 20M         at most 20 MiB/s, all uploads together
  hf-cache-sync --json push                   one JSON document on stdout";

pub const PULL: &str = "\
Examples:
  hf-cache-sync pull org/model                the commit refs/main points at
  hf-cache-sync pull org/model -r pr/1        another ref, or a commit hash
  hf-cache-sync pull dataset/org/data         any id `list` prints, or hf://datasets/org/data
  hf-cache-sync pull org/model --dry-run -v   the blobs it would download
  hf-cache-sync pull org/model --remote=/mnt/share
  hf-cache-sync pull org/model --limit-rate 50M   at most 50 MiB/s, leaving the link room
  hf-cache-sync pull org/model --local-dir models/model   real files in a project folder
  hf-cache-sync pull org/model-GGUF --include-files '*Q4_K_M.gguf'   one file of many
  hf-cache-sync pull --lock hf-cache-sync.lock   every pinned revision (see `lock`)
  hf-cache-sync pull --lock hf-cache-sync.lock --offline   no remote call at all";

pub const LOCK: &str = "\
Examples:
  hf-cache-sync lock                          every cached repo's main, in hf-cache-sync.lock
  hf-cache-sync lock org/model dataset/org/data@v1.0   add or update these pins
  hf-cache-sync lock org/model-GGUF --include-files '*Q4_K_M.gguf'
  hf-cache-sync lock --remote -o models.lock  what the remote's main refs name
  hf-cache-sync lock -o -                     print it instead";

pub const SERVE: &str = "\
Examples:
  hf-cache-sync serve                         answer on 127.0.0.1:8090 from the configured remote
  hf-cache-sync serve --fallback hf-hub       what the bucket lacks streams from the Hub
  hf-cache-sync serve --listen 0.0.0.0:8090 --auth tokens=/etc/hf-cache-sync/tokens
  hf-cache-sync serve --listen 0.0.0.0:8090 --auth hub   gated repos: tokens the Hub admits
  hf-cache-sync serve --auth hub --auth tokens=/etc/hf-cache-sync/tokens
  hf-cache-sync serve --remote=/mnt/share --listen 127.0.0.1:9000
  hf-cache-sync serve -q                      no access log, only warnings and errors";

pub const PULL_ALL: &str = "\
Examples:
  hf-cache-sync pull-all                      every repo with a main ref
  hf-cache-sync pull-all --include 'org/*' --limit 20
  hf-cache-sync pull-all --dry-run            what each repo would download";

pub const STATUS: &str = "\
Examples:
  hf-cache-sync status                        the cache against cache.max_local_gb
  hf-cache-sync status --remote               plus what the remote holds (listings only)
  hf-cache-sync --json status";

pub const LIST: &str = "\
Examples:
  hf-cache-sync list                          a row per repo
  hf-cache-sync list --revisions -f 'size>1GB' --sort size --limit 20
  hf-cache-sync list -q -f 'accessed>90d' | xargs hf-cache-sync rm --yes
  hf-cache-sync list --remote --manifests     exact ids, types and sizes on the remote
  hf-cache-sync list --remote=/mnt/share      another remote than the configured one";

pub const DIFF: &str = "\
Examples:
  hf-cache-sync diff                          every revision of both sides
  hf-cache-sync diff org/model --exit-code    CI gate: exit 1 when anything differs
  hf-cache-sync diff --remote=/mnt/share";

pub const PRUNE: &str = "\
Examples:
  hf-cache-sync prune --dry-run               what would go, and why
  hf-cache-sync prune --yes                   fit cache.max_local_gb (GiB)
  hf-cache-sync prune --max-gb 100 --older-than 30d --yes
  hf-cache-sync prune --detached --yes        every revision no ref points at
  hf-cache-sync prune --remote --detached --older-than 30d --yes";

pub const RM: &str = "\
Examples:
  hf-cache-sync rm org/model --yes            a repo, its refs and the blobs only it uses
  hf-cache-sync rm 3f2a9c1 --yes              one revision by hash prefix
  hf-cache-sync rm dataset/org/data@v1.0 --dry-run
  hf-cache-sync rm --remote org/model --yes   manifests and refs on the remote (blobs stay)";

pub const VERIFY: &str = "\
Examples:
  hf-cache-sync verify                        hash every local blob, check links and refs
  hf-cache-sync verify --repair               fetch corrupt or missing blobs again
  hf-cache-sync verify --remote               every remote manifest's blobs, with their sizes
  hf-cache-sync verify --repair --remote=/mnt/share";

pub const DOCTOR: &str = "\
Examples:
  hf-cache-sync doctor                        every check, with a hint under each failure
  hf-cache-sync doctor --require-write        fail on a read-only key (a job that pushes)
  hf-cache-sync doctor --remote=s3://other-bucket/team";

pub const INIT: &str = "\
Examples:
  hf-cache-sync init                          ./.hf-cache-sync.yaml, readable by you only
  hf-cache-sync init --force                  overwrite the one there";

pub const COMPLETIONS: &str = "\
Examples:
  hf-cache-sync completions bash > ~/.local/share/bash-completion/completions/hf-cache-sync
  hf-cache-sync completions zsh > ~/.zfunc/_hf-cache-sync
  hf-cache-sync completions fish > ~/.config/fish/completions/hf-cache-sync.fish";

pub const MAN: &str = "\
Examples:
  hf-cache-sync man > hf-cache-sync.1 && man ./hf-cache-sync.1
  hf-cache-sync man --out /usr/local/share/man/man1   a page per command";

pub const GC: &str = "\
Examples:
  hf-cache-sync gc --remote --dry-run         the blobs and uploads a run would delete
  hf-cache-sync gc --remote --yes             delete them (kept: anything younger than 24h)
  hf-cache-sync gc --remote=/mnt/share --grace 7d --yes";

pub const WATCH: &str = "\
Examples:
  hf-cache-sync watch                         push what huggingface_hub downloads, as it lands
  hf-cache-sync watch --debounce 30 --workers 8";

pub const DEDUPE: &str = "\
Examples:
  hf-cache-sync dedupe --dry-run              the copies it would link and the bytes saved
  hf-cache-sync --cache-dir ~/.cache/huggingface/hub --cache-dir /data/hf-hub dedupe";
