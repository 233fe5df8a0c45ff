//! The tests of `config`: `.env` files read as users write them (BOM, CRLF,
//! `export`, quotes), the original design's keys and renamed ones, and bad
//! keys, lines and values named with their source.

use super::*;

fn write(content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(".env");
    std::fs::write(&p, content).unwrap();
    (dir, p)
}

/// A renamed key's former name is still read, in `.env` and in the
/// settings file, and a warning names it and the new one.
#[test]
fn a_renamed_keys_former_name_is_read_with_a_warning() {
    let (d, p) = write("ERRSNAP_DRAIN_ON_SIGTERM=1\n");
    let file = d.path().join("errsnap.toml");
    std::fs::write(&file, "[alerts]\nwindow_secs = 120\n").unwrap();
    let c = Config::from_dotenv_path(&p)
        .unwrap()
        .with_file(&file)
        .unwrap();
    assert_eq!(c.get("ERRSNAP_DRAIN_ON_TERMINATION"), Some("1"));
    assert_eq!(c.get("ERRSNAP_ALERT_THRESHOLD_WINDOW_SECS"), Some("120"));
    let w = c.warnings().join("\n");
    assert!(
        w.contains("ERRSNAP_DRAIN_ON_SIGTERM") && w.contains("ERRSNAP_DRAIN_ON_TERMINATION"),
        "{w}"
    );
    assert!(
        w.contains("alerts.window_secs") && w.contains("alerts.threshold_window_secs"),
        "{w}"
    );
}

#[test]
fn a_size_out_of_the_keys_range_is_named_and_one_in_it_read_exactly() {
    let mut c = Config::empty();
    c.set("ERRSNAP_SYMBOL_CACHE_MB", "512KiB").unwrap();
    let e = c.bytes("ERRSNAP_SYMBOL_CACHE_MB").unwrap_err().to_string();
    assert!(
        e.contains("ERRSNAP_SYMBOL_CACHE_MB") && e.contains("1 to"),
        "{e}"
    );
    c.set("ERRSNAP_SYMBOL_CACHE_MB", "2GiB").unwrap();
    assert_eq!(c.bytes("ERRSNAP_SYMBOL_CACHE_MB").unwrap(), Some(2 << 30));
}

#[test]
fn reads_bom_crlf_export_quotes() {
    let (_d, p) = write(
        "\u{feff}# comment\r\nexport ERRSNAP_APP_NAME=\"my app\"\r\nERRSNAP_RELEASE='1.2'\r\nERRSNAP_APP_NAME=second\r\n",
    );
    let mut c = Config::default();
    c.read_dotenv(&p).unwrap();
    assert_eq!(c.get("ERRSNAP_APP_NAME"), Some("second"));
    assert_eq!(c.get("ERRSNAP_RELEASE"), Some("1.2"));
}

#[test]
fn seed_keys_are_read_and_namespaced_keys_win() {
    let (_d, p) = write(
        "webhook=https://hooks.slack.com/services/A\nERRSNAP_SLACK_WEBHOOK_URL=https://hooks.slack.com/services/B\nmail_server=smtp.example.com\npassword=hunter2\n",
    );
    let mut c = Config::default();
    c.read_dotenv(&p).unwrap();
    assert_eq!(
        c.get("ERRSNAP_SLACK_WEBHOOK_URL"),
        Some("https://hooks.slack.com/services/B")
    );
    assert_eq!(c.get("ERRSNAP_SMTP_HOST"), Some("smtp.example.com"));
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("hunter2") && !dbg.contains("services/B"),
        "{dbg}"
    );
}

#[test]
fn unknown_key_is_named_with_a_hint() {
    let (_d, p) = write("ERRSNAP_APP_NAMEE=x\n");
    let mut c = Config::default();
    let err = c.read_dotenv(&p).unwrap_err().to_string();
    assert!(err.contains("ERRSNAP_APP_NAMEE"), "{err}");
    assert!(err.contains("did you mean ERRSNAP_APP_NAME"), "{err}");
    assert!(err.contains(":1"), "{err}");
}

#[test]
fn bad_line_is_named_by_number_not_content() {
    let (_d, p) = write("ERRSNAP_APP_NAME=a\nthis line has hunter2 in it\n");
    let mut c = Config::default();
    let err = c.read_dotenv(&p).unwrap_err().to_string();
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains(":2"), "{err}");
}

#[test]
fn bad_value_names_key_value_and_source() {
    let (_d, p) = write("ERRSNAP_QUEUE_CAPACITY=lots\n");
    let mut c = Config::default();
    c.read_dotenv(&p).unwrap();
    let err = c.count("ERRSNAP_QUEUE_CAPACITY").unwrap_err().to_string();
    assert!(err.contains("ERRSNAP_QUEUE_CAPACITY"), "{err}");
    assert!(err.contains("\"lots\""), "{err}");
    assert!(err.contains(":1"), "{err}");
}
