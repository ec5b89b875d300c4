package gvisor

import (
	"encoding/json"
	"fmt"

	"kindling/internal/sandbox"
)

// The subset of the OCI runtime spec (runtime-spec v1.2, config.json) that
// Kindling writes. The field names and JSON keys are the spec's; Kindling
// does not import its Go module to keep the main module's dependencies
// small.
type (
	ociSpec struct {
		Version  string     `json:"ociVersion"`
		Process  ociProcess `json:"process"`
		Root     ociRoot    `json:"root"`
		Hostname string     `json:"hostname,omitempty"`
		Mounts   []ociMount `json:"mounts"`
		Linux    ociLinux   `json:"linux"`
		// Annotations carry runsc's rootfs hint (EROFS layout).
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	ociProcess struct {
		User            ociUser   `json:"user"`
		Args            []string  `json:"args"`
		Env             []string  `json:"env"`
		Cwd             string    `json:"cwd"`
		Capabilities    ociCaps   `json:"capabilities"`
		Rlimits         []ociRlim `json:"rlimits,omitempty"`
		NoNewPrivileges bool      `json:"noNewPrivileges"`
	}
	ociUser struct {
		UID            int   `json:"uid"`
		GID            int   `json:"gid"`
		AdditionalGids []int `json:"additionalGids,omitempty"`
	}
	// ociCaps lists no capability in any set: empty, not absent, so that
	// runsc grants none.
	ociCaps struct {
		Bounding    []string `json:"bounding"`
		Effective   []string `json:"effective"`
		Inheritable []string `json:"inheritable"`
		Permitted   []string `json:"permitted"`
		Ambient     []string `json:"ambient"`
	}
	ociRlim struct {
		Type string `json:"type"`
		Hard uint64 `json:"hard"`
		Soft uint64 `json:"soft"`
	}
	ociRoot struct {
		Path     string `json:"path"`
		Readonly bool   `json:"readonly"`
	}
	ociMount struct {
		Destination string   `json:"destination"`
		Type        string   `json:"type"`
		Source      string   `json:"source"`
		Options     []string `json:"options,omitempty"`
	}
	ociLinux struct {
		CgroupsPath string         `json:"cgroupsPath"`
		Resources   ociResources   `json:"resources"`
		Namespaces  []ociNamespace `json:"namespaces"`
		Seccomp     *ociSeccomp    `json:"seccomp,omitempty"`
	}
	ociResources struct {
		Memory *ociMemory `json:"memory,omitempty"`
		Pids   *ociPids   `json:"pids,omitempty"`
	}
	ociMemory struct {
		Limit int64 `json:"limit"`
	}
	ociPids struct {
		Limit int64 `json:"limit"`
	}
	ociNamespace struct {
		Type string `json:"type"`
	}
)

// specParams is what a sandbox's spec depends on besides sandbox.Spec.
type specParams struct {
	RootFS      string
	AgentDir    string // host directory holding only the agent
	TmpDir      string // empty host directory under the /tmp overlay
	CgroupsPath string
	UID, GID    int

	// EROFS images (erofs_linux.go) replacing the bind mounts above, each
	// when set: RootFS's, the agent's, /tmp's empty lower layer, the
	// code's. With all four runsc starts no gofer.
	RootFSImage, AgentImage, TmpImage, CodeImage string
}

// Annotations of runsc's rootfs hint: the root is an EROFS image.
const (
	annotRootfsSource = "dev.gvisor.spec.rootfs.source"
	annotRootfsType   = "dev.gvisor.spec.rootfs.type"
)

// mountOf is a mount at dst of the EROFS image img if set, else a bind
// mount of the host directory dir.
func mountOf(dst, dir, img string, opts ...string) ociMount {
	if img != "" {
		return ociMount{Destination: dst, Type: "erofs", Source: img, Options: opts}
	}
	return ociMount{Destination: dst, Type: "bind", Source: dir, Options: append([]string{"rbind"}, opts...)}
}

// buildSpec returns the config.json of a sandbox (see the package
// documentation for the layout). The CPU quota is deliberately absent: it
// is set after start (cgroups.setCPU).
func buildSpec(s sandbox.Spec, p specParams) ([]byte, error) {
	if s.MemoryMB <= 0 || s.EphemeralMB <= 0 {
		return nil, fmt.Errorf("gvisor: spec of %s: memory and ephemeral storage must be positive", s.ID)
	}
	hostname := s.Hostname
	if hostname == "" {
		hostname = "localhost"
	}
	none := []string{}
	spec := ociSpec{
		Version: "1.0.2",
		Process: ociProcess{
			User: ociUser{UID: p.UID, GID: p.GID},
			Args: []string{agentMount + "/" + agentName},
			Env: []string{
				"PATH=/usr/local/bin:/usr/bin:/bin",
				EnvAgentFD + "=" + agentFD,
			},
			Cwd:          "/",
			Capabilities: ociCaps{none, none, none, none, none},
			Rlimits: []ociRlim{
				{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile},
				{Type: "RLIMIT_NPROC", Hard: nproc, Soft: nproc},
			},
			NoNewPrivileges: true,
		},
		Root:     ociRoot{Path: p.RootFS, Readonly: true},
		Hostname: hostname,
		Mounts: []ociMount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			// An empty host directory (or EROFS image) that runsc
			// overlays with a tmpfs backed by a file in the sandbox's
			// state directory and limited to EphemeralMB
			// (tmpOverlayFlag): disk, not memory.
			mountOf("/tmp", p.TmpDir, p.TmpImage, "rw", "nosuid", "nodev"),
			mountOf("/var/task", s.CodeDir, p.CodeImage, "ro", "nosuid", "nodev"),
			mountOf(agentMount, p.AgentDir, p.AgentImage, "ro", "nosuid", "nodev"),
		},
		Linux: ociLinux{
			CgroupsPath: p.CgroupsPath,
			Resources: ociResources{
				Memory: &ociMemory{Limit: int64(s.MemoryMB) << 20},
				Pids:   &ociPids{Limit: hostPidsMax},
			},
			Namespaces: []ociNamespace{{"pid"}, {"network"}, {"ipc"}, {"uts"}, {"mount"}},
			Seccomp:    seccompProfile(),
		},
	}
	if p.RootFSImage != "" {
		// The root is the image; Root.Path, still the tree, is unused.
		spec.Annotations = map[string]string{annotRootfsSource: p.RootFSImage, annotRootfsType: "erofs"}
	}
	return json.MarshalIndent(spec, "", "\t")
}

// tmpOverlayFlag is the runsc flag that turns the writable bind mounts (only
// /tmp: the root and the other binds are read-only) into overlays whose
// upper layer, a tmpfs of EphemeralMB, lives in a file under dir: /tmp is
// limited like Lambda's and its pages are page cache of that file, which
// the kernel can write back, rather than memory of the function.
func tmpOverlayFlag(dir string, ephemeralMB int) string {
	return fmt.Sprintf("--overlay2=all:dir=%s,size=%dm", dir, ephemeralMB)
}
