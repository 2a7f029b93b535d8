//! `keyward sim`: the Entra ID emulator as a command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use keyward_sim::faults::FaultSpec;
use keyward_sim::seed::{EXAMPLE_SEED, Seed};
use keyward_sim::throttle::ThrottleProfile;
use keyward_sim::{Sim, SimOptions};

/// Options of `keyward sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8400")]
    listen: SocketAddr,
    /// Tenant seed (JSON); see --example-seed. Without it, the example tenant is used.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Print a documented example seed and exit.
    #[arg(long)]
    example_seed: bool,
    /// Serve HTTPS with a self-signed certificate (written next to --state, or printed).
    #[arg(long)]
    tls: bool,
    /// Service time added to every call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Throttling: `real` (documented quotas), `off`, or e.g. `writes=50/1s,ru=500/1s`.
    #[arg(long, default_value = "real")]
    throttle: String,
    /// Faults: e.g. `503=0.05,504=0.05,reset=0.02,lost=0.2,seed=7,retry-after=1`.
    #[arg(long, default_value = "")]
    faults: String,
    /// Keep the tenant's state in this file across restarts (created from the seed if absent).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Keep the stricter readings where Entra was observed to be looser (integer assertion
    /// times, exact origin, one credential per creation options, trusted attestation roots).
    #[arg(long)]
    strict: bool,
    /// Offer no passkey or TAP sign-in endpoint, as Entra publishes none (clients that prove a
    /// sign-in must then say it was not offered).
    #[arg(long)]
    no_sign_in: bool,
    /// How passkeys' method ids are formed: `derived` (the credential id with Entra's padding
    /// digit) or `opaque` (random GUIDs, for clients that must not depend on the form).
    #[arg(long, value_enum, default_value_t = MethodIdsArg::Derived)]
    method_ids: MethodIdsArg,
}

/// `--method-ids`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MethodIdsArg {
    /// From the credential id.
    Derived,
    /// Random GUIDs.
    Opaque,
}

/// Runs the emulator until Ctrl-C.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    if args.example_seed {
        println!("{EXAMPLE_SEED}");
        return Ok(());
    }
    let seed = match &args.seed {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read seed {}", path.display()))?;
            serde_json::from_str::<Seed>(&text).with_context(|| {
                format!("seed {} is not valid (see `keyward sim --example-seed`)", path.display())
            })?
        }
        None => Seed::example(),
    };
    let options = SimOptions {
        latency: Duration::from_millis(args.latency_ms),
        throttle: ThrottleProfile::parse(&args.throttle).map_err(anyhow::Error::msg).context("--throttle")?,
        faults: FaultSpec::parse(&args.faults).map_err(anyhow::Error::msg).context("--faults")?,
        state_file: args.state.clone(),
        strict: args.strict,
        method_ids: match args.method_ids {
            MethodIdsArg::Derived => keyward_sim::MethodIds::FromCredentialId,
            MethodIdsArg::Opaque => keyward_sim::MethodIds::Opaque,
        },
        no_sign_in: args.no_sign_in,
    };
    let sim = Sim::new(seed, options).map_err(anyhow::Error::msg)?;
    let tls = if args.tls {
        let tls = keyward_sim::server::SelfSignedTls::generate().map_err(anyhow::Error::msg)?;
        let cert_path = match &args.state {
            Some(state) => state.with_extension("cert.pem"),
            None => std::env::temp_dir().join(format!("keyward-sim-{}.cert.pem", args.listen.port())),
        };
        std::fs::write(&cert_path, &tls.certificate_pem)
            .with_context(|| format!("cannot write {}", cert_path.display()))?;
        println!("tls certificate: {}", cert_path.display());
        Some(tls)
    } else {
        None
    };
    let running = keyward_sim::server::spawn(sim.clone(), args.listen, tls).await.with_context(|| {
        format!("cannot listen on {} (is another sim running? try --listen 127.0.0.1:0)", args.listen)
    })?;
    let (tenant, users) = sim.read(|t| (t.tenant_id.clone(), t.users.len()));
    if users == 0 {
        bail!("the seed has no users; nothing to emulate");
    }
    println!("keyward sim: tenant {tenant} with {users} users");
    println!("authority: {}/{tenant}", running.base_url);
    println!("graph:     {}/v1.0  {}/beta", running.base_url, running.base_url);
    println!("press Ctrl-C to stop");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    running.stop().await;
    Ok(())
}
