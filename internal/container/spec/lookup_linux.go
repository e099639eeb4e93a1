package spec

// LookupUser resolves a --user value ("name", "uid", "uid:gid",
// "name:group"...) against /etc/passwd and /etc/group of the root
// filesystem at rootfs, read without ever leaving it; copying into a
// container with copyUIDGID gives files this owner.
func LookupUser(rootfs, user string) (uid, gid int, err error) {
	u, err := resolveUser(rootfs, user, nil)
	if err != nil {
		return 0, 0, err
	}
	return int(u.UID), int(u.GID), nil
}
