//! Writing outputs so that nothing is half-written: files through a temporary file renamed
//! into place, folders through a staging folder renamed onto the target. A staging folder
//! holds a locked `.lock` file for as long as its process lives, so a folder left by a
//! killed run (stale: its lock is free) is told apart from one a live run is writing.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `path` through `write` on a temporary file in the same folder, synced and renamed
/// into place: a reader sees the old file or the whole new one, and a failed write leaves
/// no temporary behind.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Input(format!("{}: not a file name", path.display())))?;
    let tmp = path.with_file_name(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = File::create(&tmp).and_then(|mut f| write(&mut f).and_then(|_| f.sync_all()));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(path, e)
    })
}

/// `write_atomic_with` for bytes already in memory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

const LOCK: &str = ".lock";

/// A staging directory beside `dir`, renamed onto it by `commit`; removed when dropped
/// uncommitted (a failed run leaves nothing behind; a killed one leaves a stale folder that
/// `stale` finds).
pub struct Staging {
    pub tmp: PathBuf,
    dir: PathBuf,
    /// Held (locked) while this process owns the folder.
    _lock: File,
}

/// Prefix of the staging folders of `dir` (`.NAME.partial-`), and the folder they sit in.
fn staging_prefix(dir: &Path) -> Result<(PathBuf, String)> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = dir
        .file_name()
        .ok_or_else(|| Error::Input(format!("--out {}: not a directory name", dir.display())))?;
    Ok((parent, format!(".{}.partial-", name.to_string_lossy())))
}

/// Takes the lock of staging folder `tmp`, or None when a live process holds it.
fn try_lock(tmp: &Path) -> Result<Option<File>> {
    let p = tmp.join(LOCK);
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| io(&p, e))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(io(&p, e)),
    }
}

impl Staging {
    /// Refuses a `dir` that exists and is not empty.
    pub fn new(dir: &Path) -> Result<Staging> {
        if dir.exists()
            && std::fs::read_dir(dir)
                .map_err(|e| io(dir, e))?
                .next()
                .is_some()
        {
            return Err(Error::Input(format!(
                "--out {}: directory exists and is not empty; choose another",
                dir.display()
            )));
        }
        Staging::create(dir)
    }

    /// A staging folder seeded with a copy of the existing folder `dir` (sub-folders too),
    /// for editing a few of its files: `commit` then swaps the two in one step, so a reader
    /// (or a crash) sees the old folder or the new one, never a mix.
    pub fn replacing(dir: &Path) -> Result<Staging> {
        if !dir.is_dir() {
            return Err(Error::Input(format!("{}: not a directory", dir.display())));
        }
        let stage = Staging::create(dir)?;
        copy_tree(dir, &stage.tmp)?;
        Ok(stage)
    }

    /// The staging folder `.NAME.partial-PID` beside `dir`, empty and locked.
    fn create(dir: &Path) -> Result<Staging> {
        let (parent, prefix) = staging_prefix(dir)?;
        // Errors name the folder the user asked for, not only the staging path beside it.
        let out_err = |at: &Path, source| Error::Io {
            path: format!("--out {} (creating {})", dir.display(), at.display()),
            source,
        };
        std::fs::create_dir_all(&parent).map_err(|e| out_err(&parent, e))?;
        let tmp = parent.join(format!("{prefix}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| out_err(&tmp, e))?;
        let lock = try_lock(&tmp)?
            .ok_or_else(|| Error::Input(format!("{}: locked by another process", tmp.display())))?;
        Ok(Staging {
            tmp,
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// Staging folders of `dir` that no live process holds (left by a killed run), oldest
    /// name first.
    pub fn stale(dir: &Path) -> Result<Vec<PathBuf>> {
        let (parent, prefix) = staging_prefix(dir)?;
        let Ok(entries) = std::fs::read_dir(&parent) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let p = e.path();
            let ours = e.file_name().to_string_lossy().starts_with(&prefix);
            if ours && p.is_dir() && try_lock(&p)?.is_some() {
                out.push(p);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Takes over a stale staging folder (to resume what it holds): locks it and renames it
    /// to this process's name.
    pub fn adopt(dir: &Path, stale: &Path) -> Result<Staging> {
        let lock = try_lock(stale)?.ok_or_else(|| {
            Error::Input(format!(
                "{}: another glassnet process is using it",
                stale.display()
            ))
        })?;
        let (parent, prefix) = staging_prefix(dir)?;
        let tmp = parent.join(format!("{prefix}{}", std::process::id()));
        if tmp != stale {
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::rename(stale, &tmp).map_err(|e| io(stale, e))?;
        }
        Ok(Staging {
            tmp,
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.tmp.join(file)
    }

    /// Leaves the folder in place (a stale folder once this process ends: what a failed run
    /// keeps for `--resume`) and returns its path.
    pub fn keep(self) -> PathBuf {
        let tmp = self.tmp.clone();
        std::mem::forget(self);
        tmp
    }

    /// Puts the staged folder in place of `dir`: a rename onto a missing or empty `dir`, an
    /// exchange with a full one (whose old contents are then removed).
    pub fn commit(self) -> Result<PathBuf> {
        let _ = std::fs::remove_file(self.tmp.join(LOCK));
        let full = self.dir.is_dir()
            && std::fs::read_dir(&self.dir)
                .map_err(|e| io(&self.dir, e))?
                .next()
                .is_some();
        if full {
            exchange(&self.tmp, &self.dir)?;
            // self.tmp now holds the old folder; Drop removes it.
            return Ok(self.dir.clone());
        }
        if self.dir.exists() {
            std::fs::remove_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
        }
        std::fs::rename(&self.tmp, &self.dir).map_err(|e| io(&self.dir, e))?;
        Ok(self.dir.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Only reached un-renamed on failure: leave nothing behind.
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// Copies the files under `from` into the existing folder `to` (links followed).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for e in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let e = e.map_err(|e| io(from, e))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            std::fs::create_dir(&dst).map_err(|e| io(&dst, e))?;
            copy_tree(&src, &dst)?;
        } else if e.file_name() != LOCK {
            std::fs::copy(&src, &dst).map_err(|e| io(&src, e))?;
        }
    }
    Ok(())
}

/// Swaps folders `a` and `b` (both exist, same file system). One atomic step on Linux
/// (renameat2 RENAME_EXCHANGE); elsewhere, or where the file system refuses it, two renames
/// with `b` set aside first: a crash between them leaves `b` missing and its old contents
/// in `.NAME.old-PID` beside it, said in the error of the next command that looks for it.
fn exchange(a: &Path, b: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).ok();
        if let (Some(ca), Some(cb)) = (c(a), c(b)) {
            // SAFETY: two valid NUL-terminated paths; renameat2 reads them only.
            let rc = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    ca.as_ptr(),
                    libc::AT_FDCWD,
                    cb.as_ptr(),
                    libc::RENAME_EXCHANGE,
                )
            };
            if rc == 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            // Not supported here (old kernel, some file systems): fall through.
            if !matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
                return Err(io(b, e));
            }
        }
    }
    let name = b.file_name().unwrap_or_default().to_string_lossy();
    let aside = b.with_file_name(format!(".{name}.old-{}", std::process::id()));
    std::fs::rename(b, &aside).map_err(|e| io(b, e))?;
    if let Err(e) = std::fs::rename(a, b) {
        let _ = std::fs::rename(&aside, b);
        return Err(io(b, e));
    }
    std::fs::rename(&aside, a).map_err(|e| io(&aside, e))
}

/// Removes a stale staging folder (after checking that no live process holds it).
pub fn remove_stale(stale: &Path) -> Result<()> {
    if try_lock(stale)?.is_none() {
        return Err(Error::Input(format!(
            "{}: another glassnet process is using it",
            stale.display()
        )));
    }
    std::fs::remove_dir_all(stale).map_err(|e| io(stale, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("glassnet-fsio-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_live_staging_folder_is_not_stale_and_a_dropped_lock_is() {
        let root = tmpdir("stale");
        let dir = root.join("model");
        let s = Staging::new(&dir).unwrap();
        assert!(Staging::stale(&dir).unwrap().is_empty(), "held by us");
        // What a killed process leaves: the folder with its lock file, unlocked.
        let left = root.join(".model.partial-1");
        std::fs::create_dir_all(&left).unwrap();
        File::create(left.join(LOCK)).unwrap();
        assert_eq!(Staging::stale(&dir).unwrap(), vec![left.clone()]);
        drop(s);
        let adopted = Staging::adopt(&dir, &left).unwrap();
        assert!(!left.exists() && adopted.tmp.is_dir());
        assert!(Staging::stale(&dir).unwrap().is_empty());
        let out = adopted.commit().unwrap();
        assert!(out.is_dir() && !out.join(LOCK).exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_replacing_stage_starts_as_a_copy_and_swaps_in_whole() {
        let root = tmpdir("replace");
        let dir = root.join("model");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a"), b"old a").unwrap();
        std::fs::write(dir.join("b"), b"old b").unwrap();
        std::fs::write(dir.join("sub/c"), b"c").unwrap();
        let s = Staging::replacing(&dir).unwrap();
        assert_eq!(std::fs::read(s.path("sub/c")).unwrap(), b"c");
        std::fs::write(s.path("a"), b"new a").unwrap();
        // Until commit the folder is the old one.
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"old a");
        s.commit().unwrap();
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"new a");
        assert_eq!(std::fs::read(dir.join("b")).unwrap(), b"old b");
        assert!(!dir.join(LOCK).exists());
        // Nothing left beside it: the old contents are gone with the staging folder.
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
        // Dropped uncommitted: the folder is untouched.
        let s = Staging::replacing(&dir).unwrap();
        std::fs::write(s.path("a"), b"lost").unwrap();
        drop(s);
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"new a");
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn write_atomic_replaces_whole_and_leaves_no_temporary_on_failure() {
        let root = tmpdir("atomic");
        let p = root.join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let e = write_atomic_with(&p, |_| Err(std::io::Error::other("disk full"))).unwrap_err();
        assert!(e.to_string().contains("a.txt") && e.to_string().contains("disk full"));
        assert_eq!(std::fs::read(&p).unwrap(), b"two", "the old file stays");
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
