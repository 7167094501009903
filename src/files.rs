//! Files in a hostile world: small regular files read with a size cap, private files (0640) created without following links.
//!
//! A path from the configuration may name a FIFO (opening it would wait for a writer for
//! ever), a device such as `/dev/zero` (endless), a directory or a huge file; and a file
//! the connector creates may have been replaced by a symbolic link to another file. The
//! functions here refuse the first with a message saying what is expected, and never write
//! through a link.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of every file the connector creates (outbox and its `-wal`/`-shm`, statistics,
/// log): the owner (centreon-broker) reads and writes, its group reads, others nothing. They
/// hold host names and plugin outputs. Set whatever the umask.
pub const PRIVATE_MODE: u32 = 0o640;

/// The largest routing key file read (a key is 32 characters).
pub const KEY_FILE_MAX_BYTES: u64 = 4096;

/// The largest `format_file` read.
pub const TEMPLATE_FILE_MAX_BYTES: u64 = 1 << 20;

/// Why a small file could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// Not a regular file: what it is ("a FIFO", "a directory"...), and the cap.
    NotRegular(&'static str, u64),
    /// Larger than the cap.
    TooLarge(u64),
    NotText,
}

impl ReadError {
    /// The message, about `subject` (the file as the caller shows it, or "it"): "cannot
    /// read SUBJECT: ..." or "SUBJECT is a FIFO, expected a regular file of at most N bytes".
    pub fn about(&self, subject: &str) -> String {
        match self {
            ReadError::Io(e) => format!("cannot read {subject}: {e}"),
            ReadError::NotRegular(what, max) => {
                format!("{subject} is {what}, expected a regular file of at most {max} bytes")
            }
            ReadError::TooLarge(max) => format!(
                "{subject} is larger than {max} bytes, expected a regular file of at most {max} bytes"
            ),
            ReadError::NotText => format!("{subject} is not UTF-8 text"),
        }
    }

    /// True for an error of the file system (missing, permission denied...), as opposed to
    /// a file that is not what is expected.
    pub fn is_io(&self) -> bool {
        matches!(self, ReadError::Io(_))
    }
}

/// What a file that is not regular is, for messages.
fn kind(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads a small text file: the opened file must be a regular file of at most `max` bytes.
/// A symbolic link is followed (a key file may be a link kept by a secret store): what
/// matters is what was opened. The open never waits (`O_NONBLOCK`: a FIFO without a writer
/// is refused at once), and at most `max + 1` bytes are read whatever the file claims.
pub fn read_small(path: &Path, max: u64) -> Result<String, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(kind(meta.file_type()), max));
    }
    if meta.len() > max {
        return Err(ReadError::TooLarge(max));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge(max));
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText)
}

/// Sets [`PRIVATE_MODE`] on a file just created (the umask may have taken bits away).
fn private(file: &File) -> io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_MODE))
}

/// Creates `path` empty with [`PRIVATE_MODE`] if nothing is there (an existing file, or a
/// link, is left as it is). Lets SQLite find a 0640 database, whose mode it gives to the
/// `-wal` and `-shm` files it creates.
pub fn create_private(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_MODE)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => private(&f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens `path` for appending, creating it with [`PRIVATE_MODE`]; never through a symbolic
/// link (a link at `path` is an error, `ELOOP`).
pub fn open_append_private(path: &Path) -> io::Result<File> {
    let created = OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(PRIVATE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    match created {
        Ok(f) => {
            private(&f)?;
            Ok(f)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path),
        Err(e) => Err(e),
    }
}

/// A name no one can guess in advance for a temporary file beside `path`.
fn temporary_name(path: &Path, attempt: u32) -> PathBuf {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the system's random source.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u32(attempt);
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{:016x}.tmp", h.finish()));
    PathBuf::from(name)
}

/// Replaces `path` with `bytes` through a temporary file in the same directory (created
/// exclusively under a random name, never through a link, [`PRIVATE_MODE`]) and a rename,
/// so readers never see half a file and no planted link is written through.
pub fn replace_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, PRIVATE_MODE, false)
}

/// As [`replace_private`], with `mode` (the umask aside), and the file's data on disk before
/// the rename: for a file that must survive a crash (the command line's routing key beside its
/// queued events).
pub fn replace_durable(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace(path, bytes, mode, true)
}

fn replace(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> io::Result<()> {
    let mut attempt = 0;
    let (tmp, mut file) = loop {
        let tmp = temporary_name(path, attempt);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| if sync { file.sync_all() } else { Ok(()) })
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A fresh, empty directory for one test, `cpd-{name}-{pid}` under the system's temporary
    /// directory: whatever an earlier run left there is removed first.
    pub(crate) fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cpd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o777
    }

    #[test]
    fn small_files_are_read_and_others_refused_at_once() {
        let d = scratch("files-read");
        let good = d.join("key");
        std::fs::write(&good, "abc\n").unwrap();
        assert_eq!(read_small(&good, 10).unwrap(), "abc\n");
        // a link to a regular file is fine (secret stores keep links)
        let link = d.join("link");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        assert_eq!(read_small(&link, 10).unwrap(), "abc\n");
        // a FIFO without a writer: refused, not waited on
        let fifo = d.join("fifo");
        mkfifo(&fifo);
        assert_eq!(
            read_small(&fifo, 4096).unwrap_err().about("/x"),
            "/x is a FIFO, expected a regular file of at most 4096 bytes"
        );
        // endless devices and directories
        assert_eq!(
            read_small(Path::new("/dev/zero"), 4096)
                .unwrap_err()
                .about("it"),
            "it is a character device, expected a regular file of at most 4096 bytes"
        );
        assert!(
            read_small(&d, 10)
                .unwrap_err()
                .about("it")
                .starts_with("it is a directory")
        );
        let big = d.join("big");
        std::fs::write(&big, vec![b'a'; 11]).unwrap();
        assert_eq!(
            read_small(&big, 10).unwrap_err().about("it"),
            "it is larger than 10 bytes, expected a regular file of at most 10 bytes"
        );
        let e = read_small(&d.join("missing"), 10).unwrap_err();
        let m = e.about("it");
        assert!(e.is_io() && m.starts_with("cannot read it: "), "{m}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A file `victim` in `dir` holding "precious", for the tests that plant links to it where
    /// a file is about to be written: [`assert_untouched`] checks nothing wrote through them.
    pub(crate) fn victim(dir: &Path) -> PathBuf {
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        victim
    }

    pub(crate) fn assert_untouched(victim: &Path) {
        assert_eq!(std::fs::read_to_string(victim).unwrap(), "precious");
    }

    /// A FIFO made with the system's tool (no unsafe outside src/ffi.rs and src/lua/).
    pub(crate) fn mkfifo(path: &Path) {
        let st = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "mkfifo {}", path.display());
    }

    #[test]
    fn created_files_are_private_and_links_are_not_followed() {
        let d = scratch("files-create");
        let victim = victim(&d);
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();

        let log = d.join("a.log");
        open_append_private(&log)
            .unwrap()
            .write_all(b"one\n")
            .unwrap();
        assert_eq!(mode(&log), 0o640);
        open_append_private(&log)
            .unwrap()
            .write_all(b"two\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\ntwo\n");
        let planted = d.join("planted.log");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        assert!(open_append_private(&planted).is_err());

        let db = d.join("o.db");
        create_private(&db).unwrap();
        assert_eq!(mode(&db), 0o640);
        create_private(&db).unwrap();

        let stats = d.join("s.json");
        replace_private(&stats, b"{}\n").unwrap();
        assert_eq!(mode(&stats), 0o640);
        // a planted link at the final name is replaced, not written through
        std::fs::remove_file(&stats).unwrap();
        std::os::unix::fs::symlink(&victim, &stats).unwrap();
        replace_private(&stats, b"{\"a\":1}\n").unwrap();
        assert_untouched(&victim);
        assert_eq!(mode(&victim), 0o644);
        assert_eq!(std::fs::read_to_string(&stats).unwrap(), "{\"a\":1}\n");
        // nothing left behind
        let left: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
