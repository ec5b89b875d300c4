package process

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// mountInfo is one line of /proc/<pid>/mountinfo (proc(5)).
type mountInfo struct {
	Root       string // root of the mount within its filesystem
	MountPoint string
	FSType     string
	Source     string
	SuperOpts  string
}

// parseMountInfo reads a mountinfo table. Lines it cannot parse are an
// error: the file comes from the kernel, so a surprise means a format this
// code does not know.
func parseMountInfo(r io.Reader) ([]mountInfo, error) {
	var out []mountInfo
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return nil, fmt.Errorf("mountinfo: no separator in %q", line)
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 6 || len(g) < 2 {
			return nil, fmt.Errorf("mountinfo: short line %q", line)
		}
		m := mountInfo{
			Root:       unescapeMount(f[3]),
			MountPoint: unescapeMount(f[4]),
			FSType:     g[0],
			Source:     unescapeMount(g[1]),
		}
		if len(g) > 2 {
			m.SuperOpts = g[2]
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space, \011,
// \012, \134) in mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// hasOpt reports whether the comma-separated option list contains opt.
func hasOpt(opts, opt string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// mountsUnder returns the mount points at or below dir, deepest first (the
// order in which they can be unmounted).
func mountsUnder(mounts []mountInfo, dir string) []string {
	dir = strings.TrimSuffix(dir, "/")
	var out []string
	for i := len(mounts) - 1; i >= 0; i-- { // later mounts stack on earlier ones
		mp := mounts[i].MountPoint
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}
