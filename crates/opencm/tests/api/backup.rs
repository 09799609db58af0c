//! `opencm backup` on a server under write load, restored on a fresh directory: every transition
//! acknowledged before the backup began is in it, and the restored CA issues certificates that
//! openssl verifies against the CA the original server published.

use crate::blackbox::{create_at, kek_file, put, start, start_with};
use crate::helpers::{json_of, opencm_cli, openssl, scratch_dir, SOFTWARE};
use crate::issuance::{csr, leaf_of, Work, P256};
use opencm_store::testing::fresh_sqlite_url;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

async fn ca_pem(http: &reqwest::Client, base: &str) -> String {
    let r = http.get(format!("{base}/pki/ca.pem")).send().await.unwrap();
    r.text().await.unwrap()
}

#[tokio::test]
async fn a_backup_taken_under_write_load_restores_every_acknowledged_request_and_the_ca() {
    let db = fresh_sqlite_url();
    let mut server = start(&db, true).await;
    let alice = server.tokens["alice"].clone();
    let http = reqwest::Client::new();
    let ca_before = ca_pem(&http, &server.base).await;

    // Eight clients create and complete requests until told to stop.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, acked, stop, alice) = (http.clone(), acked.clone(), stop.clone(), alice.clone());
        let base = server.base.clone();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let id = create_at(&http, &base, &alice).await;
                let url = format!("{base}/CertificateManagement/api/v1.0/requests/{id}");
                assert_eq!(put(&http, url, &alice, "Completed").await, Some(200));
                acked.lock().unwrap().push(id);
            }
        }));
    }
    while acked.lock().unwrap().len() < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before: Vec<String> = acked.lock().unwrap().clone();
    let file = scratch_dir("backup").join("backup.db");
    let file_arg = file.to_str().unwrap().to_string();
    let (ok, out, err) = tokio::task::spawn_blocking({
        let db = db.clone();
        move || opencm_cli(&db, &["backup", &file_arg])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("backed up") && out.contains("KEK"), "{out}");
    let during = acked.lock().unwrap().len();
    // The load goes on after the backup, then stops.
    while acked.lock().unwrap().len() < during + 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    server.stop_and_read_log().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the backup is readable by its owner only"
        );
    }

    // Restore: the backup as the database of a fresh directory, with the original KEK.
    let dir = scratch_dir("restore");
    let restored_db = dir.join("opencm.db");
    std::fs::copy(&file, &restored_db).unwrap();
    let restored = format!("sqlite://{}", restored_db.display());
    std::fs::copy(kek_file(&db), kek_file(&restored)).unwrap();
    let server = start_with(&restored, false, &[]).await.unwrap();
    for id in &before {
        let r: Value = json_of(
            http.get(server.api(&format!("/requests/{id}")))
                .bearer_auth(&alice),
        )
        .await;
        assert_eq!(
            r["Status"], 8,
            "{id}, acknowledged before the backup, is in it"
        );
    }
    let ca_after = ca_pem(&http, &server.base).await;
    assert_eq!(ca_after, ca_before, "the same CA");

    // The restored CA signs: a software enrolment, verified against the CA published before.
    let w = Work::new();
    std::fs::write(w.p("ca.pem"), &ca_before).unwrap();
    let r = http
        .post(server.api("/requests"))
        .bearer_auth(&alice)
        .json(&json!({"profiletemplateuuid": SOFTWARE, "type": "Enroll"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let rel: String = r.json().await.unwrap();
    let id = rel.rsplit('/').next().unwrap().to_string();
    let r = http
        .post(server.api(&format!("/requests/{id}/certificatedata")))
        .bearer_auth(&alice)
        .json(&json!({"certificaterequests": [csr(&w, "k", P256)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let leaf = leaf_of(&w, body[0]["Pkcs7"].as_str().unwrap());
    let (ok, out) = openssl(&["verify", "-CAfile", &w.p("ca.pem"), &leaf]);
    assert!(ok && out.contains("OK"), "{out}");
    let (ok, _, err) = opencm_cli(&restored, &["backup", file.to_str().unwrap()]);
    assert!(!ok && err.contains("never overwrites"), "{err}");
}

#[tokio::test]
#[cfg_attr(
    not(opencm_postgres_tests),
    ignore = "PostgreSQL: set OPENCM_TEST_POSTGRES_URL=postgres://127.0.0.1/test to run"
)]
async fn a_backup_of_postgres_is_refused_and_names_pg_dump() {
    use opencm_store::testing::{fresh_postgres_url, postgres_base_url};
    let db = fresh_postgres_url(&postgres_base_url()).await;
    let file = scratch_dir("backup").join("backup.db");
    let (ok, _, err) = opencm_cli(&db, &["backup", file.to_str().unwrap()]);
    assert!(!ok && err.contains("pg_dump"), "{err}");
    assert!(!file.exists(), "no file is left behind");
}
