//! The static files, compiled into the binary: htmx (vendored from npm `htmx.org` 2.x), the
//! stylesheet and the small script for the theme and time-zone switches. Pages link them with
//! `?v=<hash>`, so they can be cached for a year.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/htmx.min.js"),
    ),
    (
        "weir.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/weir.css"),
    ),
    (
        "weir.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/weir.js"),
    ),
];

/// A short hash of every static file, for the `?v=` of links.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        for (_, _, bytes) in FILES {
            h.update(bytes);
        }
        h.finalize().to_hex()[..12].to_string()
    })
}

pub async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, bytes)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
