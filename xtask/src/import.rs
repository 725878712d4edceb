//! `cargo xtask import`: converts an upstream ACR Swagger 2.0 spec into the project's
//! OpenAPI 3.0 form.
//!
//! The conversion is `swagger2openapi` followed by the project's patches, numbered as in
//! `specs/PATCHES.md`. Each patch checks that its target exists, so an upstream change that
//! moves a target fails loudly instead of silently producing a different spec.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::descriptions;

/// The API version this importer understands.
pub const API_VERSION: &str = "2021-07-01";

/// Converts an upstream Swagger 2.0 document into the project's OpenAPI 3.0 document.
pub fn import(swagger: &Value) -> Result<Value> {
    if swagger.get("swagger").and_then(Value::as_str) != Some("2.0") {
        bail!("the input is not a Swagger 2.0 document (no \"swagger\": \"2.0\")");
    }
    let version = swagger.pointer("/info/version").and_then(Value::as_str);
    if version != Some(API_VERSION) {
        bail!("expected info.version {API_VERSION}, found {version:?}");
    }
    let mut sw = swagger.clone();
    inline_parameter_refs(&mut sw)?;
    fold_overloads(&mut sw)?; // patch 5
    drop_api_version(&mut sw); // patch 6
    token_forms(&mut sw)?; // patch 2
    manifest_put_body(&mut sw)?; // patch 3
    binary_request_bodies(&mut sw); // patch 4
    drop_redirects(&mut sw); // patch 10
    if let Some(obj) = sw.as_object_mut() {
        for key in [
            "x-ms-parameterized-host",
            "securityDefinitions",
            "security",
            "tags",
            "parameters",
        ] {
            obj.remove(key);
        }
    }

    let mut options = swagger2openapi::Options::new();
    options.patch = true;
    swagger2openapi::convert(&sw, &mut options).map_err(|e| anyhow!("swagger2openapi: {e}"))?;
    let mut oas = options.openapi;

    error_responses(&mut oas)?; // patch 1
    binary_responses(&mut oas)?; // patches 3, 4, 10
    wire_schemas(&mut oas)?; // patch 9
    short_operation_ids(&mut oas)?; // patch 11
    strip_prose(&mut oas); // patch 12
    add_oci_extensions(&mut oas); // patch 13 (OCI distribution operations upstream lacks)
    finish_document(&mut oas)?;
    prune_unused_schemas(&mut oas); // patch 14
    descriptions::apply(&mut oas)?; // patch 12, our own words
    Ok(oas)
}

fn paths_mut(doc: &mut Value) -> Result<&mut Map<String, Value>> {
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("the document has no paths"))
}

fn operation_mut<'a>(doc: &'a mut Value, path: &str, method: &str) -> Result<&'a mut Value> {
    paths_mut(doc)?
        .get_mut(path)
        .and_then(|p| p.get_mut(method))
        .ok_or_else(|| anyhow!("patch target missing: {} {path}", method.to_uppercase()))
}

/// Every `(path, method, operation)` of the document, in document order.
fn operations_mut(doc: &mut Value) -> Vec<&mut Value> {
    let mut out = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            if let Some(item) = item.as_object_mut() {
                for (method, op) in item.iter_mut() {
                    if HTTP_METHODS.contains(&method.as_str()) {
                        out.push(op);
                    }
                }
            }
        }
    }
    out
}

const HTTP_METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch"];

/// `$ref` parameters are inlined first, so later patches can change `required` per operation.
fn inline_parameter_refs(sw: &mut Value) -> Result<()> {
    let shared = sw.get("parameters").cloned().unwrap_or_else(|| json!({}));
    for key in ["paths", "x-ms-paths"] {
        let Some(paths) = sw.get_mut(key).and_then(Value::as_object_mut) else {
            continue;
        };
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for op in item.values_mut() {
                let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                    continue;
                };
                for p in params.iter_mut() {
                    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
                        let name = r
                            .strip_prefix("#/parameters/")
                            .ok_or_else(|| anyhow!("unsupported parameter reference {r}"))?;
                        let target = shared
                            .get(name)
                            .ok_or_else(|| anyhow!("unresolved parameter reference {r}"))?;
                        *p = target.clone();
                    }
                }
            }
        }
    }
    Ok(())
}

/// Patch 5: the `x-ms-paths` overloads (`?_overload=…` or `?mode=…`) become optional parts of
/// their base operations.
fn fold_overloads(sw: &mut Value) -> Result<()> {
    let Some(overloads) = sw.as_object_mut().and_then(|o| o.remove("x-ms-paths")) else {
        return Ok(());
    };
    let overloads = overloads
        .as_object()
        .ok_or_else(|| anyhow!("x-ms-paths is not an object"))?
        .clone();
    for (key, item) in overloads {
        let base_path = key.split('?').next().unwrap_or(&key).to_string();
        let item = item.as_object().cloned().unwrap_or_default();
        for (method, overload) in item {
            if !HTTP_METHODS.contains(&method.as_str()) {
                continue;
            }
            let base = operation_mut(sw, &base_path, &method)
                .with_context(|| format!("folding overload {key}"))?;
            // Parameters: the union; anything not in both becomes optional.
            let base_params = base["parameters"].as_array().cloned().unwrap_or_default();
            let over_params = overload["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut merged = Vec::new();
            let name_of = |p: &Value| {
                format!(
                    "{}:{}",
                    p["in"].as_str().unwrap_or(""),
                    p["name"].as_str().unwrap_or("").to_ascii_lowercase()
                )
            };
            for p in &base_params {
                let mut p = p.clone();
                if !over_params.iter().any(|o| name_of(o) == name_of(&p)) {
                    p["required"] = json!(false);
                }
                merged.push(p);
            }
            for p in &over_params {
                if !base_params.iter().any(|b| name_of(b) == name_of(p)) {
                    let mut p = p.clone();
                    p["required"] = json!(false);
                    merged.push(p);
                }
            }
            base["parameters"] = Value::Array(merged);
            if let (Some(resp), Some(over_resp)) = (
                base.get_mut("responses").and_then(Value::as_object_mut),
                overload.get("responses").and_then(Value::as_object),
            ) {
                for (code, r) in over_resp {
                    resp.entry(code.clone()).or_insert_with(|| r.clone());
                }
            }
        }
    }
    Ok(())
}

/// Patch 6: `api-version` is not a per-operation parameter; the REST crate's hook appends it
/// to `/acr/` and `/oauth2/` requests (and never to `/v2/` or `Link` follow-ups).
fn drop_api_version(sw: &mut Value) {
    for op in operations_mut(sw) {
        if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            params.retain(|p| p["name"].as_str() != Some("api-version"));
        }
    }
}

fn snake_form_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Patch 2: token requests are `application/x-www-form-urlencoded` with snake_case fields;
/// `/oauth2/token` always carries `scope`, and `refresh_token` is optional there (anonymous
/// `grant_type=password` sends none).
fn token_forms(sw: &mut Value) -> Result<()> {
    for (path, scope_required) in [("/oauth2/exchange", false), ("/oauth2/token", true)] {
        let op = operation_mut(sw, path, "post")?;
        op["consumes"] = json!(["application/x-www-form-urlencoded"]);
        let params = op["parameters"]
            .as_array_mut()
            .ok_or_else(|| anyhow!("patch target missing: parameters of POST {path}"))?;
        for p in params.iter_mut() {
            if p["in"] == "formData" {
                let name = snake_form_name(p["name"].as_str().unwrap_or(""));
                p["name"] = json!(name);
                if let Some(o) = p.as_object_mut() {
                    // Grant types are open strings on the wire (access_token, refresh_token, password).
                    o.remove("enum");
                    o.remove("x-ms-enum");
                    o.remove("$ref");
                    o.insert("type".into(), json!("string"));
                }
                if name == "refresh_token" && scope_required {
                    p["required"] = json!(false);
                }
            }
        }
        if scope_required && !params.iter().any(|p| p["name"] == "scope") {
            params.push(
                json!({"name": "scope", "in": "formData", "required": true, "type": "string"}),
            );
        }
        if !params.iter().any(|p| p["name"] == "grant_type") {
            bail!("patch target missing: grant_type form field of POST {path}");
        }
    }
    Ok(())
}

/// Patch 3: a manifest PUT sends the exact manifest bytes with the caller's media type.
fn manifest_put_body(sw: &mut Value) -> Result<()> {
    let op = operation_mut(sw, "/v2/{name}/manifests/{reference}", "put")?;
    op["consumes"] = json!(["application/octet-stream"]);
    let params = op["parameters"]
        .as_array_mut()
        .ok_or_else(|| anyhow!("patch target missing: parameters of PUT manifest"))?;
    let body = params
        .iter_mut()
        .find(|p| p["in"] == "body")
        .ok_or_else(|| anyhow!("patch target missing: body of PUT manifest"))?;
    body["schema"] = json!({"type": "string", "format": "binary"});
    body["required"] = json!(true);
    params
        .push(json!({"name": "Content-Type", "in": "header", "required": true, "type": "string"}));
    Ok(())
}

/// Patch 4: every octet-stream request body is `{type: string, format: binary}`.
fn binary_request_bodies(sw: &mut Value) {
    for op in operations_mut(sw) {
        let binary = op["consumes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|m| m == "application/octet-stream"));
        if !binary {
            continue;
        }
        op["consumes"] = json!(["application/octet-stream"]);
        if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            for p in params.iter_mut().filter(|p| p["in"] == "body") {
                p["schema"] = json!({"type": "string", "format": "binary"});
            }
        }
    }
}

/// Patch 10: `307` is dropped: reqwest follows the redirect to blob storage itself.
fn drop_redirects(sw: &mut Value) {
    for op in operations_mut(sw) {
        if let Some(r) = op.get_mut("responses").and_then(Value::as_object_mut) {
            r.remove("307");
        }
    }
}

/// Patch 1: `default` responses become `4XX`/`5XX` with the ACR error body; bodiless `404`s
/// beside them are dropped.
fn error_responses(oas: &mut Value) -> Result<()> {
    let error = json!({
        "description": "",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AcrErrors"}}}
    });
    let mut seen = 0;
    for op in operations_mut(oas) {
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        if responses.remove("default").is_some() {
            seen += 1;
        }
        responses.retain(|code, r| !(code == "404" && r.get("content").is_none()));
        responses.insert("4XX".into(), error.clone());
        responses.insert("5XX".into(), error.clone());
    }
    if seen == 0 {
        bail!("patch target missing: no `default` responses to replace");
    }
    Ok(())
}

/// Patches 3, 4 and 10 on responses: blob and manifest content comes back as exact bytes, one
/// media type per response, and `2xx` responses with an empty schema carry no content.
fn binary_responses(oas: &mut Value) -> Result<()> {
    let binary =
        json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}});
    for (path, method, codes) in [
        ("/v2/{name}/blobs/{digest}", "get", &["200", "206"][..]),
        ("/v2/{name}/manifests/{reference}", "get", &["200"][..]),
    ] {
        let op = operation_mut(oas, path, method)?;
        for code in codes {
            let r = op
                .pointer_mut(&format!("/responses/{code}"))
                .ok_or_else(|| anyhow!("patch target missing: {code} of {method} {path}"))?;
            r["content"] = binary.clone();
        }
    }
    for op in operations_mut(oas) {
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (code, r) in responses.iter_mut() {
            let Some(content) = r.get_mut("content").and_then(Value::as_object_mut) else {
                continue;
            };
            if code.starts_with('2') {
                let empty = content.values().all(|m| {
                    m.get("schema")
                        .is_none_or(|s| s.as_object().is_some_and(|o| o.is_empty()))
                });
                if empty {
                    r.as_object_mut().map(|o| o.remove("content"));
                    continue;
                }
            }
            // One media type per response: JSON where offered, else the first.
            if content.len() > 1 {
                let keep = if content.contains_key("application/json") {
                    "application/json".to_string()
                } else {
                    content.keys().next().cloned().unwrap_or_default()
                };
                content.retain(|k, _| *k == keep);
            }
        }
    }
    Ok(())
}

/// Patch 9: schemas that accept what ACR really sends.
fn wire_schemas(oas: &mut Value) -> Result<()> {
    let schemas = oas
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("the document has no components.schemas"))?;
    // Error `detail` is an array, object, string or absent.
    let detail = schemas
        .get_mut("AcrErrorInfo")
        .and_then(|s| s.pointer_mut("/properties/detail"))
        .ok_or_else(|| anyhow!("patch target missing: AcrErrorInfo.detail"))?;
    *detail = json!({});
    // Open enums: ACR sends values outside the upstream lists (e.g. `unknown`).
    for schema in schemas.values_mut() {
        let open = schema
            .pointer("/x-ms-enum/modelAsString")
            .and_then(Value::as_bool)
            == Some(true);
        if open {
            if let Some(o) = schema.as_object_mut() {
                o.remove("enum");
            }
        }
    }
    // Manifest items carry their media type, and changeable attributes the quarantine state
    // (docs/wire-facts.md#manifest-metadata), which upstream does not describe.
    let manifest = schema_properties(schemas, "ManifestAttributesBase")?;
    manifest
        .entry("mediaType")
        .or_insert_with(|| json!({"type": "string"}));
    let changeable = schema_properties(schemas, "ManifestChangeableAttributes")?;
    changeable
        .entry("quarantineState")
        .or_insert_with(|| json!({"type": "string"}));
    // A JSON document inside a string, as ACR sends it.
    changeable
        .entry("quarantineDetails")
        .or_insert_with(|| json!({"type": "string"}));
    // Annotation values are strings on the wire, whatever the key.
    let annotations = schemas
        .get_mut("Annotations")
        .ok_or_else(|| anyhow!("patch target missing: Annotations"))?;
    *annotations = json!({"type": "object", "additionalProperties": {"type": "string"}});
    Ok(())
}

/// Patch 11: operation ids without their group prefix (`ContainerRegistryBlob_GetBlob` →
/// `GetBlob`, generated as `get_blob`).
/// The `properties` of schema `name` (an error naming it when the patch target is missing).
fn schema_properties<'a>(
    schemas: &'a mut Map<String, Value>,
    name: &str,
) -> Result<&'a mut Map<String, Value>> {
    schemas
        .get_mut(name)
        .and_then(|s| s.get_mut("properties"))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("patch target missing: {name}.properties"))
}

fn short_operation_ids(oas: &mut Value) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for op in operations_mut(oas) {
        let Some(id) = op["operationId"].as_str() else {
            bail!("an operation has no operationId");
        };
        let short = id.rsplit('_').next().unwrap_or(id).to_string();
        if !seen.insert(short.clone()) {
            bail!("operationId collision after shortening: {short}");
        }
        op["operationId"] = json!(short);
    }
    Ok(())
}

/// Patch 12: upstream prose and vendor extensions are dropped; the project writes its own.
fn strip_prose(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let is_response = o.contains_key("content") || o.contains_key("headers");
            o.retain(|k, _| {
                !(k == "summary" || k == "example" || k == "examples" || k.starts_with("x-"))
            });
            if o.get("description").is_some_and(Value::is_string) {
                o.remove("description");
            }
            let _ = is_response;
            for (k, child) in o.iter_mut() {
                // Keys of `properties` are names, not keywords: recurse into their schemas only.
                if k == "properties" {
                    if let Some(props) = child.as_object_mut() {
                        props.values_mut().for_each(strip_prose);
                    }
                } else {
                    strip_prose(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_prose),
        _ => {}
    }
}

/// Patch 13: OCI distribution operations that ACR serves and the 2021-07-01 spec lacks: the
/// OCI 1.1 referrers API, the `/v2` tag list and the `/v2` catalog.
fn add_oci_extensions(oas: &mut Value) {
    let errors = json!({
        "4XX": {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AcrErrors"}}}},
        "5XX": {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AcrErrors"}}}}
    });
    let page_params = json!([
        {"name": "n", "in": "query", "required": false, "schema": {"type": "integer", "format": "int32"}},
        {"name": "last", "in": "query", "required": false, "schema": {"type": "string"}}
    ]);
    let with_errors = |ok: Value| {
        let mut responses = errors.clone();
        responses["200"] = ok;
        responses
    };
    if let Some(paths) = oas.get_mut("paths").and_then(Value::as_object_mut) {
        let mut tag_params = vec![
            json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}),
        ];
        tag_params.extend(page_params.as_array().cloned().unwrap_or_default());
        paths.insert(
            "/v2/{name}/tags/list".into(),
            json!({"get": {
                "operationId": "GetOciTags",
                "parameters": tag_params,
                "responses": with_errors(json!({"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OciTagList"}}}}))
            }}),
        );
        paths.insert(
            "/v2/_catalog".into(),
            json!({"get": {
                "operationId": "GetOciCatalog",
                "parameters": page_params,
                "responses": with_errors(json!({"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Repositories"}}}}))
            }}),
        );
        paths.insert(
            "/v2/{name}/referrers/{digest}".into(),
            json!({"get": {
                "operationId": "GetReferrers",
                "parameters": [
                    {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "digest", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "artifactType", "in": "query", "required": false, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReferrersIndex"}}}},
                    "4XX": {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AcrErrors"}}}},
                    "5XX": {"description": "", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AcrErrors"}}}}
                }
            }}),
        );
    }
    if let Some(schemas) = oas
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.insert(
            "OciTagList".into(),
            json!({"type": "object", "properties": {
                "name": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}}
            }}),
        );
        schemas.insert(
            "ReferrerDescriptor".into(),
            json!({"type": "object", "required": ["mediaType", "digest", "size"], "properties": {
                "mediaType": {"type": "string"},
                "digest": {"type": "string"},
                "size": {"type": "integer", "format": "int64"},
                "artifactType": {"type": "string"},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
            }}),
        );
        schemas.insert(
            "ReferrersIndex".into(),
            json!({"type": "object", "required": ["manifests"], "properties": {
                "schemaVersion": {"type": "integer", "format": "int32"},
                "mediaType": {"type": "string"},
                "manifests": {"type": "array", "items": {"$ref": "#/components/schemas/ReferrerDescriptor"}}
            }}),
        );
    }
}

/// Document-level settings: OpenAPI 3.0.3, our `info`, the registry as the server, and an
/// empty `description` on every response (which `openapiv3` requires).
fn finish_document(oas: &mut Value) -> Result<()> {
    oas["openapi"] = json!("3.0.3");
    oas["info"] = json!({
        "title": "Azure Container Registry data plane",
        "version": API_VERSION,
    });
    oas["servers"] = json!([{"url": "https://{loginServer}", "variables": {"loginServer": {"default": "myregistry.azurecr.io"}}}]);
    for op in operations_mut(oas) {
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            for r in responses.values_mut() {
                if r.get("description").is_none() {
                    r["description"] = json!("");
                }
            }
        }
        if let Some(o) = op.as_object_mut() {
            o.remove("tags");
            o.remove("security");
        }
    }
    if let Some(o) = oas.as_object_mut() {
        o.remove("security");
        o.remove("tags");
        if let Some(c) = o.get_mut("components").and_then(Value::as_object_mut) {
            c.remove("securitySchemes");
            c.remove("requestBodies");
            c.remove("parameters");
        }
    }
    Ok(())
}

/// Patch 14: schemas that no operation reaches (upstream leftovers such as the token form
/// schemas the conversion replaced) are dropped, so the generated crate has no dead types.
fn prune_unused_schemas(oas: &mut Value) {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                    if let Some(name) = r.strip_prefix("#/components/schemas/") {
                        out.push(name.to_string());
                    }
                }
                o.values().for_each(|c| refs(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }
    let mut reachable = std::collections::BTreeSet::new();
    let mut queue = Vec::new();
    refs(&oas["paths"], &mut queue);
    while let Some(name) = queue.pop() {
        if reachable.insert(name.clone()) {
            if let Some(schema) = oas.pointer(&format!("/components/schemas/{name}")) {
                refs(schema, &mut queue);
            }
        }
    }
    if let Some(schemas) = oas
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.retain(|name, _| reachable.contains(name));
    }
}

/// Serialises a spec the way `specs/` stores it: pretty JSON with a trailing newline.
pub fn to_text(spec: &Value) -> Result<String> {
    Ok(serde_json::to_string_pretty(spec)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_form_names() {
        assert_eq!(snake_form_name("grantType"), "grant_type");
        assert_eq!(snake_form_name("refresh_token"), "refresh_token");
        assert_eq!(snake_form_name("service"), "service");
    }

    #[test]
    fn rejects_openapi3_input() {
        let err = import(&json!({"openapi": "3.0.0"})).unwrap_err();
        assert!(err.to_string().contains("Swagger 2.0"));
    }
}
