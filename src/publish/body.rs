//! Where rendered documents live: large ones in a file, mapped read-only, so the
//! socket layer can send their bytes with sendfile(2) instead of copying them.
//!
//! [`file_backed`] stores a document's variants in one file and hands its bytes out
//! as [`Bytes`] slices of the mapping; [`file_of`] leads from such bytes back to the
//! file and offset sendfile needs. Documents none of whose variants reaches
//! [`MIN_SENDFILE_BYTES`] stay in ordinary memory.
//!
//! The file is an unnamed one (`O_TMPFILE`) in the directory [`keep_documents_in`]
//! names, the store's. A disk filesystem's page cache holds it in large folios, which
//! sendfile walks with far fewer lookups than a memfd's 4 KiB pages (tmpfs without
//! huge pages): the 143 KB feed took 12% less CPU per request, as little as nginx
//! (docs/PERFORMANCE.md). Where that directory cannot hold one (a full disk, a
//! filesystem without `O_TMPFILE`), the document goes into a sealed memfd. When the
//! kernel or a sandbox refuses both kinds of file, bodies are ordinary memory:
//! slower to send, never wrong.

use bytes::Bytes;
use rustix::fs::{MemfdFlags, SealFlags};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};
use tracing::{debug, warn};

use crate::sys::{self, ReadOnlyMapping};

/// Bodies shorter than this are copied into the socket: below it, sendfile's page
/// handling and second system call cost more than the copy. With `bench/serve.sh`'s
/// feed, sendfile made the 143 KB identity body 1.26× as fast and the 48 KB gzip
/// body 0.89×. A document none of whose variants reaches it stays in ordinary
/// memory, as does what remains of a body after a partial write when it is shorter.
pub const MIN_SENDFILE_BYTES: usize = 64 * 1024;

/// Where documents become unnamed files; `None` until [`keep_documents_in`].
static DOCUMENT_DIRECTORY: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Set once a document could not be kept in [`DOCUMENT_DIRECTORY`], so the warning
/// is not repeated at every render.
static DIRECTORY_REFUSED: AtomicBool = AtomicBool::new(false);

/// Keeps the documents rendered from now on as unnamed files in `directory`, which
/// should be on a disk filesystem (the daemon gives the store's directory). Nothing is
/// ever visible there: the files have no name and vanish with their last reader.
pub fn keep_documents_in(directory: &Path) {
    *DOCUMENT_DIRECTORY
        .write()
        .unwrap_or_else(PoisonError::into_inner) = Some(directory.to_path_buf());
    DIRECTORY_REFUSED.store(false, Ordering::Relaxed);
}

/// `parts` laid end to end in one file and returned as slices of its read-only
/// mapping, or as ordinary [`Bytes`] when none is long enough to be sent with
/// sendfile or no file can be made.
pub fn file_backed<const N: usize>(parts: [Vec<u8>; N]) -> [Bytes; N] {
    let directory = DOCUMENT_DIRECTORY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    file_backed_in(directory.as_deref(), parts)
}

/// Where `buf` lies in a document file: the file, borrowed for as long as `buf`, and
/// the offset of its first byte. `None` for bytes in ordinary memory.
pub fn file_of(buf: &[u8]) -> Option<(BorrowedFd<'_>, usize)> {
    sys::mapped_file_of(buf)
}

/// [`file_backed`], with the file in `directory` when it can be made there.
fn file_backed_in<const N: usize>(directory: Option<&Path>, parts: [Vec<u8>; N]) -> [Bytes; N] {
    if parts.iter().all(|part| part.len() < MIN_SENDFILE_BYTES) {
        return parts.map(Bytes::from);
    }
    match map_document(directory, &parts) {
        Ok(file) => {
            let whole = Bytes::from_owner(file);
            let mut start = 0;
            parts.map(|part| {
                let slice = whole.slice(start..start + part.len());
                start += part.len();
                slice
            })
        }
        Err(err) => {
            debug!(error = %err, "cannot put a document in a memory file; keeping it in memory");
            parts.map(Bytes::from)
        }
    }
}

/// `parts` in an unnamed file in `directory`, else in a sealed memfd, mapped.
/// Nothing writes to the file once it is mapped: an unnamed file has no other
/// opener, and a memfd is sealed.
fn map_document(directory: Option<&Path>, parts: &[Vec<u8>]) -> io::Result<ReadOnlyMapping> {
    let len: usize = parts.iter().map(Vec::len).sum();
    if let Some(directory) = directory {
        match unnamed_file(directory, parts).and_then(|fd| ReadOnlyMapping::new(fd, len)) {
            Ok(file) => return Ok(file),
            Err(err) => {
                if !DIRECTORY_REFUSED.swap(true, Ordering::Relaxed) {
                    warn!(directory = %directory.display(), error = %err,
                        "cannot keep rendered documents on disk; keeping them in memory files");
                }
            }
        }
    }
    ReadOnlyMapping::new(sealed_memfd(parts)?, len)
}

/// `parts` written to a new unnamed file in `directory`, which can never be linked
/// into it (`O_EXCL`).
fn unnamed_file(directory: &Path, parts: &[Vec<u8>]) -> io::Result<OwnedFd> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE | libc::O_EXCL | libc::O_CLOEXEC)
        .open(directory)?;
    for part in parts {
        io::Write::write_all(&mut file, part)?;
    }
    Ok(OwnedFd::from(file))
}

/// `parts` written to a new memfd, sealed against any change.
fn sealed_memfd(parts: &[Vec<u8>]) -> io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(
        c"tributary-document",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut file = File::from(fd);
    for part in parts {
        io::Write::write_all(&mut file, part)?;
    }
    let fd = OwnedFd::from(file);
    let seals = SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL;
    rustix::fs::fcntl_add_seals(&fd, seals)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, RawFd};

    /// The descriptor and offset of `buf`'s file, comparable.
    fn raw_file_of(buf: &[u8]) -> Option<(RawFd, usize)> {
        file_of(buf).map(|(fd, offset)| (fd.as_raw_fd(), offset))
    }

    #[test]
    fn small_documents_stay_in_memory_and_large_ones_map_a_sealed_file() {
        let [small] = file_backed_in(None, [b"<rss/>".to_vec()]);
        assert_eq!(&small[..], b"<rss/>");
        assert!(file_of(&small).is_none());

        let identity: Vec<u8> = (0..100_000u32).map(|n| (n % 251) as u8).collect();
        let gzip = vec![7u8; 70_000];
        let [a, b] = file_backed_in(None, [identity.clone(), gzip.clone()]);
        assert_eq!(&a[..], &identity[..]);
        assert_eq!(&b[..], &gzip[..]);
        let (fd_a, offset_a) = raw_file_of(&a).expect("the first part is file-backed");
        let (fd_b, offset_b) = raw_file_of(&b).expect("the second part is file-backed");
        assert_eq!(offset_a, 0);
        assert_eq!(
            (fd_b, offset_b),
            (fd_a, identity.len()),
            "one file for both parts"
        );
        let inner = a.slice(100..80_000);
        assert_eq!(raw_file_of(&inner), Some((fd_a, 100)));
        // Sealed: the file cannot be written to.
        let (file, _) = file_of(&a).unwrap();
        assert!(rustix::io::pwrite(file, b"x", 0).is_err());
        drop((a, b, inner));
        let owned: Vec<u8> = vec![1; 100_000];
        assert!(
            file_of(&owned).is_none(),
            "ordinary memory is not mistaken for a file"
        );
    }

    /// What `/proc` says descriptor `fd` of this process is.
    fn target_of(fd: RawFd) -> String {
        std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn documents_go_to_an_unnamed_file_in_the_directory_else_to_a_memfd() {
        let directory = tempfile::tempdir().unwrap();
        let document: Vec<u8> = (0..200_000u32).map(|n| (n % 241) as u8).collect();
        let [on_disk] = file_backed_in(Some(directory.path()), [document.clone()]);
        assert_eq!(&on_disk[..], &document[..]);
        let (fd, offset) = raw_file_of(&on_disk).expect("file-backed");
        assert_eq!(offset, 0);
        let target = target_of(fd);
        assert!(
            target.starts_with(&*directory.path().to_string_lossy())
                && target.ends_with("(deleted)"),
            "{target}"
        );
        assert_eq!(
            std::fs::read_dir(directory.path()).unwrap().count(),
            0,
            "nothing is visible in the directory"
        );

        // A directory that cannot hold it (here: gone) leaves the memfd.
        let gone = directory.path().join("gone");
        let [in_memory] = file_backed_in(Some(&gone), [document.clone()]);
        assert_eq!(&in_memory[..], &document[..]);
        let (fd, _) = raw_file_of(&in_memory).expect("file-backed");
        assert!(
            target_of(fd).starts_with("/memfd:tributary-document"),
            "{}",
            target_of(fd)
        );
    }
}
