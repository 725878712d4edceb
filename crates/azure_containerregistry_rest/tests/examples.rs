//! The raw REST example runs against the in-process emulator and reads back what it pushed.

use std::time::Duration;

#[test]
fn raw_rest_pushes_and_reads_back() {
    let run = acr_test_support::run_example("raw_rest", &[], Duration::from_secs(120));
    run.assert_success("raw_rest");
    assert!(
        run.stdout.starts_with("registry: http://127.0.0.1:"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("blob content: hello from the raw REST crate"));
    assert!(run.stdout.contains("repositories: [\"samples/raw\"]"));
    assert_eq!(run.lines_starting("pushed ").len(), 2);
}
