//! `passlink status`: is the server up and ready (/healthz, /readyz), and what GetStatus says:
//! version, store, uptime, outbox depth. Exits non-zero when the server is not ready.

use serde_json::{Value, json};

use super::{Client, Target};

#[derive(clap::Args, Clone)]
pub struct StatusArgs {
    #[command(flatten)]
    target: Target,
}

/// An unsigned protojson number (uint64 travels as a string; zero fields are omitted).
fn number(v: &Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0)
}

/// `"3723s"` (protojson Duration) → `1h 2m 3s`.
fn uptime(v: &Value) -> String {
    let secs =
        v.as_str().and_then(|s| s.trim_end_matches('s').split('.').next()?.parse::<u64>().ok()).unwrap_or(0);
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m"),
    }
}

pub async fn status(args: StatusArgs) -> Result<(), String> {
    let client = Client::new(&args.target)?;
    let (health, _) = client.probe("/healthz").await?;
    let (ready, ready_body) = client.probe("/readyz").await?;
    println!("server:   {}", client.url);
    println!("healthz:  {}", if health == 200 { "ok".to_string() } else { format!("HTTP {health}") });
    println!(
        "readyz:   {}",
        if ready == 200 { "ready".to_string() } else { format!("HTTP {ready}: {ready_body}") }
    );
    let s = client.call("passlink.admin.v1.AdminService/GetStatus", json!({})).await?;
    let store_ready = s["storeReady"].as_bool() == Some(true);
    println!("version:  {}", s["version"].as_str().unwrap_or("?"));
    println!(
        "store:    {} ({})",
        s["store"].as_str().unwrap_or("?"),
        if store_ready { "reachable" } else { "NOT reachable" }
    );
    println!("uptime:   {} (since {})", uptime(&s["uptime"]), s["startTime"].as_str().unwrap_or("?"));
    let o = &s["outbox"];
    println!(
        "outbox:   {} pending, {} in flight, {} failed",
        number(&o["pending"]),
        number(&o["inFlight"]),
        number(&o["failed"])
    );
    println!("events:   {} not yet delivered to the events webhook", number(&s["eventsBacklog"]));
    if health != 200 || ready != 200 || !store_ready {
        return Err("the server is not ready".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_protojson_durations() {
        assert_eq!(uptime(&json!("42s")), "42s");
        assert_eq!(uptime(&json!("3723.5s")), "1h 2m 3s");
        assert_eq!(uptime(&json!("90061s")), "1d 1h 1m");
        assert_eq!(uptime(&Value::Null), "0s");
        assert_eq!(number(&json!("7")), 7);
        assert_eq!(number(&json!(3)), 3);
    }
}
