use super::*;
use crate::certificate::CertificateProblem;
use crate::limits::TextError;
use crate::smartcard::SmartcardProblem;

const HEAD: &str = "uuid = '2b7044cf-aa96-4911-b886-177947e9271b'\nname = 'T'\n\
                    security_descriptor = 'D:(A;;RC;;;AU)'\n";

/// One `[[template]]` of `kind` with `extra` lines after its head, as an import file.
fn file(kind: &str, extra: &str) -> String {
    format!("[[template]]\n{HEAD}kind = '{kind}'\n{extra}")
}

/// The template a file's first table builds, or why not (the file's parse error as text).
fn build(text: &str) -> Result<ProfileTemplate, Result<TemplateProblem, String>> {
    let file: TemplateFile = toml::from_str(text).map_err(|e| Err(e.to_string()))?;
    let doc = file.template.into_iter().next().expect("one template");
    ProfileTemplate::try_from(doc).map_err(|e| Ok(e.problem))
}

fn certificate(extra: &str) -> Result<ProfileTemplate, Result<TemplateProblem, String>> {
    build(&file(
        "software",
        &format!("[[template.certificates]]\ncommon_name = 'c'\n{extra}"),
    ))
}

fn cert_problem(p: CertificateProblem) -> Result<TemplateProblem, String> {
    Ok(TemplateProblem::Certificate {
        certificate: "c".into(),
        problem: p,
    })
}

#[test]
fn certificate_templates_that_cannot_be_issued_are_refused() {
    use CertificateProblem::*;
    assert!(certificate("").is_ok());
    let cases = [
        ("key_algorithm = 'RSA'\nkey_size = 1024", RsaTooShort),
        (
            "key_algorithm = 'ECDSA_P256'\nkey_size = 384",
            KeySizeOfCurve,
        ),
        ("key_protection_level = 4", KeyProtectionLevel),
        (
            "key_algorithm = 'RSA'\nserver_generated = true",
            ServerGeneratedRsa,
        ),
        ("validity_days = 0", NoValidity),
        ("key_usages = []", NoKeyUsages),
        (
            "extended_key_usages = ['client_auth', '1.3.6.1.5.5.7.3.2']",
            EkuTwice,
        ),
    ];
    for (extra, problem) in cases {
        assert_eq!(
            certificate(extra).unwrap_err(),
            cert_problem(problem),
            "{extra}"
        );
    }
    assert_eq!(
        build(&file(
            "software",
            "[[template.certificates]]\ncommon_name = ' '"
        ))
        .unwrap_err(),
        Ok(TemplateProblem::Certificate {
            certificate: " ".into(),
            problem: NoCommonName
        })
    );
    assert_eq!(
        certificate("[[template.certificates]]\ncommon_name = 'C'").unwrap_err(),
        Ok(TemplateProblem::CertificateTwice("C".into())),
        "common names are unique in any case"
    );
    for (extra, says) in [
        (
            "extended_key_usages = ['client_auth', 'teleportation']",
            "unknown extended key usage 'teleportation'",
        ),
        ("key_algorithm = 'DSA'", "DSA"),
        ("colour = 'blue'", "colour"),
    ] {
        let err = certificate(extra).unwrap_err().unwrap_err();
        assert!(err.contains(says), "{extra}: {err}");
    }
}

#[test]
fn a_templates_ekus_are_oids_once_built() {
    let t =
        certificate("extended_key_usages = ['client_auth', 'SMARTCARD_LOGON', '1.2.3.4']").unwrap();
    let oids: Vec<&str> = t.certificates[0]
        .extended_key_usages
        .iter()
        .map(|e| e.oid())
        .collect();
    assert_eq!(
        oids,
        ["1.3.6.1.5.5.7.3.2", "1.3.6.1.4.1.311.20.2.2", "1.2.3.4"]
    );
}

#[test]
fn the_kind_carries_the_card_configuration() {
    let software = build(&file("software", "")).unwrap();
    assert_eq!(software.kind, TemplateKind::Software);
    assert!(software.smartcard_config().is_none());

    let card = build(&file("smartcard", "")).unwrap();
    assert_eq!(
        card.kind,
        TemplateKind::Smartcard(SmartcardConfig::default())
    );

    let tpm = build(&file("virtual_smartcard", "")).unwrap();
    let config = tpm
        .smartcard_config()
        .expect("a virtual card template has a configuration");
    assert!(config.use_virtual_smartcards && tpm.kind.is_virtual());

    let given = build(&file(
        "smartcard",
        "[template.smartcard]\nadmin_key_algorithm = 'aes128'\ndefault_admin_key_hex = '000102030405060708090a0b0c0d0e0f'",
    ))
    .unwrap();
    let config = given.smartcard_config().unwrap();
    assert_eq!(config.default_admin_key(), (0u8..16).collect::<Vec<_>>());
    assert_eq!(
        config.default_admin_key_hex(),
        "000102030405060708090A0B0C0D0E0F"
    );
}

#[test]
fn card_configurations_are_checked_against_the_kind_and_the_certificates() {
    use SmartcardProblem::*;
    let card = |kind: &str, extra: &str| build(&file(kind, extra)).map(|_| ()).unwrap_err();
    assert_eq!(
        card("software", "[template.smartcard]\nprovider_name = 'x'"),
        Ok(TemplateProblem::SmartcardOnSoftware)
    );
    assert_eq!(
        card(
            "smartcard",
            "[template.smartcard]\ndefault_admin_key_hex = '0011'"
        ),
        Ok(TemplateProblem::Smartcard(AdminKeyLength {
            bytes: 2,
            algorithm: "tdes",
            wanted: 24
        }))
    );
    assert_eq!(
        card(
            "smartcard",
            "[template.smartcard]\nuse_virtual_smartcards = true"
        ),
        Ok(TemplateProblem::Smartcard(VirtualCards(false)))
    );
    // On a virtual smart card template the kind says it: the table need not repeat it.
    let tpm = build(&file(
        "virtual_smartcard",
        "[template.smartcard]\nprovider_name = 'TPM'",
    ))
    .unwrap();
    assert!(tpm.smartcard_config().unwrap().use_virtual_smartcards);
    assert_eq!(
        card(
            "smartcard",
            "[template.smartcard]\npiv_slots = { Logon = '9a' }"
        ),
        Ok(TemplateProblem::Smartcard(SlotForNoCertificate(
            "Logon".into()
        )))
    );
    let err = card(
        "smartcard",
        "[template.smartcard]\ndefault_admin_key_hex = 'zz'",
    )
    .unwrap_err();
    assert!(err.contains("not hexadecimal"), "{err}");
}

#[test]
fn template_texts_are_bounded_and_nul_free() {
    let long = "x".repeat(4_001);
    assert_eq!(
        build(&file("software", &format!("description = '{long}'"))).unwrap_err(),
        Ok(TemplateProblem::Text(TextError::TooLong(
            "the description".into(),
            4_000
        )))
    );
    let nul = format!(
        "[[template]]\n{}",
        HEAD.replace("name = 'T'", "name = \"a\\u0000b\"")
    ) + "kind = 'software'\n";
    assert_eq!(
        build(&nul).unwrap_err(),
        Ok(TemplateProblem::Text(TextError::Nul(
            "the template name".into()
        )))
    );
}

#[test]
fn names_hold_no_control_characters() {
    let bell = format!(
        "[[template]]\n{}kind = 'software'\n",
        HEAD.replace("name = 'T'", "name = \"a\\u0007b\"")
    );
    assert_eq!(
        build(&bell).unwrap_err(),
        Ok(TemplateProblem::ControlCharacters(
            "the template name".into()
        ))
    );
    let rlo = build(&file(
        "software",
        "[[template.certificates]]\ncommon_name = \"x\\u202Ey\"",
    ));
    assert_eq!(
        rlo.unwrap_err(),
        Ok(TemplateProblem::ControlCharacters(
            "a certificate's common name".into()
        )),
        "a bidirectional override reorders what is printed"
    );
    let esc = build(&file(
        "software",
        "[[template.certificates]]\ncommon_name = \"x\\u001B[31m\"",
    ));
    assert_eq!(
        esc.unwrap_err(),
        Ok(TemplateProblem::ControlCharacters(
            "a certificate's common name".into()
        ))
    );
}

#[test]
fn errors_name_the_template_and_the_problem() {
    let doc: TemplateFile = toml::from_str(&file(
        "software",
        "[[template.certificates]]\ncommon_name = 'Logon'\nvalidity_days = 0",
    ))
    .unwrap();
    let err = ProfileTemplate::try_from(doc.template[0].clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template 'T': certificate 'Logon': validity_days must be at least 1"
    );
}

#[test]
fn the_stored_form_reads_back_as_the_same_template() {
    let t = build(&file(
        "smartcard",
        "[[template.certificates]]\ncommon_name = 'Logon'\nextended_key_usages = ['smartcard_logon']\n\
         [template.smartcard]\npiv_slots = { Logon = '9a' }\ndefault_admin_key_hex = '0102030405060708010203040506070801020304050607ff'\n\
         [template.policies.Enroll]\napprovals_needed = 1",
    ))
    .unwrap();
    let json = serde_json::to_string(&t).unwrap();
    let back: ProfileTemplate = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
    let mut broken: serde_json::Value = serde_json::from_str(&json).unwrap();
    broken["kind"] = "software".into();
    let err = serde_json::from_value::<ProfileTemplate>(broken)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a software template has no [template.smartcard]"),
        "{err}"
    );
}
