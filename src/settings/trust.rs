//! Whether a settings file found by default may be obeyed.
//!
//! `./.env` and `config/errsnap.toml` are read from wherever the program
//! starts, so another user could plant one there (a shared directory, a
//! checkout others can write): one line of `ERRSNAP_SENTRY_DSN` or
//! `ERRSNAP_WEBHOOK_URL` would send every event to them. Such a file is
//! obeyed only if it is owned by the effective user or root, and writable
//! by nobody else: not by others, and by its group only when that group is
//! the owner's own (a user-private group, as with `umask 002`: the rule
//! OpenSSH applies to its configuration). A file the program names itself
//! (`ERRSNAP_CONFIG_FILE`, `Config::from_dotenv_path`, `with_file`) is
//! trusted.

use std::path::Path;

/// Why the file at `path` may not be obeyed (`None`: it may).
pub(crate) fn refusal(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => return Some(format!("cannot be checked ({e})")),
        };
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        judge(
            &Facts {
                uid: meta.uid(),
                gid: meta.gid(),
                mode: meta.mode(),
            },
            me,
            &|uid, gid| group_is_private(uid, gid),
        )
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// What the rule looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mode: u32,
}

/// The rule, on the file's owner, group and mode; `private(uid, gid)`
/// says whether group `gid` is owner `uid`'s own (no other member).
pub(crate) fn judge(f: &Facts, me: u32, private: &dyn Fn(u32, u32) -> bool) -> Option<String> {
    if f.uid != me && f.uid != 0 {
        return Some(format!(
            "owned by uid {}, not by this user ({me}) or root",
            f.uid
        ));
    }
    if f.mode & 0o002 != 0 {
        return Some(format!(
            "writable by every user (mode {:o})",
            f.mode & 0o777
        ));
    }
    if f.mode & 0o020 != 0 && !private(f.uid, f.gid) {
        return Some(format!(
            "writable by group {} which has other members (mode {:o})",
            f.gid,
            f.mode & 0o777
        ));
    }
    None
}

/// Whether group `gid` is user `uid`'s primary group with no member but
/// that user.
#[cfg(unix)]
fn group_is_private(uid: u32, gid: u32) -> bool {
    use std::ffi::CStr;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: getpwuid_r/getgrgid_r fill the structs and point into `buf`,
    // which outlives every read below; null results are checked.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut pw_out: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(
            uid,
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut pw_out,
        ) != 0
            || pw_out.is_null()
            || pw.pw_gid != gid
        {
            return false;
        }
        let owner = CStr::from_ptr(pw.pw_name).to_bytes().to_vec();
        let mut gbuf = vec![0u8; 64 * 1024];
        let mut gr: libc::group = std::mem::zeroed();
        let mut gr_out: *mut libc::group = std::ptr::null_mut();
        if libc::getgrgid_r(
            gid,
            &mut gr,
            gbuf.as_mut_ptr().cast(),
            gbuf.len(),
            &mut gr_out,
        ) != 0
            || gr_out.is_null()
        {
            return false;
        }
        let mut members: Vec<&[u8]> = Vec::new();
        let mut member = gr.gr_mem;
        while !member.is_null() && !(*member).is_null() {
            members.push(CStr::from_ptr(*member).to_bytes());
            member = member.add(1);
        }
        only_owner(&owner, &members)
    }
}

/// Whether a group's listed members are its owner at most.
fn only_owner(owner: &[u8], members: &[&[u8]]) -> bool {
    members.iter().all(|m| *m == owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: u32 = 1000;

    fn f(uid: u32, gid: u32, mode: u32) -> Facts {
        Facts { uid, gid, mode }
    }

    #[test]
    fn owned_by_this_user_or_root_and_written_by_nobody_else() {
        let never = |_: u32, _: u32| false;
        assert_eq!(judge(&f(ME, 1000, 0o644), ME, &never), None);
        assert_eq!(judge(&f(0, 0, 0o644), ME, &never), None, "root's");
        assert_eq!(judge(&f(ME, 1000, 0o600), ME, &never), None);
        let other = judge(&f(1001, 1001, 0o600), ME, &never).unwrap();
        assert!(other.contains("owned by uid 1001"), "{other}");
        let world = judge(&f(ME, 1000, 0o666), ME, &never).unwrap();
        assert!(
            world.contains("every user") && world.contains("666"),
            "{world}"
        );
        let world_dir_bit = judge(&f(ME, 1000, 0o602), ME, &never).unwrap();
        assert!(world_dir_bit.contains("every user"));
    }

    #[test]
    fn a_private_group_lists_no_one_but_its_owner() {
        assert!(only_owner(b"alice", &[]));
        assert!(only_owner(b"alice", &[b"alice"]));
        assert!(!only_owner(b"alice", &[b"alice", b"bob"]));
        assert!(!only_owner(b"alice", &[b"bob"]));
    }

    #[cfg(unix)]
    #[test]
    fn the_system_says_whose_group_is_private() {
        // root's primary group is 0, never nogroup.
        assert!(!group_is_private(0, 65534));
        assert!(!group_is_private(u32::MAX - 7, 0), "no such user");
        // Group 0 is private exactly when the group file lists no member
        // of it but root.
        let listed = std::fs::read_to_string("/etc/group").unwrap_or_default();
        let members = listed
            .lines()
            .find_map(|l| l.strip_prefix("root:x:0:"))
            .unwrap_or("");
        let only_root = members.split(',').all(|m| m.is_empty() || m == "root");
        assert_eq!(
            group_is_private(0, 0),
            only_root,
            "root's group: {members:?}"
        );
    }

    #[test]
    fn group_writable_only_for_the_owners_private_group() {
        let private = |uid: u32, gid: u32| uid == ME && gid == 1000;
        assert_eq!(judge(&f(ME, 1000, 0o664), ME, &private), None, "umask 002");
        let shared = judge(&f(ME, 100, 0o664), ME, &private).unwrap();
        assert!(
            shared.contains("group 100") && shared.contains("664"),
            "{shared}"
        );
        // Root's file writable by a shared group: refused too.
        assert!(judge(&f(0, 50, 0o664), ME, &private).is_some());
    }

    #[cfg(unix)]
    #[test]
    fn this_users_own_new_file_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".env");
        std::fs::write(&p, "X=1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(refusal(&p), None);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o646)).unwrap();
        assert!(refusal(&p).is_some());
        // Root's primary group has no other member here: 0664 is accepted
        // for root's own file only if its group is private.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(refusal(&p), None);
    }
}
