//! Paging through 100 000 people over the API, against `keyward serve` as its own process.
//!
//! Every list answers one page and a cursor; the whole list is only ever walked by following
//! cursors. The test fills the database with 100 000 people in one statement, walks
//! `GET /api/v1/people` a thousand at a time, and checks that every person comes exactly once
//! and in UPN order, and that the server's peak memory after the whole walk is within a few
//! megabytes of its peak half way: memory that does not grow with the total. (Half way, not
//! earlier: SQLite's page cache, up to 2 MiB per connection, fills while the first part of the
//! table is read; it is bounded, but it is growth.)

mod support;

use std::time::Duration;

use keyward_store::{Stmt, Store};
use serde_json::Value;
use support::{keyward, start};

const PEOPLE: usize = 100_000;
const PAGE: usize = 1000;

/// The server's peak resident memory in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Fills the database with `PEOPLE` people whose UPNs sort in the order they were made.
async fn fill(database_url: &str) {
    let store = Store::open(database_url).await.unwrap();
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {PEOPLE})
         INSERT INTO person (id, display_name, upn, enabled, deleted_in_entra, source, groups_json, created_at, updated_at)
         SELECT printf('00000000-0000-4000-8000-%012d', i), printf('Person %06d', i),
                printf('person%06d@contoso.example', i), 1, 0, 'manual', '[]', 0, 0
         FROM n"
    );
    assert_eq!(store.execute(Stmt::new(sql)).await.unwrap(), PEOPLE as u64);
}

#[test]
fn a_client_pages_through_100_000_people_with_flat_server_memory() {
    let dir = std::env::temp_dir().join(format!("keyward-paging-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let database_url = format!("sqlite://{}", dir.join("keyward.db").display());
    let with_config = |cmd: &mut std::process::Command| {
        cmd.arg("--data-dir").arg(&dir).arg("--database-url").arg(&database_url);
        cmd.arg("--config").arg(dir.join("none.toml"));
    };
    let mut create = keyward();
    create.arg("admin");
    with_config(&mut create);
    let out = create.args(["token", "create", "--name", "pager", "--role", "auditor"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(fill(&database_url));
    let _ = rustls::crypto::ring::default_provider().install_default();

    let mut serve = keyward();
    serve.args(["serve", "--listen", "127.0.0.1:0"]);
    with_config(&mut serve);
    let (server, url) = start(serve, "Keyward server listening on");
    let pid = server.0.id();

    rt.block_on(async {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let mut after: Option<String> = None;
        let mut seen = 0usize;
        let mut last_upn = String::new();
        let mut peak_half_way = 0;
        loop {
            let mut req =
                http.get(format!("{url}/api/v1/people")).bearer_auth(&token).query(&[("limit", PAGE)]);
            if let Some(a) = &after {
                req = req.query(&[("after", a)]);
            }
            let page: Value = req.send().await.unwrap().error_for_status().unwrap().json().await.unwrap();
            let items = page["items"].as_array().unwrap();
            for p in items {
                let upn = p["upn"].as_str().unwrap();
                assert!(upn > last_upn.as_str(), "{upn} came after {last_upn}");
                last_upn = upn.to_owned();
            }
            seen += items.len();
            if seen == PEOPLE / 2 {
                peak_half_way = peak_rss_kib(pid);
            }
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, PEOPLE, "every person exactly once");
        assert_eq!(last_upn, format!("person{PEOPLE:06}@contoso.example"));
        let grown_kib = peak_rss_kib(pid).saturating_sub(peak_half_way);
        eprintln!("server peak memory: {peak_half_way} KiB half way, {grown_kib} KiB more at the end");
        // The second half of the walk returned 50 000 people (about 16 MB of JSON); a server that
        // held them would grow by at least that much. Allow allocator noise, not the list.
        assert!(grown_kib < 8 * 1024, "the server's peak memory grew by {grown_kib} KiB over the walk");
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
