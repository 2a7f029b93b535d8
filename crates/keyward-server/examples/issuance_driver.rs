//! Load driver for `bench/server.sh`: issues passkeys through a running `keyward serve` and
//! measures the server process's CPU time per issuance.
//!
//! The emulator and the soft key run *in this process*, so the server's CPU time (its threads'
//! run time from `/proc/PID/task/*/schedstat`) holds only Keyward's own work — including its client side of the Graph
//! calls, not Entra's or the authenticator's. Issuances run in batches; per batch the requests
//! are created first and measured apart, then the "both API calls" (creation options and
//! completion) are measured, together and apart; the medians of the per-batch CPU per issuance
//! are reported.
//!
//! Usage: `issuance_driver URL ADMIN_TOKEN SERVER_PID [ISSUANCES] [BATCHES]`; prints
//! `cpu_ms_per_issuance_median=…` and `person_id=…` (a person for the read load test).

use keyward_softkey::Config;
use keyward_testkit::desk::{AAGUID, SoftDesk, packed_config};
use keyward_testkit::stack::call_api;
use keyward_testkit::{seed, sim, test_ca};
use keyward_webauthn::b64;
use keyward_webauthn::registration::RegistrationPlan;
use serde_json::{Value, json};

/// CPU time a process has used, in milliseconds: the sum of its threads' scheduler run time
/// (`/proc/PID/task/*/schedstat`, nanoseconds). Far finer than utime + stime (10 ms ticks, sampled),
/// so a batch of 50 issuances is measured to the microsecond. A thread that exits during a batch
/// takes its time with it; the server's threads (request threads, one per SQLite connection) live
/// as long as it does, and `tick_ms_per_issuance_mean` (from `/proc/PID/stat`) cross-checks.
fn cpu_ms(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the server process is gone");
    let mut ns = 0u64;
    for task in tasks.flatten() {
        // A thread may exit between the listing and the read.
        if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
            ns += stat.split(' ').next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    ns as f64 / 1e6
}

/// utime + stime of a process, in clock ticks (coarse; the cross-check of [`cpu_ms`]).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server process is gone");
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn ticks_per_second() -> f64 {
    let out = std::process::Command::new("getconf").arg("CLK_TCK").output().ok();
    out.and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|s| s.trim().parse().ok()).unwrap_or(100.0)
}

/// The server under load, reached with the admin's token.
struct Server {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Server {
    /// One API call that must succeed; returns the JSON body.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = call_api(&self.http, &self.url, &self.token, method, path, body).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {value}");
        value
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: issuance_driver URL ADMIN_TOKEN SERVER_PID [ISSUANCES] [BATCHES]");
        std::process::exit(2);
    }
    let (url, token, pid) = (args[1].clone(), args[2].clone(), args[3].parse::<u32>().unwrap());
    let issuances: usize = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(400);
    let batches: usize = args.get(5).map(|s| s.parse().unwrap()).unwrap_or(20);
    sim::install_crypto();

    let ca = test_ca(AAGUID, "Authenticator Attestation");
    let mut seed = seed::with_users(issuances, |i, user| {
        user.user_principal_name = format!("bench{i:05}@contoso.onmicrosoft.com");
        user.display_name = format!("Bench {i:05}");
    });
    seed.attestation_roots_pem = vec![ca.ca_pem.clone()];
    let tenant = seed.tenant_id.clone();
    let sim = sim::start(seed, sim::unthrottled()).await;

    let server = Server { http: reqwest::Client::new(), url, token };
    let connector = json!({
        "enabled": true, "clientId": "6731de76-14a6-49ae-97bc-6eba6914391e", "tenantId": tenant,
        "credential": {"kind": "secret", "clientSecret": "sim-secret-change-me"},
        "authorityUrl": sim.base_url, "graphUrl": sim.base_url,
    });
    server.call("PUT", "/api/v1/connector", Some(connector)).await;
    server.call("POST", "/api/v1/people/sync", Some(json!({}))).await;

    let config = Config { max_resident_keys: issuances + 10, ..packed_config(&ca, AAGUID) };
    let mut desk = SoftDesk::open(config, "135790");

    let tick = 1000.0 / ticks_per_second();
    let per_batch = issuances / batches;
    // Per batch: the issuance requests are created first (measured on their own: in production they
    // are made ahead, e.g. by a bulk job); then the "both API calls" — creation options for
    // each, then (after the soft key made every credential, unmeasured) each completion — are
    // measured, and reported together and apart.
    let (mut both, mut create, mut opts, mut done) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut n = 0;
    let per = |ms: f64| ms / per_batch as f64;
    let mut measured_ticks = 0;
    for _ in 0..batches {
        let t0 = cpu_ms(pid);
        let mut ids = Vec::with_capacity(per_batch);
        for _ in 0..per_batch {
            let upn = format!("bench{n:05}@contoso.onmicrosoft.com");
            n += 1;
            let issuance = server.call("POST", "/api/v1/issuances", Some(json!({"person": upn}))).await;
            ids.push(issuance["id"].as_str().unwrap().to_owned());
        }
        let (t1, k1) = (cpu_ms(pid), cpu_ticks(pid));
        let mut plans = Vec::with_capacity(per_batch);
        for id in &ids {
            let options = server.call("POST", &format!("/api/v1/issuances/{id}/options"), None).await;
            plans.push(
                RegistrationPlan::from_creation_options(
                    &serde_json::from_value(options["creation_options"].clone()).unwrap(),
                )
                .unwrap(),
            );
        }
        let (t2, k2) = (cpu_ms(pid), cpu_ticks(pid));
        let mut bodies = Vec::with_capacity(per_batch);
        for plan in &plans {
            let pin_token = desk.make_credential_token();
            let made = desk.client.register_for_entra(plan, &pin_token).unwrap();
            bodies.push(json!({
                "client_data_json": b64::encode(&plan.client_data_json),
                "attestation_object": b64::encode(&made.attestation.attestation_object()),
            }));
        }
        let (t3, k3) = (cpu_ms(pid), cpu_ticks(pid));
        for (id, body) in ids.iter().zip(bodies) {
            server.call("POST", &format!("/api/v1/issuances/{id}/complete"), Some(body)).await;
        }
        let (t4, k4) = (cpu_ms(pid), cpu_ticks(pid));
        measured_ticks += (k2 - k1) + (k4 - k3);
        create.push(per(t1 - t0));
        opts.push(per(t2 - t1));
        done.push(per(t4 - t3));
        both.push(per(t2 - t1 + t4 - t3));
    }
    let median = |samples: &mut Vec<f64>| {
        samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        samples[samples.len() / 2]
    };
    let (both_median, create_median) = (median(&mut both), median(&mut create));
    let (options_median, complete_median) = (median(&mut opts), median(&mut done));
    let people = server.call("GET", "/api/v1/people?search=bench00000", None).await;
    println!("issuances={n} batches={batches}");
    println!("cpu_ms_per_issuance_median={both_median:.3}");
    println!("cpu_ms_per_issuance_batches={both:.3?}");
    // The coarse cross-check: all measured ticks over all measured issuances (a mean, not a median).
    println!("tick_ms_per_issuance_mean={:.3}", measured_ticks as f64 * tick / n as f64);
    println!("cpu_ms_per_create_median={create_median:.3}");
    println!("cpu_ms_per_create_batches={create:.3?}");
    println!("cpu_ms_per_options_median={options_median:.3}");
    println!("cpu_ms_per_complete_median={complete_median:.3}");
    println!("person_id={}", people["items"][0]["id"].as_str().unwrap());
}
