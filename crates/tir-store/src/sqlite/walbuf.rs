//! A SQLite VFS that gathers a connection's WAL writes and hands them to the
//! kernel in 124 KiB `pwrite`s when a transaction's commit frame is complete
//! (or SQLite syncs, reads, truncates or sizes the WAL), instead of two
//! `pwrite`s per frame (a 24-byte header, then the page): less CPU per frame
//! and a shorter fsync after it (docs/performance.md).
//!
//! Everything else, and every file that is not a WAL, goes straight to the
//! default VFS. SQLite publishes a commit to other connections (in the
//! wal-index) only after it has written the commit frame, and writing that
//! frame's page passes everything gathered on to the kernel, so a reader is
//! never told about frames still held here, whatever `synchronous` is.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name connections pass to open through this VFS.
pub const NAME: &CStr = c"tirhub-walbuf";

/// Gathered bytes are written out at this size even without a sync.
const GATHERED_MAX: usize = 8 << 20;
/// The unix VFS writes at most 0x1ffff bytes per call (it masks the length).
const WRITE_MAX: usize = 124 << 10;
/// SQLite writes each WAL frame's header on its own, then the page.
const FRAME_HEADER_BYTES: usize = 24;

/// Registers the VFS once per process; returns its name for `open_with_flags_and_vfs`.
pub fn register() -> Result<&'static str, String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: sqlite3_vfs_find only reads SQLite's VFS list.
            let default = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
            if default.is_null() {
                return Err("SQLite has no default VFS".into());
            }
            // SAFETY: `default` points at a registered VFS, which lives for the whole process.
            let mut vfs = unsafe { *default };
            let real_size = usize::try_from(vfs.szOsFile).map_err(|e| e.to_string())?;
            vfs.szOsFile = c_int::try_from(REAL_OFFSET + real_size).map_err(|e| e.to_string())?;
            vfs.zName = NAME.as_ptr();
            vfs.pNext = std::ptr::null_mut();
            vfs.xOpen = Some(open);
            DEFAULT.set(Vfs(default)).map_err(|_| "the WAL VFS was set up twice".to_string())?;
            let leaked: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(vfs));
            // SAFETY: the VFS struct is leaked, so it outlives every connection.
            let rc = unsafe { ffi::sqlite3_vfs_register(leaked, 0) };
            if rc == ffi::SQLITE_OK { Ok(()) } else { Err(format!("sqlite3_vfs_register failed ({rc})")) }
        })
        .clone()?;
    NAME.to_str().map_err(|e| e.to_string())
}

/// The default VFS every call is forwarded to.
struct Vfs(*mut ffi::sqlite3_vfs);
// SAFETY: a registered VFS is immutable and SQLite calls it from any thread.
unsafe impl Send for Vfs {}
unsafe impl Sync for Vfs {}
static DEFAULT: OnceLock<Vfs> = OnceLock::new();

/// A WAL opened through this VFS: SQLite's file header, the gathered writes,
/// and the default VFS's own file object after them, at `REAL_OFFSET`.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    gathered: *mut Gathered,
}

/// Bytes written by SQLite but not yet passed to the default VFS: one
/// contiguous range starting at `offset`.
#[derive(Default)]
struct Gathered {
    offset: i64,
    bytes: Vec<u8>,
    /// The last write was a commit frame's header: its page ends the commit.
    commit_page_next: bool,
}

const REAL_OFFSET: usize = size_of::<WalFile>().next_multiple_of(16);

unsafe fn real(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: every WalFile was allocated by SQLite with `szOsFile` bytes, the
    // default VFS's file object starting at REAL_OFFSET.
    unsafe { file.cast::<u8>().add(REAL_OFFSET).cast() }
}

unsafe fn methods(file: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: the default VFS sets pMethods to a static table on a successful open.
    unsafe { &*(*file).pMethods }
}

unsafe fn gathered<'a>(file: *mut ffi::sqlite3_file) -> &'a mut Gathered {
    // SAFETY: set to a live Box in `open`, freed only in `close`.
    unsafe { &mut *(*file.cast::<WalFile>()).gathered }
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(default) = DEFAULT.get() else { return ffi::SQLITE_ERROR };
    // SAFETY: `default` is the registered default VFS; `file` has room for its file object
    // both at the start and at REAL_OFFSET (szOsFile was enlarged in `register`).
    unsafe {
        let default_open = (*default.0).xOpen.expect("every VFS opens files");
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            // Not a WAL: the default VFS's file object in place, its own methods, no overhead.
            return default_open(default.0, name, file, flags, out_flags);
        }
        let inner = real(file);
        let rc = default_open(default.0, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            if !(*inner).pMethods.is_null() {
                (methods(inner).xClose.expect("close"))(inner);
            }
            (*file).pMethods = std::ptr::null();
            return rc;
        }
        let wal = file.cast::<WalFile>();
        (*wal).gathered = Box::into_raw(Box::default());
        (*wal).base.pMethods = &WAL_METHODS;
        ffi::SQLITE_OK
    }
}

/// Gathered writes passed on, and how many of them a read of gathered bytes caused.
#[cfg(test)]
static FLUSHES: [std::sync::atomic::AtomicU64; 2] = [const { std::sync::atomic::AtomicU64::new(0) }; 2];

/// Passes the gathered bytes to the default VFS.
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: `file` is an open WalFile.
    unsafe {
        let gathered = gathered(file);
        if gathered.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        #[cfg(test)]
        FLUSHES[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let inner = real(file);
        let write = methods(inner).xWrite.expect("write");
        let mut rc = ffi::SQLITE_OK;
        let mut offset = gathered.offset;
        for chunk in gathered.bytes.chunks(WRITE_MAX) {
            rc = write(inner, chunk.as_ptr().cast(), chunk.len() as c_int, offset);
            if rc != ffi::SQLITE_OK {
                break;
            }
            offset += chunk.len() as i64;
        }
        gathered.bytes.clear();
        rc
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each open file once.
    unsafe {
        let flushed = flush(file);
        let inner = real(file);
        let closed = (methods(inner).xClose.expect("close"))(inner);
        drop(Box::from_raw((*file.cast::<WalFile>()).gathered));
        if flushed != ffi::SQLITE_OK { flushed } else { closed }
    }
}

unsafe extern "C" fn read(file: *mut ffi::sqlite3_file, buf: *mut c_void, amount: c_int, offset: i64) -> c_int {
    // SAFETY: forwarded with SQLite's own arguments, after the gathered bytes are written.
    unsafe {
        let gathered = gathered(file);
        let end = gathered.offset + gathered.bytes.len() as i64;
        let read = |inner, m: &ffi::sqlite3_io_methods| (m.xRead.expect("read"))(inner, buf, amount, offset);
        if !gathered.bytes.is_empty() && offset < end && offset + i64::from(amount) > gathered.offset {
            #[cfg(test)]
            FLUSHES[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return flushed(file, read);
        }
        let inner = real(file);
        read(inner, methods(inner))
    }
}

unsafe extern "C" fn write(file: *mut ffi::sqlite3_file, buf: *const c_void, amount: c_int, offset: i64) -> c_int {
    let Ok(len) = usize::try_from(amount) else { return ffi::SQLITE_IOERR_WRITE };
    // SAFETY: SQLite passes `amount` readable bytes at `buf`.
    unsafe {
        let data = std::slice::from_raw_parts(buf.cast::<u8>(), len);
        let gathered = gathered(file);
        // A frame is a 24-byte header, then the page; a commit frame's header
        // carries the database size (bytes 4..8), other frames' carry zero.
        let ends_commit = std::mem::take(&mut gathered.commit_page_next);
        gathered.commit_page_next = len == FRAME_HEADER_BYTES && data[4..8] != [0; 4];
        let end = gathered.offset + gathered.bytes.len() as i64;
        if !gathered.bytes.is_empty() && (gathered.offset..=end).contains(&offset) {
            // Appends, or rewrites a frame of the same transaction in place.
            let at = (offset - gathered.offset) as usize;
            let kept = len.min(gathered.bytes.len() - at);
            gathered.bytes[at..at + kept].copy_from_slice(&data[..kept]);
            gathered.bytes.extend_from_slice(&data[kept..]);
        } else {
            let rc = flush(file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            gathered.offset = offset;
            gathered.bytes.extend_from_slice(data);
        }
        if ends_commit || gathered.bytes.len() >= GATHERED_MAX { flush(file) } else { ffi::SQLITE_OK }
    }
}

/// Writes the gathered bytes, then hands the default VFS's file and methods to `then`.
unsafe fn flushed(
    file: *mut ffi::sqlite3_file,
    then: impl FnOnce(*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) -> c_int,
) -> c_int {
    // SAFETY: `file` is an open WalFile.
    unsafe {
        let rc = flush(file);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let inner = real(file);
        then(inner, methods(inner))
    }
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: forwarded with SQLite's own arguments, after the gathered bytes are written.
    unsafe { flushed(file, |inner, m| (m.xTruncate.expect("truncate"))(inner, size)) }
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: as in `truncate`.
    unsafe { flushed(file, |inner, m| (m.xSync.expect("sync"))(inner, flags)) }
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    // SAFETY: as in `truncate`.
    unsafe { flushed(file, |inner, m| (m.xFileSize.expect("size"))(inner, size)) }
}

unsafe extern "C" fn file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    // SAFETY: as in `truncate`; some controls act on the file's contents, so write them first.
    unsafe { flushed(file, |inner, m| (m.xFileControl.expect("file control"))(inner, op, arg)) }
}

// Locks, sector size, device characteristics, shared memory and memory
// mapping: forwarded unchanged (SQLite calls the shared-memory ones on the
// database file, not on the WAL).

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: forwarded with SQLite's own arguments.
    unsafe { (methods(real(file)).xLock.expect("lock"))(real(file), level) }
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: forwarded with SQLite's own arguments.
    unsafe { (methods(real(file)).xUnlock.expect("unlock"))(real(file), level) }
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: forwarded with SQLite's own arguments.
    unsafe { (methods(real(file)).xCheckReservedLock.expect("check lock"))(real(file), out) }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwarded with SQLite's own arguments.
    unsafe { (methods(real(file)).xSectorSize.expect("sector size"))(real(file)) }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwarded with SQLite's own arguments.
    unsafe { (methods(real(file)).xDeviceCharacteristics.expect("device characteristics"))(real(file)) }
}

unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    page_size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: forwarded with SQLite's own arguments.
    unsafe {
        match methods(real(file)).xShmMap {
            Some(f) => f(real(file), page, page_size, extend, out),
            None => ffi::SQLITE_IOERR,
        }
    }
}

unsafe extern "C" fn shm_lock(file: *mut ffi::sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    // SAFETY: forwarded with SQLite's own arguments.
    unsafe {
        match methods(real(file)).xShmLock {
            Some(f) => f(real(file), offset, n, flags),
            None => ffi::SQLITE_IOERR,
        }
    }
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: forwarded with SQLite's own arguments.
    unsafe {
        if let Some(f) = methods(real(file)).xShmBarrier {
            f(real(file));
        }
    }
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: forwarded with SQLite's own arguments.
    unsafe {
        match methods(real(file)).xShmUnmap {
            Some(f) => f(real(file), delete),
            None => ffi::SQLITE_OK,
        }
    }
}

unsafe extern "C" fn fetch(file: *mut ffi::sqlite3_file, offset: i64, amount: c_int, out: *mut *mut c_void) -> c_int {
    // SAFETY: forwarded after the gathered bytes are written, as a read would be.
    unsafe {
        *out = std::ptr::null_mut();
        flushed(file, |inner, m| match m.xFetch {
            Some(f) => f(inner, offset, amount, out),
            None => ffi::SQLITE_OK,
        })
    }
}

unsafe extern "C" fn unfetch(file: *mut ffi::sqlite3_file, offset: i64, page: *mut c_void) -> c_int {
    // SAFETY: forwarded with SQLite's own arguments.
    unsafe {
        match methods(real(file)).xUnfetch {
            Some(f) => f(real(file), offset, page),
            None => ffi::SQLITE_OK,
        }
    }
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use rusqlite::{Connection, OpenFlags, params};

    use super::FLUSHES;

    /// A WAL database opened through this VFS, the way the store's writer opens it.
    struct Db {
        path: std::path::PathBuf,
    }

    impl Db {
        fn new() -> Db {
            let name = format!("tirhub-walbuf-test-{}-{}.db", std::process::id(), crate::token::random_hex(6));
            Db { path: std::env::temp_dir().join(name) }
        }

        /// As the store's writer opens it: SQLite does not sync at commit (the store does).
        /// The test table `t` exists once a writer has opened the database.
        fn writer(&self) -> Connection {
            self.writer_syncing("NORMAL")
        }

        fn writer_syncing(&self, synchronous: &str) -> Connection {
            let conn =
                Connection::open_with_flags_and_vfs(&self.path, OpenFlags::default(), super::register().unwrap())
                    .expect("open through walbuf");
            conn.execute_batch(&format!(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; PRAGMA wal_autocheckpoint=0;
                 CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);"
            ))
            .unwrap();
            conn
        }

        /// A connection through the default VFS, as the store's readers open it.
        fn reader(&self) -> Connection {
            Connection::open(&self.path).unwrap()
        }
    }

    impl Drop for Db {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = self.path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }

    fn totals(conn: &Connection) -> (i64, i64) {
        conn.query_row("SELECT count(*), coalesce(sum(length(body)), 0) FROM t", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
    }

    fn insert(conn: &Connection, rows: std::ops::Range<i64>, size: usize) {
        let tx = conn.unchecked_transaction().unwrap();
        for i in rows {
            tx.execute("INSERT INTO t (id, body) VALUES (?1, ?2)", params![i, "x".repeat(size)]).unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn commits_are_visible_to_other_connections_and_survive_reopening() {
        // NORMAL: no sync at commit, so only the commit frame can pass the bytes on.
        for synchronous in ["NORMAL", "FULL"] {
            commits_are_visible(&Db::new(), synchronous);
        }
    }

    #[test]
    fn each_commit_is_passed_on_before_the_next_begins() {
        let db = Db::new();
        let writer = db.writer();
        let reader = db.reader();
        for i in 0..20 {
            insert(&writer, i..i + 1, 10);
            assert_eq!(totals(&reader), (i + 1, (i + 1) * 10), "commit {i} is visible at once");
        }
    }

    fn commits_are_visible(db: &Db, synchronous: &str) {
        let writer = db.writer_syncing(synchronous);
        let flushes = FLUSHES[0].load(Relaxed);
        // 12 MB in one transaction: more than one gathered flush and many 124 KiB writes.
        insert(&writer, 0..3_000, 4_000);
        insert(&writer, 3_000..3_010, 10);
        let reader = db.reader();
        assert_eq!(totals(&reader), (3_010, 12_000_100));
        assert!(FLUSHES[0].load(Relaxed) >= flushes + 3, "the writes went through walbuf");
        drop(writer);
        drop(reader);
        assert_eq!(totals(&db.writer()), (3_010, 12_000_100));
    }

    #[test]
    fn a_transaction_spilling_frames_then_rolling_back_leaves_nothing() {
        let db = Db::new();
        let writer = db.writer();
        writer.execute_batch("PRAGMA cache_size=10;").unwrap();
        insert(&writer, 0..10, 100);
        // A cache of 10 pages: the transaction writes frames to the WAL before it
        // ends and reads them back, through the gathered bytes.
        let read_flushes = FLUSHES[1].load(Relaxed);
        let tx = writer.unchecked_transaction().unwrap();
        for i in 10..2_000 {
            tx.execute("INSERT INTO t (id, body) VALUES (?1, ?2)", params![i, "y".repeat(500)]).unwrap();
        }
        assert_eq!(totals(&tx), (2_000, 1_000 + 1_990 * 500));
        assert!(FLUSHES[1].load(Relaxed) > read_flushes, "frames were read back while gathered");
        tx.rollback().unwrap();
        assert_eq!(totals(&writer), (10, 1_000));
        assert_eq!(totals(&db.reader()), (10, 1_000));
        insert(&writer, 10..20, 100);
        assert_eq!(totals(&db.reader()), (20, 2_000));
    }

    #[test]
    fn the_wal_starts_over_after_a_checkpoint_and_stays_readable() {
        let db = Db::new();
        let writer = db.writer();
        let checkpointer = db.reader();
        for round in 0..5 {
            insert(&writer, round * 100..round * 100 + 100, 1_000);
            let busy: i64 = checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(0)).unwrap();
            assert_eq!(busy, 0);
        }
        assert_eq!(totals(&db.reader()), (500, 500_000));
        drop(writer);
        drop(checkpointer);
        assert_eq!(totals(&db.reader()), (500, 500_000));
    }
}
