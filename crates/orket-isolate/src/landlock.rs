//! Filesystem confinement of the verification fixture with Landlock (Linux ≥ 5.13): the fixture
//! may read and execute the system's programs and libraries, the Python installation and the
//! workspace (read-only), and change only its own working folder. Everything else — the
//! project's `.env` and store, the user's home, other projects, `/proc` — is refused by the
//! kernel. Where the kernel's Landlock ABI allows it, TCP (ABI 4) and signals or abstract
//! sockets reaching processes outside the fixture (ABI 6) are refused too.
//!
//! The ruleset is built in the parent (opening the allowed paths); the child only calls
//! `prctl(PR_SET_NO_NEW_PRIVS)` and `landlock_restrict_self` between fork and exec.
//!
//! The rights, the ruleset and its rules, and the restriction itself come from the `landlock`
//! crate (kept by Landlock's authors): [`AccessFs`], [`AccessNet`] and [`Scope`] for each ABI,
//! `landlock_create_ruleset` and `landlock_add_rule` with the attribute sizes and fallbacks of
//! each kernel, [`PathFd`] (`O_PATH`) for the allowed paths, and
//! [`RulesetCreated::restrict_self`]. The crate runs at [`CompatLevel::HardRequirement`]: any
//! right, scope or rule that the kernel would not enforce in full is an error in the parent, so
//! the sandbox is never set up partly while the result says [`crate::verify::Isolation`] held.
//!
//! Two things stay here:
//! - [`abi()`], the probe of the kernel's ABI version (one system call): the crate keeps its own
//!   probe private on purpose (it wants programs to ask for a fixed ABI and let it degrade), but
//!   the result must state before the fork which ABI confined the fixture (`landlock_abi`), and
//!   the rights asked for are those of that ABI.
//! - The choice of rights per ABI, capped at ABI 6 (`crate_abi`): the newer ABIs the crate
//!   knows add rights (pathname unix sockets at 9, UDP at 10) that this sandbox has not been
//!   tested with; seccomp already refuses unix sockets and the network namespace has no route.
//!
//! What runs in the child is the crate's `RulesetCreated::restrict_self` (landlock 0.4.8,
//! `src/ruleset.rs`): `prctl(PR_SET_NO_NEW_PRIVS)` (`src/prctl.rs`, `try_set_no_new_privs`),
//! bit tests on the ruleset's flags, `landlock_restrict_self(fd, flags)` (`src/uapi/mod.rs`, a
//! bare `libc::syscall`), then `close` of the ruleset's descriptor when it is dropped; its
//! results and errors are plain values (`io::Error::last_os_error()`). It neither allocates nor
//! takes a lock, so it is safe between fork and exec (read it again when the crate is updated).

use ::landlock::{
    make_bitflags, Access as _, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible,
    PathBeneath, PathFd, PathFdError, RestrictSelfError, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetError, RulesetStatus, Scope, ABI,
};
use std::path::Path;
use std::sync::OnceLock;

/// `LANDLOCK_CREATE_RULESET_VERSION`.
const CREATE_RULESET_VERSION: u32 = 1;

/// The Landlock ABI version this kernel offers (`None` when it has no Landlock or it is off),
/// asked once per process.
pub fn abi() -> Option<u32> {
    static ABI: OnceLock<Option<u32>> = OnceLock::new();
    *ABI.get_or_init(|| {
        // SAFETY: with the VERSION flag the kernel reads no attribute and returns a number.
        let v = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<u8>(),
                0usize,
                CREATE_RULESET_VERSION,
            )
        };
        (v > 0).then_some(v as u32)
    })
}

/// The crate's ABI whose rights the ruleset handles for a kernel offering `abi`: the kernel's
/// own up to 6, 6 above it (7 and 8 add no right; 9 and 10 add rights this sandbox does not
/// ask for, see the module's documentation).
fn crate_abi(abi: u32) -> ABI {
    match abi {
        0 => ABI::Unsupported,
        1 => ABI::V1,
        2 => ABI::V2,
        3 => ABI::V3,
        4 => ABI::V4,
        5 => ABI::V5,
        _ => ABI::V6,
    }
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
    /// Taken by [`Ruleset::restrict_self`] (in the child's copy of memory; the parent's stays).
    created: Option<RulesetCreated>,
    abi: u32,
}

impl Ruleset {
    /// The ruleset for `abi`: `paths` with their access, nothing else. Paths that do not exist
    /// are skipped; any other failure is an error naming the path.
    pub fn new(abi: u32, paths: &[(&Path, Access)]) -> Result<Ruleset, String> {
        let version = crate_abi(abi);
        // Every filesystem right of the ABI: REFER from 2, TRUNCATE from 3, IOCTL_DEV from 5.
        let fs = AccessFs::from_all(version);
        let setup = |e: RulesetError| format!("landlock_create_ruleset: {e}");
        let mut ruleset = ::landlock::Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(fs)
            .map_err(setup)?;
        // TCP bind and connect from ABI 4, with no port allowed.
        let net = AccessNet::from_all(version);
        if !net.is_empty() {
            ruleset = ruleset.handle_access(net).map_err(setup)?;
        }
        // Abstract unix sockets and signals scoped to the fixture from ABI 6.
        let scopes = Scope::from_all(version);
        if !scopes.is_empty() {
            ruleset = ruleset.scope(scopes).map_err(setup)?;
        }
        let mut created = ruleset.create().map_err(setup)?;
        // Rights on a file may only be the ones that apply to files.
        let file_rights = AccessFs::from_file(version);
        let read: BitFlags<AccessFs> = make_bitflags!(AccessFs::{Execute | ReadFile | ReadDir});
        let device = fs & make_bitflags!(AccessFs::{ReadFile | WriteFile | Truncate | IoctlDev});
        for (path, access) in paths {
            let opened = match PathFd::new(path) {
                Ok(fd) => fd,
                Err(PathFdError::OpenCall { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue
                }
                Err(PathFdError::OpenCall { source, .. }) => {
                    return Err(format!("open {}: {source}", path.display()))
                }
                Err(e) => return Err(format!("open {}: {e}", path.display())),
            };
            let is_dir = std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false);
            let mut allowed = match access {
                Access::Read => read,
                Access::ReadWrite => fs,
                Access::Device => device,
            };
            if !is_dir {
                allowed &= file_rights;
            }
            created = created
                .add_rule(PathBeneath::new(opened, allowed))
                .map_err(|e| format!("landlock_add_rule {}: {e}", path.display()))?;
        }
        Ok(Ruleset {
            created: Some(created),
            abi,
        })
    }

    /// The ABI the ruleset was built for.
    pub fn abi(&self) -> u32 {
        self.abi
    }

    /// Confines the calling process (and what it starts) to the ruleset, once. Meant for a
    /// child between fork and exec: it makes two system calls (and closes the ruleset's
    /// descriptor), allocating nothing (see the module's documentation).
    pub fn restrict_self(&mut self) -> std::io::Result<()> {
        // Errors are made from errno values only: `io::Error::new` would allocate.
        let Some(created) = self.created.take() else {
            return Err(std::io::Error::from_raw_os_error(libc::EBADF));
        };
        match created.restrict_self() {
            // At HardRequirement anything less than the whole ruleset failed in the parent;
            // should it not hold here all the same, the fixture does not run.
            Ok(status) if status.ruleset == RulesetStatus::FullyEnforced && status.no_new_privs => {
                Ok(())
            }
            Ok(_) => Err(std::io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
            Err(RulesetError::RestrictSelf(
                RestrictSelfError::SetNoNewPrivsCall { source, .. }
                | RestrictSelfError::RestrictSelfCall { source, .. },
            )) => Err(source),
            Err(_) => Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }
}
