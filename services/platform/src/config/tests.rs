use super::*;

#[test]
fn defaults_parse_and_are_local() {
    let settings = Settings::defaults().unwrap();
    assert_eq!(settings.server.listen.to_string(), "127.0.0.1:50051");
    assert!(settings.database.url().starts_with("sqlite://"));
    assert_eq!(settings.telemetry.log_format, LogFormat::Text);
    assert!(settings.telemetry.otlp_endpoint.is_none());
    assert!(settings.auth.issuer.is_none());
    assert_eq!(settings.auth.algorithm, TokenAlgorithm::RS256);
    assert!(settings.database.runtime_role.is_none());
    assert_eq!(
        settings.database.for_migrations().url(),
        settings.database.url()
    );
}

#[test]
fn migrations_connect_as_the_owner_when_one_is_named() {
    figment::Jail::expect_with(|jail| {
        jail.set_env(
            "MEDSEC__DATABASE__URL",
            "postgres://medsec_app@db.internal/medsec",
        );
        jail.set_env(
            "MEDSEC__DATABASE__MIGRATION_URL",
            "postgres://medsec_owner@db.internal/medsec",
        );
        jail.set_env("MEDSEC__DATABASE__RUNTIME_ROLE", "medsec_app");
        let settings = Settings::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
        let database = &settings.database;
        assert_eq!(database.url(), "postgres://medsec_app@db.internal/medsec");
        assert_eq!(
            database.for_migrations().url(),
            "postgres://medsec_owner@db.internal/medsec"
        );
        assert_eq!(database.runtime_role.as_deref(), Some("medsec_app"));
        Ok(())
    });
}

#[test]
fn a_named_file_that_is_not_there_is_an_error() {
    figment::Jail::expect_with(|_jail| {
        let error = Settings::load(Some(Path::new("nowhere.toml")), &Overrides::default())
            .err()
            .ok_or("a missing file was taken")?;
        assert!(matches!(error, ConfigError::Missing(_)), "{error}");
        assert!(error.to_string().contains("nowhere.toml"), "{error}");
        Ok(())
    });
}

#[test]
fn a_key_that_names_no_setting_is_an_error_naming_it() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("medsec.toml", "[server]\nrequest_timeout = 5\n")?;
        let error = Settings::load(None, &Overrides::default())
            .err()
            .ok_or("an unknown key was taken")?
            .to_string();
        assert!(error.contains("request_timeout"), "{error}");
        assert!(error.contains("server"), "{error}");
        jail.create_file("medsec.toml", "")?;
        jail.set_env("MEDSEC__EVENTS__NATS", "nats://x");
        let error = Settings::load(None, &Overrides::default())
            .err()
            .ok_or("an unknown variable was taken")?
            .to_string();
        assert!(error.contains("nats"), "{error}");
        Ok(())
    });
}

#[test]
fn no_parent_folder_is_searched() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("medsec.toml", "[server]\nrequest_timeout_secs = 5\n")?;
        let child = jail.directory().join("child");
        std::fs::create_dir(&child).map_err(|e| e.to_string())?;
        jail.change_dir(&child)?;
        let settings = Settings::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
        assert_eq!(
            settings.server.request_timeout_secs, 30,
            "the parent's file was read"
        );
        Ok(())
    });
}

#[test]
fn layers_apply_in_order() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "custom.toml",
            "[server]\nlisten = \"127.0.0.1:6000\"\n[telemetry]\nlog_format = \"json\"\n",
        )?;
        jail.set_env("MEDSEC__SERVER__LISTEN", "127.0.0.1:7000");
        jail.set_env("MEDSEC__DATABASE__MAX_CONNECTIONS", "3");

        let from_env = Settings::load(Some(Path::new("custom.toml")), &Overrides::default())
            .map_err(|e| e.to_string())?;
        assert_eq!(from_env.server.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(from_env.telemetry.log_format, LogFormat::Json);
        assert_eq!(from_env.database.max_connections, 3);

        let overrides = Overrides {
            listen: Some("127.0.0.1:8000".parse().map_err(|_| "addr")?),
            database_url: Some("postgres://localhost/x".into()),
        };
        let from_flags = Settings::load(Some(Path::new("custom.toml")), &overrides)
            .map_err(|e| e.to_string())?;
        assert_eq!(from_flags.server.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(from_flags.database.url(), "postgres://localhost/x");
        Ok(())
    });
}

#[test]
fn no_tls_settings_means_plaintext() {
    let settings = Settings::defaults().unwrap();
    assert!(settings.server.tls.is_none());
    assert!(!settings.database.require_verified_tls);
    assert!(settings.telemetry.otlp_ca_file.is_none());
}

#[test]
fn server_tls_comes_from_a_table_or_the_environment() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "tls.toml",
            "[server.tls]\ncert_file = \"/etc/medsec/server.crt\"\n\
             key_file = \"/etc/medsec/server.key\"\n",
        )?;
        let from_file = Settings::load(Some(Path::new("tls.toml")), &Overrides::default())
            .map_err(|e| e.to_string())?;
        let tls = from_file.server.tls.ok_or("no tls")?;
        assert_eq!(tls.cert_file, Path::new("/etc/medsec/server.crt"));
        assert_eq!(tls.client_ca_file, None);
        assert_eq!(tls.client_auth, ClientAuth::Optional);
        assert_eq!(tls.handshake_timeout(), std::time::Duration::from_secs(10));

        jail.set_env(
            "MEDSEC__SERVER__TLS__CLIENT_CA_FILE",
            "/etc/medsec/services-ca.crt",
        );
        jail.set_env("MEDSEC__SERVER__TLS__CLIENT_AUTH", "required");
        let from_env = Settings::load(Some(Path::new("tls.toml")), &Overrides::default())
            .map_err(|e| e.to_string())?;
        let tls = from_env.server.tls.ok_or("no tls")?;
        assert_eq!(
            tls.client_ca_file.as_deref(),
            Some(Path::new("/etc/medsec/services-ca.crt"))
        );
        assert_eq!(tls.client_auth, ClientAuth::Required);
        Ok(())
    });
}

#[test]
fn server_tls_needs_a_certificate_and_key() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("MEDSEC__SERVER__TLS__CLIENT_AUTH", "required");
        let err = Settings::load(None, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("cert_file"), "{err}");
        Ok(())
    });
}

fn database(url: &str, require_verified_tls: bool) -> DatabaseSettings {
    let mut settings = Settings::defaults().unwrap().database;
    settings.url = url.to_owned().into();
    settings.require_verified_tls = require_verified_tls;
    settings
}

#[test]
fn verified_database_tls_needs_verify_full_and_a_root() {
    let verified =
        "postgres://medsec@db.internal/medsec?sslmode=verify-full&sslrootcert=/etc/ca.pem";
    assert_eq!(database(verified, true).check_tls(), Ok(()));
    assert_eq!(
        database(
            "postgresql://db.internal/medsec?ssl-mode=verify-full&ssl-ca=/etc/ca.pem",
            true
        )
        .check_tls(),
        Ok(())
    );
    for (url, refused) in [
        (
            "postgres://medsec@db.internal/medsec",
            TlsRequirementError::NotVerifyFull,
        ),
        (
            "postgres://db.internal/medsec?sslmode=require&sslrootcert=/etc/ca.pem",
            TlsRequirementError::NotVerifyFull,
        ),
        (
            "postgres://db.internal/medsec?sslmode=verify-ca&sslrootcert=/etc/ca.pem",
            TlsRequirementError::NotVerifyFull,
        ),
        (
            // sqlx takes the last sslmode given.
            "postgres://db.internal/medsec?sslmode=verify-full&sslrootcert=/etc/ca.pem&sslmode=disable",
            TlsRequirementError::NotVerifyFull,
        ),
        (
            "postgres://db.internal/medsec?sslmode=verify-full",
            TlsRequirementError::NoRootCert,
        ),
        (
            "sqlite://data/medsec.db?mode=rwc",
            TlsRequirementError::NotPostgres,
        ),
    ] {
        assert_eq!(database(url, true).check_tls(), Err(refused), "{url}");
        assert_eq!(database(url, false).check_tls(), Ok(()), "{url}");
    }
}

#[test]
fn a_bad_value_is_reported() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("MEDSEC__SERVER__LISTEN", "not an address");
        let err = Settings::load(None, &Overrides::default()).unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("server.listen"),
            "{err}"
        );
        Ok(())
    });
}
