package manifest

import (
	"encoding/binary"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// POSIX ACL entry tags of the kernel xattr encoding.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
	aclNoID     = 0xffffffff
)

// aclQualifier returns the id of an ACL qualifier: a number, or a name
// looked up on this machine, as GNU tar does when it extracts (it stores
// names even with --numeric-owner).
func aclQualifier(q string, isUser bool) (uint32, error) {
	if id, err := strconv.ParseUint(q, 10, 32); err == nil {
		return uint32(id), nil
	}
	var idText string
	if isUser {
		u, err := user.Lookup(q)
		if err != nil {
			return 0, fmt.Errorf("unknown user %q: %w", q, err)
		}
		idText = u.Uid
	} else {
		g, err := user.LookupGroup(q)
		if err != nil {
			return 0, fmt.Errorf("unknown group %q: %w", q, err)
		}
		idText = g.Gid
	}
	id, err := strconv.ParseUint(idText, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("id %q of %q is not numeric", idText, q)
	}
	return uint32(id), nil
}

type aclEntry struct {
	tag  uint16
	perm uint16
	id   uint32
}

// aclFromText converts the text form GNU tar stores in SCHILY.acl.access and
// SCHILY.acl.default ("user::rw-,user:1000:r--,group::r--,mask::r--,other::r--",
// entries separated by commas or newlines, with numeric qualifiers) into the
// kernel xattr encoding. It returns nil for an ACL that only restates the mode
// (no named entries), which the kernel does not store as an xattr. Named
// qualifiers are resolved on this machine, as tar does on extraction.
func aclFromText(text string, isDefault bool) ([]byte, error) {
	var entries []aclEntry
	for _, field := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' }) {
		field = strings.TrimSpace(field)
		if i := strings.IndexByte(field, '#'); i >= 0 {
			field = strings.TrimSpace(field[:i])
		}
		if field == "" {
			continue
		}
		parts := strings.Split(field, ":")
		if len(parts) == 4 { // user:name:perms:id (names plus ids)
			parts = []string{parts[0], parts[3], parts[2]}
		}
		if len(parts) != 3 {
			return nil, fmt.Errorf("ACL entry %q is not tag:qualifier:permissions", field)
		}
		var e aclEntry
		switch parts[0] {
		case "user", "u":
			e.tag = aclUserObj
		case "group", "g":
			e.tag = aclGroupObj
		case "mask", "m":
			e.tag = aclMask
		case "other", "o":
			e.tag = aclOther
		default:
			return nil, fmt.Errorf("ACL entry %q has unknown tag %q", field, parts[0])
		}
		e.id = aclNoID
		if parts[1] != "" {
			id, err := aclQualifier(parts[1], e.tag == aclUserObj)
			if err != nil {
				return nil, fmt.Errorf("ACL entry %q: %w", field, err)
			}
			switch e.tag {
			case aclUserObj:
				e.tag = aclUser
			case aclGroupObj:
				e.tag = aclGroup
			default:
				return nil, fmt.Errorf("ACL entry %q: a %s entry takes no qualifier", field, parts[0])
			}
			e.id = uint32(id)
		}
		p := parts[2]
		if len(p) != 3 {
			return nil, fmt.Errorf("ACL entry %q: permissions %q are not of the form rwx", field, p)
		}
		for i, c := range []byte(p) {
			switch {
			case c == "rwx"[i]:
				e.perm |= 4 >> i
			case c != '-':
				return nil, fmt.Errorf("ACL entry %q: permissions %q are not of the form rwx", field, p)
			}
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	slices.SortFunc(entries, func(a, b aclEntry) int {
		if a.tag != b.tag {
			return int(a.tag) - int(b.tag)
		}
		if a.id < b.id {
			return -1
		} else if a.id > b.id {
			return 1
		}
		return 0
	})
	counts := map[uint16]int{}
	for i, e := range entries {
		counts[e.tag]++
		if i > 0 && entries[i-1].tag == e.tag && entries[i-1].id == e.id {
			return nil, fmt.Errorf("ACL %q has a duplicate entry", text)
		}
	}
	if counts[aclUserObj] != 1 || counts[aclGroupObj] != 1 || counts[aclOther] != 1 {
		return nil, fmt.Errorf("ACL %q needs exactly one user::, group:: and other:: entry", text)
	}
	named := counts[aclUser] + counts[aclGroup]
	if named > 0 && counts[aclMask] != 1 {
		return nil, fmt.Errorf("ACL %q has named entries but no mask:: entry", text)
	}
	if !isDefault && named == 0 { // the kernel keeps such an ACL as mode bits only
		return nil, nil
	}
	b := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b, nil
}
