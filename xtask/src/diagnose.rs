//! `cargo xtask diagnose [spec.json]`: generates each operation alone and names those that
//! progenitor rejects (it reports spec problems as panics that do not name the operation).

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::generate::{settings, workspace_root, SPEC_PATH};

/// The outcome of generating one operation alone.
pub struct Diagnosis {
    /// `METHOD path (operationId)`.
    pub operation: String,
    /// `None` when it generates; else progenitor's error or panic message.
    pub problem: Option<String>,
}

/// Generates every operation of `spec` alone.
pub fn diagnose(spec: &Value) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    let Some(paths) = spec.get("paths").and_then(Value::as_object) else {
        return out;
    };
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, op) in item {
            let id = op["operationId"].as_str().unwrap_or("?");
            let mut single = spec.clone();
            single["paths"] = serde_json::json!({ path: { method: op } });
            let problem = match serde_json::from_value::<openapiv3::OpenAPI>(single) {
                Err(e) => Some(format!("not valid OpenAPI 3.0: {e}")),
                Ok(openapi) => {
                    let result = std::panic::catch_unwind(|| {
                        let mut generator = progenitor::Generator::new(&settings());
                        generator.generate_tokens(&openapi).map(|_| ())
                    });
                    match result {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(format!("error: {e}")),
                        Err(panic) => Some(format!(
                            "panic: {}",
                            panic
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "(no message)".into())
                        )),
                    }
                }
            };
            out.push(Diagnosis {
                operation: format!("{} {path} ({id})", method.to_uppercase()),
                problem,
            });
        }
    }
    std::panic::set_hook(previous_hook);
    out
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let path = match args {
        [] => workspace_root().join(SPEC_PATH),
        [p] => p.into(),
        _ => bail!("usage: cargo xtask diagnose [spec.json]"),
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let spec: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let results = diagnose(&spec);
    let bad = results.iter().filter(|d| d.problem.is_some()).count();
    for d in &results {
        match &d.problem {
            None => println!("ok        {}", d.operation),
            Some(p) => println!("REJECTED  {}: {p}", d.operation),
        }
    }
    println!(
        "{} of {} operations generate alone",
        results.len() - bad,
        results.len()
    );
    if bad > 0 {
        bail!("{bad} operations are rejected by progenitor");
    }
    Ok(())
}
