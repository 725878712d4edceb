//! The whole-image cases: the image of [`IMAGE_LAYERS`] layers cut from the big blob, pulled
//! into an OCI image layout on tmpfs by this project's `pull_image` and by `skopeo copy`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use azure_containerregistry::pull_image;

use super::ours::content_client;
use super::sdk::run_child;
use super::{host_of, image_tag, Ctx, Measured, IMAGE_LAYERS, IMAGE_REPO};

/// A fresh layout directory for this case process, and the guard that removes it.
struct Layout(PathBuf);

impl Layout {
    fn new(ctx: &Ctx, case: &str) -> Self {
        Layout(ctx.work.join(format!("{case}-{}", std::process::id())))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Bytes of the files under `blobs/sha256`, and how many there are.
    fn blobs(&self) -> Result<(u64, usize)> {
        let dir = self.0.join("blobs/sha256");
        let mut total = (0, 0);
        for entry in std::fs::read_dir(&dir).with_context(|| format!("{}", dir.display()))? {
            total.0 += entry?.metadata()?.len();
            total.1 += 1;
        }
        Ok(total)
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Checks that the layout holds the whole image: every layer (together the big blob's bytes),
/// the config and the manifest.
fn check_layout(layout: &Layout, ctx: &Ctx) -> Result<()> {
    let (bytes, files) = layout.blobs()?;
    let expected = IMAGE_LAYERS as usize + 2;
    ensure!(files == expected, "{files} blob files, expected {expected}");
    ensure!(
        bytes >= ctx.size,
        "{bytes} bytes of blobs, less than the image's layers"
    );
    Ok(())
}

/// `pull_image` of the image into a fresh layout (default options: 6 connections, here one per
/// blob, each verified while written, then renamed into place).
pub(super) async fn ours_pull_image(ctx: &Ctx) -> Result<Measured> {
    let client = content_client(ctx, IMAGE_REPO)?;
    let layout = Layout::new(ctx, "pull-image");
    let t0 = Instant::now();
    let r = pull_image(&client, &image_tag(ctx.size), layout.path(), None).await?;
    let m = Measured::big(t0, ctx.size);
    ensure!(
        r.blobs_downloaded == IMAGE_LAYERS as usize + 1 && r.bytes_downloaded >= ctx.size,
        "pull result {r:?}"
    );
    check_layout(&layout, ctx)?;
    Ok(m)
}

/// `skopeo copy docker://… oci:…` of the same image into a fresh layout; the time is the
/// process's, start-up included (tens of milliseconds).
pub(super) fn skopeo_copy(ctx: &Ctx) -> Result<Measured> {
    let skopeo = ctx.tools.skopeo.as_ref().context("no skopeo")?;
    let layout = Layout::new(ctx, "skopeo-copy");
    let source = format!(
        "docker://{}/{IMAGE_REPO}:{}",
        host_of(&ctx.registry),
        image_tag(ctx.size)
    );
    let mut cmd = Command::new(skopeo);
    cmd.args([
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        "--quiet",
    ])
    .arg(source)
    .arg(format!("oci:{}:v1", layout.path().display()));
    let (_, external, wall_s) = run_child(ctx, cmd)?;
    check_layout(&layout, ctx)?;
    Ok(Measured::external(wall_s, ctx.size, external))
}
