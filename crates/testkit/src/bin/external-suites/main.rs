//! The external suites: programs outside Cargo (node, Python, Chromium) run against the real
//! passlink binary. `scripts/test` runs this after `cargo test --workspace` and
//! `cargo build -p passlink`:
//!
//! ```sh
//! cargo run -q -p passlink-testkit --bin external-suites            # every suite, in order
//! cargo run -q -p passlink-testkit --bin external-suites -- browser # only some
//! cargo run -q -p passlink-testkit --bin external-suites -- --list
//! ```
//!
//! Layout: [`SUITES`] (here) is the list, one entry per suite with its banner; `suites.rs` holds
//! their bodies; `harness.rs` the pieces they share (a passlink process with a free port and a data
//! dir of its own, waited for on `/healthz`, stopped with SIGTERM; a suite program whose `PASS `
//! lines are filtered; the run's temporary directory). Every process is a guard killed on drop, so
//! nothing outlives a failure or a panic, and is registered so that a SIGINT or SIGTERM to the
//! runner stops it too. To add a suite, write `fn(&Ctx) -> Outcome` in `suites.rs` and add it to
//! [`SUITES`].
//!
//! Installs are not done here: `scripts/setup` does them (npm packages, virtualenvs, Chromium).

mod harness;
mod suites;

use harness::{Ctx, Outcome};

/// One external suite: `name` selects it on the command line, `banner` is printed before it runs.
struct Suite {
    name: &'static str,
    banner: &'static str,
    run: fn(&Ctx) -> Outcome,
}

/// Every external suite, in the order they run.
const SUITES: &[Suite] = &[
    Suite {
        name: "conformance-protos",
        banner: "wire conformance 1/2: our protos vs @zitadel/proto field by field",
        run: suites::conformance_protos,
    },
    Suite {
        name: "conformance-clients",
        banner: "wire conformance 2/2: ZITADEL's clients (connect-es: gRPC, gRPC-web, Connect JSON and binary) \
                 against a running passlink",
        run: suites::conformance_clients,
    },
    Suite {
        name: "browser",
        banner: "browser end to end: the hosted registration page, the sign-in page and OpenID Connect with openid-client in Debian's \
                 Chromium (headless, virtual WebAuthn authenticator) against a running passlink (tests/browser)",
        run: suites::browser,
    },
    Suite {
        name: "browser-tls",
        banner: "browser over native TLS: passlink with --tls-cert-file (a test CA), the hosted registration page on \
                 https://localhost in Debian's Chromium: HSTS, a secure context, a passkey created (tests/browser/tls.mjs)",
        run: suites::browser_tls,
    },
    Suite {
        name: "browser-policy",
        banner: "browser and the authenticator policy: passlink with --authenticator-policy denying Chromium's virtual \
                 authenticator; the hosted page says it is not allowed and the code stays usable (tests/browser/policy.mjs)",
        run: suites::browser_policy,
    },
    Suite {
        name: "sdk",
        banner: "SDK compatibility: ZITADEL's official SDKs, unchanged (zitadel-client from PyPI, @zitadel/client \
                 from npm), in every auth mode (PAT, client credentials, private-key JWT) against a running \
                 passlink (tests/sdk)",
        run: suites::sdk,
    },
    Suite {
        name: "ops",
        banner: "gRPC health and reflection: grpcio, grpcio-health-checking and grpcio-reflection from PyPI list \
                 the services, call one from the reflected descriptors, Check and Watch health against a \
                 running passlink (tests/ops)",
        run: suites::ops,
    },
    Suite {
        name: "openapi",
        banner: "OpenAPI: the served document (GET /openapi.json) checked with schemathesis against a running passlink, \
                 with the admin token, a token without roles and another organization's owner (tests/openapi)",
        run: suites::openapi,
    },
];

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for s in SUITES {
            println!("{:<20} {}", s.name, s.banner);
        }
        return std::process::ExitCode::SUCCESS;
    }
    if let Some(a) = args.iter().find(|a| a.starts_with('-')) {
        eprintln!("external-suites: unknown option {a}; usage: external-suites [--list] [SUITE...]");
        return std::process::ExitCode::from(2);
    }
    if let Some(unknown) = args.iter().find(|a| !SUITES.iter().any(|s| s.name == a.as_str())) {
        let names: Vec<&str> = SUITES.iter().map(|s| s.name).collect();
        eprintln!("external-suites: no suite {unknown:?}; the suites are {}", names.join(", "));
        return std::process::ExitCode::from(2);
    }
    let selected: Vec<&Suite> =
        SUITES.iter().filter(|s| args.is_empty() || args.iter().any(|a| a == s.name)).collect();

    let ctx = match Ctx::new() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("external-suites: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    for suite in selected {
        println!("\n== {}", suite.banner);
        if let Err(failure) = (suite.run)(&ctx) {
            failure.report(suite.name);
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}
