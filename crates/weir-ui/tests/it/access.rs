//! Who may do what: the route table walked for sessions, CSRF tokens and roles; the cookie.

use crate::{Ui, concrete};
use axum::http::{Method, StatusCode, header};
use weir_api::Role;

#[tokio::test]
async fn every_route_but_the_public_ones_sends_a_visitor_without_a_session_to_the_login_page() {
    let ui = Ui::new().await;
    let routes = weir_ui::route_list();
    assert!(routes.len() >= 15, "{}", routes.len());
    for (method, path, role) in routes {
        let page = if method == Method::GET {
            ui.get(&concrete(path), None).await
        } else {
            ui.post(&concrete(path), None, None, &[]).await
        };
        if role == Role::Public {
            assert!(
                !page.location().starts_with("/login"),
                "{method} {path} is public but redirected"
            );
            continue;
        }
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{method} {path}");
        assert!(
            page.location().starts_with("/login"),
            "{method} {path} → {}",
            page.location()
        );
        if method == Method::GET {
            // The login page brings the user back to where they were going.
            let expected = match path {
                "/" => "/login".to_string(),
                _ => format!("/login?next={}", weir_ui_seg(&concrete(path))),
            };
            assert_eq!(page.location(), expected, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn every_post_without_a_valid_csrf_token_is_refused_and_changes_nothing() {
    let ui = Ui::new().await;
    let ada = ui.login("ada").await;
    let posts: Vec<_> = weir_ui::route_list()
        .into_iter()
        .filter(|(m, _, role)| *m == Method::POST && *role != Role::Public)
        .collect();
    assert!(posts.len() >= 5, "{posts:?}");
    let wrong = "0".repeat(64);
    for (_, path, _) in posts {
        for token in [None, Some(wrong.as_str()), Some("not hex")] {
            let page = ui
                .post(&concrete(path), Some(&ada), token, &[("paused", "true")])
                .await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "POST {path} {token:?}");
            assert!(page.body.contains("CSRF"), "{}", page.body);
        }
    }
    let row = ui.state.store().dag_row("daily").await.unwrap().unwrap();
    assert!(!row.is_paused, "a refused pause paused the DAG");
    // The session survived: the refused logout did not log out.
    assert_eq!(ui.get("/", Some(&ada)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_viewer_reads_every_page_but_gets_403_on_every_op_action() {
    let ui = Ui::new().await;
    let vera = ui.login("vera").await;
    for (method, path, role) in weir_ui::route_list() {
        if path == "/logout" || role == Role::Public {
            continue;
        }
        let page = if method == Method::GET {
            ui.get(&concrete(path), Some(&vera)).await
        } else {
            ui.post(
                &concrete(path),
                Some(&vera),
                Some(&vera.csrf),
                &[("paused", "true")],
            )
            .await
        };
        if role >= Role::Op {
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{method} {path}");
            assert!(
                page.body
                    .contains(&format!("needs the {} role", role.as_str())),
                "{}",
                page.body
            );
        } else {
            // Pages of a run that does not exist are 404s, not refusals.
            assert!(
                page.status == StatusCode::OK || page.status == StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                page.status
            );
        }
    }
    let row = ui.state.store().dag_row("daily").await.unwrap().unwrap();
    assert!(!row.is_paused);
}

#[tokio::test]
async fn login_sets_an_http_only_same_site_cookie_that_is_secure_behind_https() {
    let ui = Ui::new().await;
    let ada = [("username", "ada"), ("password", "correct horse")];
    let plain = ui.post_login(&ada, &[]).await;
    assert_eq!(plain.status, StatusCode::SEE_OTHER, "{}", plain.body);
    let cookie = plain.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("weir_session=ey"), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");

    let proxied = ui.post_login(&ada, &[("x-forwarded-proto", "https")]).await;
    let cookie = proxied.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");

    let https = Ui::with_config(|c| c.base_url = Some("https://weir.example.com".into())).await;
    let page = https.post_login(&ada, &[]).await;
    let cookie = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn a_login_form_posted_without_its_own_csrf_token_is_refused() {
    let ui = Ui::new().await;
    // A form on another site: no login cookie (it is SameSite=Strict), a made-up token.
    let forged = ui
        .post(
            "/login",
            None,
            None,
            &[
                ("username", "ada"),
                ("password", "correct horse"),
                ("login_token", &"a".repeat(64)),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.headers.get(header::SET_COOKIE).is_none());
    assert!(forged.body.contains("CSRF"), "{}", forged.body);
    // The token of another login page does not fit this browser's cookie.
    let req = axum::http::Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("weir_login={}", "b".repeat(64)))
        .body(axum::body::Body::from(format!(
            "username=ada&password=correct+horse&login_token={}",
            "a".repeat(64)
        )))
        .unwrap();
    let mismatched = ui.send(req).await;
    assert_eq!(mismatched.status, StatusCode::FORBIDDEN);
    assert!(mismatched.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_with_an_error_and_no_cookie() {
    let ui = Ui::new().await;
    let page = ui
        .post_login(&[("username", "ada"), ("password", "wrong <b>")], &[])
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.headers.get(header::SET_COOKIE).is_none());
    assert!(
        page.body.contains("Invalid username or password"),
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"ada\""), "{}", page.body);
}

#[tokio::test]
async fn login_returns_to_a_local_next_path_only() {
    let ui = Ui::new().await;
    for (next, expected) in [
        ("/dags/daily/grid", "/dags/daily/grid"),
        ("//evil.example.com/", "/"),
        ("https://evil.example.com/", "/"),
        ("/\\evil.example.com", "/"),
        ("", "/"),
    ] {
        let page = ui
            .post_login(
                &[
                    ("username", "ada"),
                    ("password", "correct horse"),
                    ("next", next),
                ],
                &[],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(page.location(), expected, "next={next}");
    }
}

#[tokio::test]
async fn logout_revokes_the_session_and_clears_the_cookie() {
    let ui = Ui::new().await;
    let ada = ui.login("ada").await;
    let page = ui.post("/logout", Some(&ada), Some(&ada.csrf), &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login");
    let cleared = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("weir_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // The old cookie no longer opens a page.
    let again = ui.get("/", Some(&ada)).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(again.location().starts_with("/login"));
}

#[tokio::test]
async fn an_htmx_request_without_a_session_is_told_to_go_to_the_login_page() {
    let ui = Ui::new().await;
    let req = axum::http::Request::get("/dags/daily/grid/cells")
        .header("hx-request", "true")
        .header(
            "hx-current-url",
            "http://localhost:8080/dags/daily/grid?runs=5",
        )
        .body(axum::body::Body::empty())
        .unwrap();
    let page = ui.send(req).await;
    assert_eq!(page.status, StatusCode::OK);
    // Back to the page the fragment is on after logging in, not to the fragment.
    assert_eq!(
        page.headers["hx-redirect"],
        "/login?next=%2Fdags%2Fdaily%2Fgrid%3Fruns%3D5"
    );
}

#[tokio::test]
async fn static_files_are_public_and_cached_and_no_page_can_be_framed() {
    let ui = Ui::new().await;
    let page = ui.get("/static/htmx.min.js", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.starts_with("var htmx="), "{}", &page.body[..40]);
    assert!(
        page.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    assert_eq!(
        ui.get("/static/nope.js", None).await.status,
        StatusCode::NOT_FOUND
    );
    // No UI page can be framed by another site.
    let ada = ui.login("ada").await;
    for (path, login) in [
        ("/login", None),
        ("/", Some(&ada)),
        ("/dags/nope/grid", Some(&ada)),
    ] {
        let page = ui.get(path, login).await;
        assert_eq!(page.headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(page.headers["x-content-type-options"], "nosniff", "{path}");
    }
}

/// A path percent-encoded as one query value.
fn weir_ui_seg(path: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(path, SET).to_string()
}
