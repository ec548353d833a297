// Command pull-lab-runc is runc for hosts whose capability bounding set lacks capabilities the
// kernel knows.
//
// Docker 20.10 gives a --privileged container every capability the kernel knows; runc cannot
// grant one missing from its own bounding set and fails with "unable to apply caps: operation
// not permitted". Newer engines filter by the bounding set themselves (moby #42933); this
// wrapper does the same for 20.10: it drops unavailable capabilities from the OCI bundle
// (create/run) or the exec process spec, then execs the real runc with the same arguments.
//
// Go, not a script: dockerd's shim runs it for every container and every `docker exec`, and
// an interpreter's start-up cost more CPU than the rest of the exec (docs/benchmarks.md).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// capNames: index = capability number (linux/capability.h).
var capNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// source is the digest of this program's source, set at build time (-X): host-prep finds it
// in the installed binary to tell whether that binary is current.
var source string

// runc's global flags that take a value (they come before the subcommand).
var globalWithValue = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true}

func boundingSet(status string) (uint64, error) {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapBnd line in /proc/self/status")
}

func allowedCaps(bnd uint64) map[string]bool {
	allowed := map[string]bool{}
	for i, name := range capNames {
		if bnd>>uint(i)&1 == 1 {
			allowed["CAP_"+name] = true
		}
	}
	return allowed
}

// parseArgs returns the subcommand, the bundle dir and the process file of a runc command line.
func parseArgs(argv []string) (sub, bundle, process string) {
	for i := 0; i < len(argv); i++ {
		arg := argv[i]
		if sub == "" {
			if globalWithValue[arg] {
				i++
			} else if !strings.HasPrefix(arg, "-") {
				sub = arg
			}
			continue
		}
		switch {
		case (arg == "--bundle" || arg == "-b") && i+1 < len(argv):
			bundle = argv[i+1]
		case strings.HasPrefix(arg, "--bundle="):
			bundle = strings.SplitN(arg, "=", 2)[1]
		case (arg == "--process" || arg == "-p") && i+1 < len(argv):
			process = argv[i+1]
		case strings.HasPrefix(arg, "--process="):
			process = strings.SplitN(arg, "=", 2)[1]
		}
	}
	return sub, bundle, process
}

// filterCapabilities keeps only allowed names in each list (bounding, effective, ...).
func filterCapabilities(caps map[string]any, allowed map[string]bool) {
	for kind, value := range caps {
		names, ok := value.([]any)
		if !ok {
			continue
		}
		kept := []any{}
		for _, name := range names {
			if s, ok := name.(string); ok && allowed[s] {
				kept = append(kept, name)
			}
		}
		caps[kind] = kept
	}
}

// rewrite filters the capabilities object found at locate inside the JSON file at path.
// Numbers stay as written (rlimits hold values past float64's exact range).
func rewrite(path string, locate []string, allowed map[string]bool) error {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return err
	}
	parent := doc
	for _, key := range locate[:len(locate)-1] {
		next, ok := parent[key].(map[string]any)
		if !ok {
			return nil
		}
		parent = next
	}
	caps, ok := parent[locate[len(locate)-1]].(map[string]any)
	if !ok {
		return nil
	}
	filterCapabilities(caps, allowed)
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	tmp := path + ".capfilter"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func filterSpec(argv []string) error {
	sub, bundle, process := parseArgs(argv)
	if sub != "create" && sub != "run" && sub != "exec" {
		return nil
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	bnd, err := boundingSet(string(status))
	if err != nil {
		return err
	}
	allowed := allowedCaps(bnd)
	if sub == "exec" {
		if process == "" {
			return nil
		}
		return rewrite(process, []string{"capabilities"}, allowed)
	}
	if bundle == "" {
		bundle = "."
	}
	return rewrite(filepath.Join(bundle, "config.json"), []string{"process", "capabilities"}, allowed)
}

func main() {
	realRunc := os.Getenv("PULL_LAB_REAL_RUNC")
	if realRunc == "" {
		realRunc = "/usr/sbin/runc"
	}
	if err := filterSpec(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "pull-lab-runc %s: %v\n", source, err)
		os.Exit(1)
	}
	err := syscall.Exec(realRunc, append([]string{realRunc}, os.Args[1:]...), os.Environ())
	fmt.Fprintf(os.Stderr, "pull-lab-runc %s: exec %s: %v\n", source, realRunc, err)
	os.Exit(1)
}
