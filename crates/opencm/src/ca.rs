//! Opening the CA at start: its certificate and sealed key from the database, the key-encryption
//! key (KEK) from `OPENCM_CA_KEK` or the KEK file. On first start the CA and (if absent) the KEK
//! file are created; when the database already has a CA, a missing KEK is an error, never a
//! reason to make a new CA.

use crate::config::Config;
use anyhow::{bail, Context};
use opencm_app::ports::{CaStore, StoredCa};
use opencm_ca::{EmbeddedCa, Kek, Secret};
use opencm_domain::Timestamp;

pub fn load_kek(cfg: &Config, create: bool) -> anyhow::Result<Kek> {
    if let Ok(v) = std::env::var("OPENCM_CA_KEK") {
        return Kek::from_base64(&v).context("OPENCM_CA_KEK");
    }
    let path = &cfg.ca_kek_file;
    match std::fs::read_to_string(path) {
        Ok(text) => Kek::from_base64(&text).with_context(|| format!("the KEK file {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let kek = Kek::generate();
            write_private(path, &kek.to_base64()).with_context(|| format!("creating the KEK file {}", path.display()))?;
            tracing::info!(file = %path.display(), "created the CA key-encryption key file (keep it, and back it up apart from the database)");
            Ok(kek)
        }
        Err(e) => bail!(
            "the CA's key-encryption key is needed to open the CA key, but {} cannot be read ({e}); set OPENCM_CA_KEK or ca_kek_file",
            path.display()
        ),
    }
}

/// Checks the KEK the configuration names, where one exists already (`OPENCM_CA_KEK`, or the KEK
/// file), without creating anything: a bad one is refused before a database is made.
pub fn check_kek(cfg: &Config) -> anyhow::Result<()> {
    if std::env::var_os("OPENCM_CA_KEK").is_some() || cfg.ca_kek_file.exists() {
        load_kek(cfg, false)?;
        return Ok(());
    }
    // A KEK to be made needs a directory to go in (the data directory, made just before, counts).
    let dir = cfg
        .ca_kek_file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() && cfg.data_dir.as_deref() != Some(dir) {
        bail!(
            "the CA's key-encryption key file {} can be neither read nor made: its directory {} does not exist (set OPENCM_CA_KEK, or ca_kek_file to a file in an existing directory)",
            cfg.ca_kek_file.display(),
            dir.display()
        );
    }
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(text.as_bytes())
}

/// The CA stored in the database, or a new one stored there first; with the KEK that seals it.
pub async fn open_ca(
    store: &dyn CaStore,
    cfg: &Config,
    now: Timestamp,
) -> anyhow::Result<(EmbeddedCa, Kek)> {
    if let Some(stored) = store.ca().await? {
        let kek = load_kek(cfg, false)?;
        return Ok((load(&stored, &kek)?, kek));
    }
    let kek = load_kek(cfg, true)?;
    let algorithm = cfg.ca_key_algorithm;
    let (_, material) = EmbeddedCa::generate_with(
        "opencm Issuing CA",
        now.to_offset_date_time(),
        10,
        algorithm,
    )?;
    let mine = StoredCa {
        cert_pem: material.cert_pem,
        chain_pem: material.chain_pem,
        sealed_key: kek.seal(&material.key_pkcs8),
    };
    // Another node may have created the CA at the same moment: use whichever was stored.
    let stored = store.init_ca(&mine, now).await?;
    if stored == mine {
        tracing::info!(algorithm = %cfg.ca_key_algorithm, "created the embedded CA");
    }
    Ok((load(&stored, &kek)?, kek))
}

fn load(stored: &StoredCa, kek: &Kek) -> anyhow::Result<EmbeddedCa> {
    // A CA whose key is on a token stores the key's PKCS#11 URI where a sealed key would be.
    if stored.sealed_key.starts_with("pkcs11:") {
        let uri = opencm_ca::hsm::Pkcs11Uri::parse(&stored.sealed_key)?;
        let key = opencm_ca::hsm::HsmKey::open(&uri)
            .with_context(|| format!("opening the CA key on token '{}'", uri.token))?;
        tracing::info!(token = %uri.token, object = %uri.object, module = %uri.module, "the CA key is on an HSM");
        return Ok(EmbeddedCa::load_with(
            &stored.cert_pem,
            &stored.chain_pem,
            opencm_ca::CaKey::Hsm(key),
        )?);
    }
    let key = kek.open(&stored.sealed_key).context("opening the CA key")?;
    Ok(EmbeddedCa::load(&stored.cert_pem, &stored.chain_pem, &key)?)
}

/// `opencm ca init --pkcs11 URI`: a new CA whose key is made (or found, by its label) on the
/// token the URI names; the database keeps the certificate and the URI, never a key or a PIN.
pub async fn init_on_token(
    store: &dyn CaStore,
    cfg: &Config,
    uri: &str,
    now: Timestamp,
) -> anyhow::Result<EmbeddedCa> {
    if let Some(current) = store.ca().await? {
        if current.sealed_key.starts_with("pkcs11:") {
            // Already made on a token: the same as `ca init` without --pkcs11, which prints it.
            let kek = load_kek(cfg, false)?;
            return load(&current, &kek);
        }
        bail!("opencm already has a CA whose key is sealed under the KEK; a CA on a token is made in a new database");
    }
    let uri = opencm_ca::hsm::Pkcs11Uri::parse(uri)?;
    // The KEK still seals what is not the CA key (card master keys, archived keys).
    load_kek(cfg, true)?;
    let key = opencm_ca::hsm::HsmKey::open_or_generate(&uri)
        .with_context(|| format!("the key '{}' on token '{}'", uri.object, uri.token))?;
    let (ca, cert_pem) =
        EmbeddedCa::generate_on_token("opencm Issuing CA", now.to_offset_date_time(), 10, key)?;
    let mine = StoredCa {
        cert_pem,
        chain_pem: String::new(),
        sealed_key: uri.stored(),
    };
    let stored = store.init_ca(&mine, now).await?;
    if stored != mine {
        bail!(
            "another process created a CA in this database at the same moment; nothing was changed"
        );
    }
    tracing::info!(token = %uri.token, object = %uri.object, "created the CA with its key on the token");
    Ok(ca)
}

/// `opencm ca import`: make opencm a subordinate of an enterprise CA.
pub async fn import(
    store: &dyn CaStore,
    cfg: &Config,
    cert_pem: &str,
    key_pem: &str,
    chain_pem: &str,
    now: Timestamp,
    replace: bool,
) -> anyhow::Result<()> {
    if let (Some(current), false) = (store.ca().await?, replace) {
        let name = opencm_ca::pem_decode(&current.cert_pem)
            .first()
            .and_then(|c| opencm_ca::subject_common_name(c))
            .unwrap_or_default();
        bail!(
            "opencm already has a CA ('{name}'). Certificates it issued would no longer chain to the \
             published CA and would be left off the new CRL; to replace it all the same, run again with --replace"
        );
    }
    if key_pem.contains("BEGIN EC PRIVATE KEY")
        || key_pem.contains("BEGIN RSA PRIVATE KEY")
        || key_pem.contains("ENCRYPTED")
    {
        bail!("the key must be an unencrypted PKCS#8 PEM (BEGIN PRIVATE KEY); convert it with: openssl pkcs8 -topk8 -nocrypt -in KEY -out key.pem");
    }
    let key = opencm_ca::pem_decode(key_pem)
        .into_iter()
        .next()
        .context("no PEM private key found")?;
    let mut blocks = opencm_ca::pem_decode(cert_pem).into_iter();
    let cert = blocks.next().context("no PEM certificate found")?;
    let mut chain: String = blocks.map(|b| opencm_ca::pem("CERTIFICATE", &b)).collect();
    chain.push_str(chain_pem);
    let cert_pem = opencm_ca::pem("CERTIFICATE", &cert);
    opencm_ca::check_ca_certificate(&cert_pem, now.to_offset_date_time())?;
    let secret = Secret(key);
    EmbeddedCa::load(&cert_pem, &chain, &secret)
        .context("the certificate and key do not form a usable CA")?;
    let kek = load_kek(cfg, true)?;
    store
        .replace_ca(
            &StoredCa {
                cert_pem,
                chain_pem: chain,
                sealed_key: kek.seal(&secret),
            },
            now,
        )
        .await?;
    Ok(())
}
