//! Every example of this crate runs against its in-process emulator (no environment set) and
//! prints what it claims to do.

use std::time::Duration;

use acr_test_support::{run_example, ExampleRun};

/// Generous: an example takes well under a second on a warm machine.
const TIMEOUT: Duration = Duration::from_secs(120);

fn run(name: &str) -> ExampleRun {
    let run = run_example(name, &[], TIMEOUT);
    run.assert_success(name);
    assert!(
        run.stdout
            .contains("using a local emulator at http://127.0.0.1:"),
        "{name} did not use the in-process emulator:\n{}",
        run.stdout
    );
    run
}

/// The `sha256:<hex>` digests in `line`, in order.
fn digests(line: &str) -> Vec<&str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|w| w.starts_with("sha256:") && w.len() == 71)
        .collect()
}

/// The digests in the lines of `run` that start with `prefix`, in order.
fn digests_after<'a>(run: &'a ExampleRun, prefix: &str) -> Vec<&'a str> {
    run.lines_starting(prefix)
        .into_iter()
        .flat_map(digests)
        .collect()
}

/// The first `separator`-separated word of each (trimmed) line of `run` starting with `prefix`.
fn first_words<'a>(run: &'a ExampleRun, prefix: &str, separator: char) -> Vec<&'a str> {
    run.lines_starting(prefix)
        .into_iter()
        .filter_map(|l| l.trim().split(separator).next())
        .collect()
}

/// The one line of `run`'s output starting with `prefix`, checked to contain each of `parts`.
fn one_line<'a>(run: &'a ExampleRun, prefix: &str, parts: &[&str]) -> &'a str {
    let lines = run.lines_starting(prefix);
    assert_eq!(lines.len(), 1, "{prefix:?}: {}", run.stdout);
    for part in parts {
        assert!(lines[0].contains(part), "{part:?}: {}", run.stdout);
    }
    lines[0]
}

#[test]
fn quickstart_round_trips_an_image_and_cleans_up() {
    let run = run("quickstart");
    let uploaded = digests_after(&run, "uploaded ");
    let pulled = digests_after(&run, "pulled blob");
    let deleted = digests_after(&run, "deleted blob");
    assert_eq!(uploaded.len(), 2, "{}", run.stdout);
    assert_eq!(pulled, uploaded, "every uploaded blob is pulled back");
    assert_eq!(deleted, uploaded, "every uploaded blob is deleted");
    assert!(run
        .stdout
        .contains("locked tag       demo: can_write=Some(false) can_delete=Some(false)"));
    assert!(run
        .stdout
        .contains("repositories     [\"sample-oci-image\"]"));
    assert_eq!(run.stdout.lines().last(), Some("done"));
}

/// Runs `example` and checks the first words of its lines starting with `prefix`.
fn run_listing(example: &str, prefix: &str, separator: char, expected: &[&str]) -> ExampleRun {
    let run = run(example);
    assert_eq!(
        first_words(&run, prefix, separator),
        expected,
        "{}",
        run.stdout
    );
    run
}

#[test]
fn list_repositories_lists_every_seeded_repository() {
    let expected = ["library/busybox", "library/hello-world", "samples/nginx"];
    let run = run_listing("list_repositories", "  ", ':', &expected);
    assert!(run.stdout.contains("library/busybox: 2 tags, 1 manifests"));
}

#[test]
fn list_tags_anonymous_lists_newest_first() {
    let newest_first = [
        "library/hello-world:latest",
        "library/hello-world:v2",
        "library/hello-world:v1",
    ];
    run_listing(
        "list_tags_anonymous",
        "  library/hello-world:",
        ' ',
        &newest_first,
    );
}

#[test]
fn set_artifact_properties_locks_and_unlocks() {
    let run = run("set_artifact_properties");
    assert!(run
        .stdout
        .contains("tag latest: can_delete=Some(false) can_write=Some(false)"));
    assert!(
        run.stdout
            .contains("deleting the locked tag fails as expected: registry answered 405 REGISTRY_DISALLOWED_OPERATION"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("unlocked: manifest can_delete=Some(true), tag can_delete=Some(true)"));
}

#[test]
fn delete_images_keeps_the_newest_three_and_locked_ones() {
    let run = run("delete_images");
    let deleted: Vec<_> = run.lines_starting("delete ");
    assert_eq!(deleted.len(), 1, "{}", run.stdout);
    assert!(deleted[0].ends_with("[\"v2\"]"), "{}", run.stdout);
    let locked = run.lines_starting("locked ");
    assert!(
        locked.len() == 1 && locked[0].ends_with("[\"v1\"]"),
        "{}",
        run.stdout
    );
    assert!(run.lines_starting("unlock ").is_empty());
    assert_eq!(
        run.lines_starting("left "),
        [
            "left   samples/app: 4 [latest,v5 v4 v3 v1]",
            "left   samples/tool: 2 [1.1 1.0]"
        ]
    );
}

#[test]
fn delete_images_with_unlock_deletes_locked_images_too() {
    let run = run_example("delete_images", &["--unlock"], TIMEOUT);
    run.assert_success("delete_images --unlock");
    let unlocked = run.lines_starting("unlock ");
    assert!(
        unlocked.len() == 1 && unlocked[0].ends_with("[\"v1\"]"),
        "{}",
        run.stdout
    );
    let deleted: Vec<_> = run.lines_starting("delete ");
    assert_eq!(deleted.len(), 2, "{}", run.stdout);
    assert_eq!(
        run.lines_starting("left "),
        [
            "left   samples/app: 3 [latest,v5 v4 v3]",
            "left   samples/tool: 2 [1.1 1.0]"
        ]
    );
}

#[test]
fn upload_image_reports_progress_and_sets_the_manifest() {
    let run = run("upload_image");
    let progress = run.lines_starting("  layer: ");
    assert!(!progress.is_empty());
    assert_eq!(
        progress.last().copied(),
        Some("  layer: 3145728 of Some(3145728) bytes")
    );
    assert_eq!(
        digests(run.lines_starting("manifest hello-world:v1 -> ")[0]).len(),
        1
    );
}

#[test]
fn download_image_writes_verified_files_and_removes_its_directory() {
    let run = run("download_image");
    let files: Vec<_> = run.stdout.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(files.len(), 2, "config and one layer:\n{}", run.stdout);
    for line in files {
        let (digest, rest) = line.split_once(" -> ").unwrap();
        let path = rest.rsplit_once(" (").unwrap().0;
        assert!(path.ends_with(&digest.replace(':', "-")), "{line}");
        assert!(
            !std::path::Path::new(path).exists(),
            "the example removes its download directory: {path}"
        );
    }
}

#[test]
fn delete_manifest_removes_it() {
    let run = run("delete_manifest");
    let digest = digests(run.lines_starting("hello-world:latest is ")[0])[0];
    assert!(run.stdout.contains(&format!("deleted {digest}")));
    assert!(
        run.stdout.lines().any(|l| l == "it is gone"),
        "{}",
        run.stdout
    );
}

#[test]
fn delete_blob_removes_it() {
    let run = run("delete_blob");
    assert!(run.stdout.contains("exists: true"));
    assert!(
        run.stdout.trim_end().ends_with("exists: false"),
        "{}",
        run.stdout
    );
}

#[test]
fn national_cloud_asks_for_the_clouds_audience() {
    let run = run("national_cloud");
    assert!(
        run.stdout
            .contains("token scope      https://containerregistry.azure.cn/.default"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("repositories     [\"samples/hello\"]"),
        "{}",
        run.stdout
    );
}

#[test]
fn pull_image_writes_an_oci_layout_and_removes_it() {
    let run = run("pull_image");
    let line = one_line(
        &run,
        "pulled hello-world:latest (",
        &["1 manifests, 2 blobs downloaded"],
    );
    assert_eq!(digests(line).len(), 1, "{}", run.stdout);
}

#[test]
fn push_image_pushes_a_pulled_layout_back() {
    let run = run("push_image");
    let parts = [
        "/hello-world-pushed:latest (",
        "1 manifests, 2 blobs uploaded",
    ];
    one_line(&run, "pushed ", &parts);
}

#[test]
fn copy_image_mounts_within_one_registry() {
    let run = run("copy_image");
    let prefix = "copied hello-world:latest to hello-world-copy:latest (";
    one_line(&run, prefix, &["0 blobs copied (0 bytes), 2 mounted"]);
}

#[test]
fn image_examples_fail_clearly_on_bad_input() {
    for (name, args, message) in [
        (
            "pull_image",
            &["Bad/Name", "/tmp/x"][..],
            "Bad/Name: invalid repository_name",
        ),
        (
            "push_image",
            &["/nonexistent-layout", "app:v1"][..],
            "not an OCI image layout",
        ),
        ("copy_image", &["a:b", "c:-bad"][..], "c:-bad: invalid tag"),
        ("copy_image", &["one"][..], "usage: copy_image"),
    ] {
        let run = run_example(name, args, TIMEOUT);
        assert_eq!(run.code, Some(1), "{name} {args:?}:\n{}", run.stdout);
        assert!(
            run.stderr.contains(message),
            "{name} {args:?}:\n{}",
            run.stderr
        );
    }
}

#[test]
fn image_examples_go_to_the_registry_a_reference_names() {
    let registry = match acr_test_support::DockerRegistry::start() {
        Ok(r) => r,
        Err(e) => {
            acr_test_support::skip_or_fail(
                "image_examples_go_to_the_registry_a_reference_names",
                &format!("docker-registry ({e:#})"),
            );
            return;
        }
    };
    let host = registry
        .endpoint()
        .trim_start_matches("http://")
        .to_string();
    let layouts = tempfile::tempdir().expect("tempdir");
    let first = layouts.path().join("first");
    let second = layouts.path().join("second");
    let (first_dir, second_dir) = (
        first.to_string_lossy().to_string(),
        second.to_string_lossy().to_string(),
    );
    // From the seeded emulator into a layout, from the layout into docker-registry, within
    // docker-registry (mounted), and back out into another layout.
    let pulled = run_example("pull_image", &["hello-world:latest", &first_dir], TIMEOUT);
    pulled.assert_success("pull_image");
    let digest = digests_after(&pulled, "pulled ")[0].to_string();
    let pushed = run_example(
        "push_image",
        &[&first_dir, &format!("{host}/demo/hello:v1")],
        TIMEOUT,
    );
    pushed.assert_success("push_image");
    assert_eq!(digests_after(&pushed, "pushed "), [digest.as_str()]);
    let copied = run_example(
        "copy_image",
        &[
            &format!("{host}/demo/hello:v1"),
            &format!("{host}/demo/copied:v2"),
            "--all-platforms",
        ],
        TIMEOUT,
    );
    copied.assert_success("copy_image");
    assert!(
        copied
            .stdout
            .contains("0 blobs copied (0 bytes), 2 mounted"),
        "{}",
        copied.stdout
    );
    let again = run_example(
        "pull_image",
        &[&format!("{host}/demo/copied:v2"), &second_dir],
        TIMEOUT,
    );
    again.assert_success("pull_image");
    assert_eq!(digests_after(&again, "pulled "), [digest.as_str()]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(second.join("index.json")).expect("index.json"))
            .expect("json");
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v2"
    );
}
