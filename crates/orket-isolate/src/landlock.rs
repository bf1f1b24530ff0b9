//! Filesystem confinement of the verification fixture with Landlock (Linux ≥ 5.13): the fixture
//! may read and execute the system's programs and libraries, the Python installation and the
//! workspace (read-only), and change only its own working folder. Everything else — the
//! project's `.env` and store, the user's home, other projects, `/proc` — is refused by the
//! kernel. Where the kernel's Landlock ABI allows it, TCP (ABI 4) and signals or abstract
//! sockets reaching processes outside the fixture (ABI 6) are refused too.
//!
//! The ruleset is built in the parent (opening the allowed paths); the child only calls
//! `prctl(PR_SET_NO_NEW_PRIVS)` and `landlock_restrict_self` between fork and exec.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
/// Every filesystem right of ABI 1 (execute … make_sym).
const ABI1_FS: u64 = (1 << 13) - 1;
const REFER: u64 = 1 << 13;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

/// `struct landlock_ruleset_attr`.
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// `struct landlock_path_beneath_attr` (packed in the kernel's header).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version this kernel offers (`None` when it has no Landlock or it is off),
/// asked once per process.
pub fn abi() -> Option<u32> {
    static ABI: OnceLock<Option<u32>> = OnceLock::new();
    *ABI.get_or_init(|| {
        // SAFETY: with the VERSION flag the kernel reads no attribute and returns a number.
        let v = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<RulesetAttr>(),
                0usize,
                CREATE_RULESET_VERSION,
            )
        };
        (v > 0).then_some(v as u32)
    })
}

/// What the sandbox lets the fixture do beyond the system's read-only paths.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Read and execute files, list folders.
    Read,
    /// Everything: create, change and remove files and folders.
    ReadWrite,
    /// Read and write an existing file (a device such as `/dev/null`).
    Device,
}

/// A Landlock ruleset ready to be applied to a child process.
#[derive(Debug)]
pub struct Ruleset {
    fd: OwnedFd,
    abi: u32,
}

impl Ruleset {
    /// The ruleset for `abi`: `paths` with their access, nothing else. Paths that do not exist
    /// are skipped; any other failure is an error naming the path.
    pub fn new(abi: u32, paths: &[(&Path, Access)]) -> Result<Ruleset, String> {
        let mut fs = ABI1_FS;
        if abi >= 2 {
            fs |= REFER;
        }
        if abi >= 3 {
            fs |= TRUNCATE;
        }
        if abi >= 5 {
            fs |= IOCTL_DEV;
        }
        let attr = RulesetAttr {
            handled_access_fs: fs,
            handled_access_net: if abi >= 4 {
                NET_BIND_TCP | NET_CONNECT_TCP
            } else {
                0
            },
            scoped: if abi >= 6 {
                SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
            } else {
                0
            },
        };
        // An older kernel refuses an attribute larger than it knows (unless the rest is zero,
        // and it is not): pass the size of its version of the struct.
        let size = match abi {
            1..=3 => 8,
            4 | 5 => 16,
            _ => std::mem::size_of::<RulesetAttr>(),
        };
        // SAFETY: `attr` lives on this frame and `size` never exceeds its size.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                size,
                0u32,
            )
        };
        if fd < 0 {
            return Err(format!(
                "landlock_create_ruleset: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: the kernel just returned this descriptor (close-on-exec) and nothing else owns it.
        let ruleset = Ruleset {
            fd: unsafe { OwnedFd::from_raw_fd(fd as i32) },
            abi,
        };
        let file_rights = EXECUTE | WRITE_FILE | READ_FILE | (fs & (TRUNCATE | IOCTL_DEV));
        for (path, access) in paths {
            let Some(opened) = open_path(path)? else {
                continue;
            };
            let is_dir = std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false);
            let mut allowed = match access {
                Access::Read => EXECUTE | READ_FILE | READ_DIR,
                Access::ReadWrite => fs,
                Access::Device => READ_FILE | WRITE_FILE | (fs & (TRUNCATE | IOCTL_DEV)),
            };
            if !is_dir {
                // Rights on a file may only be the ones that apply to files.
                allowed &= file_rights;
            }
            let rule = PathBeneathAttr {
                allowed_access: allowed,
                parent_fd: opened.as_raw_fd(),
            };
            // SAFETY: `rule` lives on this frame; both descriptors are open.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset.fd.as_raw_fd(),
                    RULE_PATH_BENEATH,
                    &rule as *const PathBeneathAttr,
                    0u32,
                )
            };
            if r != 0 {
                return Err(format!(
                    "landlock_add_rule {}: {}",
                    path.display(),
                    std::io::Error::last_os_error()
                ));
            }
        }
        Ok(ruleset)
    }

    /// The ABI the ruleset was built for.
    pub fn abi(&self) -> u32 {
        self.abi
    }

    /// Confines the calling process (and what it starts) to the ruleset. Meant for a child
    /// between fork and exec: it only makes two system calls.
    pub fn restrict_self(&self) -> std::io::Result<()> {
        // SAFETY: prctl(2) and landlock_restrict_self(2) take integers only; both are
        // async-signal-safe.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::syscall(libc::SYS_landlock_restrict_self, self.fd.as_raw_fd(), 0u32) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// `open(path, O_PATH | O_CLOEXEC)`; `None` when the path does not exist.
fn open_path(path: &Path) -> Result<Option<OwnedFd>, String> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{}: a path with a NUL byte", path.display()))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::NotFound {
            return Ok(None);
        }
        return Err(format!("open {}: {e}", path.display()));
    }
    // SAFETY: the descriptor was just opened and nothing else owns it.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}
