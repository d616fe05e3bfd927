//! `database.require_verified_tls`: a URL that does not ask for
//! `sslmode=verify-full` with a root certificate is refused before any
//! connection is made, and with verify-full a server whose certificate that
//! root did not sign is refused by the TLS handshake.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use medsec_platform::Settings;
use medsec_platform::config::DatabaseSettings;
use medsec_platform::testing::DEFAULT_POSTGRES_URL;
use medsec_platform::testing::tls::TestCa;
use sea_orm::{ConnectionTrait, Database, Statement};

fn admin_url() -> String {
    std::env::var("MEDSEC_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// `url` with `params` added to its query (sqlx takes the last of a
/// repeated parameter, so these win).
fn with_params(url: &str, params: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{params}")
}

fn database(url: String) -> DatabaseSettings {
    let mut settings = Settings::defaults().unwrap().database;
    settings.url = url.into();
    settings.require_verified_tls = true;
    settings.connect_timeout_secs = 5;
    settings.acquire_timeout_secs = 5;
    settings
}

#[tokio::test]
async fn a_url_without_verify_full_is_refused_before_connecting() {
    for url in [
        admin_url(),
        with_params(&admin_url(), "sslmode=require"),
        with_params(&admin_url(), "sslmode=verify-full"),
    ] {
        let error = medsec_platform::db::connect(&database(url))
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("require_verified_tls"), "{error}");
        assert!(!error.contains("postgres://"), "the URL stays out: {error}");
    }
}

#[tokio::test]
async fn verify_full_refuses_a_server_certificate_another_root_did_not_sign() {
    let admin = Database::connect(&admin_url())
        .await
        .expect("PostgreSQL is needed for this test (MEDSEC_TEST_DATABASE_URL)");
    let ssl = admin
        .query_one_raw(Statement::from_string(
            admin.get_database_backend(),
            "SHOW ssl",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "ssl")
        .unwrap();
    admin.close().await.ok();

    let foreign = TestCa::new("not the database's CA");
    let url = with_params(
        &admin_url(),
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            foreign.cert_file.display()
        ),
    );
    let settings = database(url);
    settings.check_tls().expect("the URL asks for verify-full");
    let error = medsec_platform::db::connect(&settings)
        .await
        .expect_err("a server certificate the root did not sign")
        .to_string();

    if ssl == "on" {
        // The server speaks TLS (encryption without verification connects),
        // so it is the verification that refused it.
        let mut unverified = database(with_params(&admin_url(), "sslmode=require"));
        unverified.require_verified_tls = false;
        let db = medsec_platform::db::connect(&unverified)
            .await
            .expect("sslmode=require connects to a TLS server");
        let encrypted = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<bool>("", "ssl")
            .unwrap();
        assert!(encrypted, "the unverified connection is TLS");
        db.close().await.ok();
        assert!(
            error.contains("UnknownIssuer") || error.to_lowercase().contains("certificate"),
            "refused by certificate verification: {error}"
        );
    } else {
        // A server without TLS is refused too, for that reason: this run
        // shows the refusal, not the certificate check.
        eprintln!("PostgreSQL has ssl = {ssl}: verify-full is refused for want of TLS");
        assert!(
            error.to_lowercase().contains("tls") || error.to_lowercase().contains("ssl"),
            "{error}"
        );
    }
}
