//! One makeCredential as Keyward provisions a key: a PIN/UV auth token (getInfo, key
//! agreement, getPinUvAuthTokenUsingPinWithPermissions) and a discoverable ES256 credential
//! with hmac-secret and credProtect, through our client and the soft key over the in-memory
//! CTAPHID transport. Budget: median under 2 ms.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use keyward_ctap::client::PERMISSION_MC;
use keyward_ctap::{Client, HidDevice, MakeCredential, MemoryTransport, Timeouts};
use keyward_softkey::{Config, SoftKey};
use secrecy::SecretString;

const RP: &str = "login.microsoft.com";
const BUDGET: Duration = Duration::from_millis(2);

fn setup() -> (Client<MemoryTransport>, SoftKey, SecretString) {
    let (host, dev) = MemoryTransport::pair();
    let key = SoftKey::spawn(Config::default(), dev.from_host, dev.to_host);
    let timeouts = Timeouts { idle: Duration::from_secs(5), transaction: Duration::from_secs(10) };
    let mut client = Client::new(HidDevice::open(host, timeouts).expect("CTAPHID INIT"));
    let pin = SecretString::from("1234".to_owned());
    client.set_pin(&pin).expect("setPIN");
    (client, key, pin)
}

fn request() -> MakeCredential {
    MakeCredential {
        client_data_hash: [0x42; 32],
        rp_id: RP.into(),
        user_id: b"bench-user".to_vec(), // same user each time: the resident slot is replaced
        user_name: Some("bench@contoso.com".into()),
        resident_key: true,
        hmac_secret: true,
        cred_protect: Some(2),
        ..MakeCredential::default()
    }
}

fn provision(client: &mut Client<MemoryTransport>, pin: &SecretString, req: &MakeCredential) {
    let token = client.get_pin_uv_auth_token(pin, PERMISSION_MC, Some(RP)).expect("PIN token");
    black_box(client.make_credential(req, Some(&token)).expect("makeCredential"));
}

fn bench(c: &mut Criterion) {
    let (mut client, _key, pin) = setup();
    let req = request();
    c.bench_function("makeCredential incl. PIN token (client + soft key, memory transport)", |b| {
        b.iter(|| provision(&mut client, &pin, &req))
    });
    // The budget check, on its own plain median so the figure is printed even when criterion's
    // report is not read.
    let mut samples: Vec<Duration> = (0..201)
        .map(|_| {
            let start = Instant::now();
            provision(&mut client, &pin, &req);
            start.elapsed()
        })
        .collect();
    samples.sort();
    let median = samples[samples.len() / 2];
    println!(
        "makeCredential incl. PIN token: median {median:?} over {} runs (budget {BUDGET:?})",
        samples.len()
    );
    assert!(median < BUDGET, "makeCredential median {median:?} exceeds the {BUDGET:?} budget");
}

criterion_group!(benches, bench);
criterion_main!(benches);
