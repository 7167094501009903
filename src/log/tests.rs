//! Tests of `log`.

use super::*;

/// Logs `msg` through the `log` facade with `sink` current.
fn say(sink: &Arc<Sink>, level: Level, msg: &str) {
    let _current = sink.enter();
    log::log!(level.into(), "{msg}");
}

fn notice(sink: &Arc<Sink>, msg: &str) {
    let _current = sink.enter();
    log::warn!(target: NOTICE, "{msg}");
}

#[test]
fn each_thread_writes_to_the_sink_it_entered() {
    let dir = crate::files::tests::scratch("log-two");
    let a = Arc::new(Sink::to_file(&dir.join("a.log"), Level::Debug));
    let b = Arc::new(Sink::to_file(&dir.join("b.log"), Level::Info));
    // Broker's thread calls one output, then the other, and nests
    say(&a, Level::Info, "a broker");
    say(&b, Level::Info, "b broker");
    {
        let _a = a.enter();
        log::info!("a outer");
        {
            let _b = b.enter();
            log::info!("b inner");
            log::debug!("b debug, below b's level");
        }
        log::debug!("a outer again");
    }
    // no sink current: nowhere; another crate's record: not written
    log::error!("nobody's");
    {
        let _a = a.enter();
        log::error!(target: "ureq::pool", "foreign");
    }
    // each output's own threads, while Broker's thread logs for both
    let threads: Vec<_> = [(&a, "a"), (&b, "b")]
        .into_iter()
        .map(|(sink, name)| {
            let sink = Arc::clone(sink);
            std::thread::spawn(move || {
                let _current = sink.enter();
                for i in 0..200 {
                    log::warn!("{name} lane {i}");
                }
            })
        })
        .collect();
    for i in 0..200 {
        say(&a, Level::Info, &format!("a broker {i}"));
        say(&b, Level::Info, &format!("b broker {i}"));
    }
    for t in threads {
        t.join().unwrap();
    }
    for (name, lines) in [("a", 403), ("b", 402)] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap();
        assert_eq!(text.lines().count(), lines, "{name}: {text}");
        for line in text.lines() {
            let msg = line.split_once("] ").unwrap().1;
            assert!(msg.starts_with(&format!("{name} ")), "{name}.log: {line}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn levels_filter_lines() {
    let l = Arc::new(Sink::in_memory(Level::Info));
    say(&l, Level::Debug, "hidden");
    say(&l, Level::Info, "shown");
    say(&l, Level::Error, "multi\nline");
    let lines = l.lines();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].ends_with("[INFO] shown"), "{}", lines[0]);
    assert!(lines[1].ends_with("[ERROR] multi\\nline"), "{}", lines[1]);
}

#[test]
fn control_characters_are_escaped_so_no_line_is_forged() {
    let dir = crate::files::tests::scratch("log-ctl");
    let path = dir.join("a.log");
    let l = Arc::new(Sink::to_file(&path, Level::Debug));
    say(
        &l,
        Level::Info,
        "delivered srv\u{1b}[31m: out\r\n2026-01-01T00:00:00Z [ERROR] forged\0\tend\u{7f}\u{85}\u{9b}é",
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(
        !text.trim_end_matches('\n').chars().any(char::is_control),
        "{text:?}"
    );
    assert!(
        text.ends_with(
            "[INFO] delivered srv\\x1b[31m: out\\r\\n2026-01-01T00:00:00Z [ERROR] forged\\0\\tend\\x7f\\x85\\x9bé\n"
        ),
        "{text:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_log_is_private_and_never_written_through_a_link() {
    use std::os::unix::fs::MetadataExt;
    let dir = crate::files::tests::scratch("log-link");
    let path = dir.join("a.log");
    say(
        &Arc::new(Sink::to_file(&path, Level::Info)),
        Level::Info,
        "one",
    );
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
    assert!(check_path(&path).is_ok());

    let victim = crate::files::tests::victim(&dir);
    let planted = dir.join("planted.log");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let e = check_path(&planted).unwrap_err();
    assert!(e.contains("is a symbolic link"), "{e}");
    // a link planted after init (the log is reopened after a rotation) is not followed
    let l = Arc::new(Sink::to_file(&planted, Level::Info));
    say(&l, Level::Error, "clobber");
    crate::files::tests::assert_untouched(&victim);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn centreon_format_is_broker_log_s() {
    let l = Arc::new(Sink::in_memory(Level::Debug).formatted(LogFormat::Centreon));
    say(&l, Level::Error, "e\nx");
    say(&l, Level::Warning, "w");
    notice(&l, "n");
    say(&l, Level::Info, "i");
    say(&l, Level::Debug, "d");
    let lines = l.lines();
    // `Thu Nov 14 22:13:20 2023: INFO: i`
    let date = |line: &str| -> String { line.split(": ").next().unwrap().to_string() };
    for (line, end) in lines.iter().zip([
        ": ERROR: e\\nx",
        ": WARNING: w",
        ": INFO: n",
        ": INFO: i",
        ": INFO: d",
    ]) {
        assert!(line.ends_with(end), "{line}");
        let d = date(line);
        let words: Vec<&str> = d.split_whitespace().collect();
        assert_eq!(words.len(), 5, "{d:?}");
        assert!(d.len() == 24, "{d:?}");
        assert!(
            words[4].parse::<u32>().is_ok() && words[3].len() == 8,
            "{d:?}"
        );
    }
    let native = Arc::new(Sink::in_memory(Level::Debug).formatted(LogFormat::Native));
    say(&native, Level::Warning, "w");
    assert!(native.lines()[0].ends_with("Z [WARNING] w"));
    assert_eq!(LogFormat::parse(" Centreon "), Some(LogFormat::Centreon));
    assert_eq!(LogFormat::parse("native"), Some(LogFormat::Native));
    assert_eq!(LogFormat::parse("syslog"), None);
}

#[test]
fn notices_are_written_from_level_1() {
    let quiet = Arc::new(Sink::in_memory(Level::Error));
    notice(&quiet, "hidden");
    assert!(quiet.lines().is_empty());
    let l = Arc::new(Sink::in_memory(Level::Warning));
    notice(&l, "curl -X POST");
    let lines = l.lines();
    assert!(lines[0].ends_with("[NOTICE] curl -X POST"), "{lines:?}");
}

#[test]
fn file_is_reopened_after_rename() {
    let dir = crate::files::tests::scratch("log");
    let path = dir.join("a.log");
    let l = Arc::new(Sink::to_file(&path, Level::Debug));
    say(&l, Level::Info, "one");
    std::fs::rename(&path, dir.join("a.log.1")).unwrap();
    {
        let mut s = l.file.lock().unwrap();
        s.checked = Instant::now() - REOPEN_CHECK;
    }
    say(&l, Level::Info, "two");
    let old = std::fs::read_to_string(dir.join("a.log.1")).unwrap();
    let new = std::fs::read_to_string(&path).unwrap();
    assert!(old.contains("one") && !old.contains("two"));
    assert!(new.contains("two"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_file_is_written_from_its_new_end() {
    // logrotate's copytruncate: the file is emptied in place
    let dir = crate::files::tests::scratch("log-trunc");
    let path = dir.join("a.log");
    let l = Arc::new(Sink::to_file(&path, Level::Debug));
    say(&l, Level::Info, &"x".repeat(1000));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    say(&l, Level::Info, "after");
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.contains(&0),
        "no hole of NUL bytes before the new line"
    );
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .ends_with("[INFO] after\n")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
