//! `cargo xtask spec-coverage <upstream swagger-2.0 json>`: is every upstream operation in
//! `specs/` with the same method, path and parameters?

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::generate::{workspace_root, SPEC_PATH};

/// One upstream operation and what `specs/` lacks of it (nothing when covered).
#[derive(Debug)]
pub struct Coverage {
    /// `METHOD path` as upstream names it (overloads keep their `?…` suffix).
    pub operation: String,
    /// Upstream operationId.
    pub operation_id: String,
    /// What is missing or different in `specs/`; empty when covered.
    pub gaps: Vec<String>,
}

/// Parameter names compare without case, `_` and `-` (upstream uses both `grantType` and
/// `grant_type`, `Range` and `range`).
fn norm(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase()
}

fn resolve<'a>(doc: &'a Value, param: &'a Value) -> &'a Value {
    match param
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/parameters/"))
    {
        Some(name) => doc.pointer(&format!("/parameters/{name}")).unwrap_or(param),
        None => param,
    }
}

/// Compares an upstream Swagger 2.0 document with the project's OpenAPI 3.0 spec.
pub fn coverage(upstream: &Value, ours: &Value) -> Result<Vec<Coverage>> {
    let mut out = Vec::new();
    for key in ["paths", "x-ms-paths"] {
        let Some(paths) = upstream.get(key).and_then(Value::as_object) else {
            continue;
        };
        for (path_key, item) in paths {
            let path = path_key.split('?').next().unwrap_or(path_key);
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                if method == "parameters" {
                    continue;
                }
                let id = op["operationId"].as_str().unwrap_or("?").to_string();
                let mut gaps = Vec::new();
                match ours.pointer(&format!(
                    "/paths/{}/{method}",
                    path.replace('~', "~0").replace('/', "~1")
                )) {
                    None => gaps.push(format!("no {} {path} in specs/", method.to_uppercase())),
                    Some(mine) => gaps.extend(parameter_gaps(upstream, op, mine)),
                }
                out.push(Coverage {
                    operation: format!("{} {path_key}", method.to_uppercase()),
                    operation_id: id,
                    gaps,
                });
            }
        }
    }
    if out.is_empty() {
        bail!("the upstream document has no operations");
    }
    Ok(out)
}

fn parameter_gaps(upstream: &Value, op: &Value, mine: &Value) -> Vec<String> {
    let mut gaps = Vec::new();
    let my_params: Vec<(String, String)> = mine["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p["in"].as_str().unwrap_or("").to_string(),
                        norm(p["name"].as_str().unwrap_or("")),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let form_fields: Vec<String> = mine
        .pointer("/requestBody/content/application~1x-www-form-urlencoded/schema/properties")
        .and_then(Value::as_object)
        .map(|props| props.keys().map(|k| norm(k)).collect())
        .unwrap_or_default();
    let has_body = mine.get("requestBody").is_some();
    for param in op["parameters"].as_array().into_iter().flatten() {
        let p = resolve(upstream, param);
        let name = p["name"].as_str().unwrap_or("");
        let location = p["in"].as_str().unwrap_or("");
        if name == "api-version" {
            continue; // patch 6: appended by the hook
        }
        let found = match location {
            "body" => has_body,
            "formData" => form_fields.contains(&norm(name)),
            other => my_params
                .iter()
                .any(|(l, n)| l == other && *n == norm(name)),
        };
        if !found {
            gaps.push(format!("parameter {name} ({location}) missing"));
        }
    }
    for code in op["responses"]
        .as_object()
        .into_iter()
        .flat_map(|r| r.keys())
    {
        let covered = match code.as_str() {
            "default" => {
                mine.pointer("/responses/4XX").is_some() && mine.pointer("/responses/5XX").is_some()
            }
            "307" => true, // patch 10: followed by reqwest
            c if c.starts_with('4') => {
                mine.pointer(&format!("/responses/{c}")).is_some()
                    || mine.pointer("/responses/4XX").is_some()
            }
            c => mine.pointer(&format!("/responses/{c}")).is_some(),
        };
        if !covered {
            gaps.push(format!("response {code} missing"));
        }
    }
    gaps
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let input = match args {
        [] => match crate::upstream::Upstream::locate(None)? {
            Some(up) => up.typespec().to_string_lossy().into_owned(),
            None => bail!(
                "usage: cargo xtask spec-coverage <upstream swagger-2.0 json> (or set {})",
                crate::upstream::ENV
            ),
        },
        [input] => input.clone(),
        _ => bail!("usage: cargo xtask spec-coverage [upstream swagger-2.0 json]"),
    };
    let input = &input;
    let text = std::fs::read_to_string(input).with_context(|| format!("reading {input}"))?;
    let upstream: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {input}"))?;
    let ours_path = workspace_root().join(SPEC_PATH);
    let ours: Value = serde_json::from_str(&std::fs::read_to_string(&ours_path)?)
        .with_context(|| format!("parsing {}", ours_path.display()))?;
    let report = coverage(&upstream, &ours)?;
    let mut missing = 0;
    for c in &report {
        if c.gaps.is_empty() {
            println!("ok       {:<58} {}", c.operation, c.operation_id);
        } else {
            missing += 1;
            println!(
                "MISSING  {:<58} {}: {}",
                c.operation,
                c.operation_id,
                c.gaps.join("; ")
            );
        }
    }
    println!(
        "{} of {} upstream operations covered",
        report.len() - missing,
        report.len()
    );
    if missing > 0 {
        return Err(anyhow!(
            "{missing} upstream operations are not fully covered by {SPEC_PATH}"
        ));
    }
    Ok(())
}
